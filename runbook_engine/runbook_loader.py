"""Where an engine's runbooks come from: paths, names in the ``--documents`` directories and
the bundled ``runbooks/``, and documents stored through CreateDocument; each text parsed once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from runbook_engine.documents import DocumentLibrary, DocumentText
from runbook_engine.errors import (
    DefinitionVersionNotFound,
    DocumentMissing,
    DocumentNotFound,
    DocumentVersionMissing,
)
from runbook_engine.inputs import ActionSchema
from runbook_engine.model import Runbook
from runbook_engine.parser import parse_runbook
from runbook_engine.records import ExecutionRecord
from runbook_engine.registry import ActionRegistry
from runbook_engine.source import SourceSyntaxError, load_source
from runbook_engine.store.documents import DocumentRepository
from runbook_engine.validation import ValidationReport, runbook_from_report, validate_text

# A name a stored document may have (CreateDocument's pattern); anything else is a path.
STORED_NAME = re.compile(r"[a-zA-Z0-9_\-.]{3,128}")
_PARSED_KEPT = 64  # parsed runbooks kept; each execution's is looked up at every step


class RunbookLoader:
    """Finds runbook texts and parses them, caching each parsed text."""

    def __init__(self, library: DocumentLibrary, registry: ActionRegistry) -> None:
        self.library = library
        self.registry = registry
        # Stored documents (CreateDocument), looked up by name before the directories.
        self.repository: DocumentRepository | None = None
        # The texts parsed most recently, newest last: a daemon meets ever more of them.
        self._runbooks: dict[tuple[str, str], Runbook] = {}

    def load(self, reference: str) -> tuple[DocumentText, Runbook]:
        text = self.library.find(reference)
        return text, self.parse(text.content, text.path, text.name)

    async def find_by_name(self, name: str, version: str | None = None) -> DocumentText:
        """A runbook by name only, never a path (what the API and schedules may ask for):
        a stored document first, then the directories (whose files are version 1)."""
        return await self._find(name, version, self.library.find_by_name)

    async def resolve(self, reference: str, version: str | None = None) -> DocumentText:
        """Like ``load`` (a path or a name), with stored documents looked up first."""
        return await self._find(reference, version, self.library.find)

    async def child_document(
        self, name: str, version: str | None, directories: Sequence[str]
    ) -> DocumentText:
        """A child runbook: a stored document first, then the parent's directories."""
        return await self._find(name, version, DocumentLibrary(directories).find)

    async def _find(
        self, name: str, version: str | None, in_files: Callable[[str], DocumentText]
    ) -> DocumentText:
        if self.repository is not None and STORED_NAME.fullmatch(name):
            try:
                return await self._stored(name, version)
            except DocumentMissing:
                pass
        text = in_files(name)
        if version not in (None, "", "$DEFAULT", "$LATEST", "1"):
            raise DefinitionVersionNotFound(f"Version {version} of document {name} does not exist")
        return text

    async def _stored(self, name: str, version: str | None) -> DocumentText:
        assert self.repository is not None
        try:
            stored = await self.repository.find(name, version)
        except DocumentVersionMissing as exc:
            raise DefinitionVersionNotFound(exc.message) from exc
        if stored.document.document_type != "Automation":
            raise DocumentNotFound(f"Document {name} is not an Automation runbook")
        number = str(stored.version.version)
        return DocumentText(name, f"{name}:{number}", stored.version.content, "", number)

    def parse(self, content: str, path: str, name: str, *, validated: bool = False) -> Runbook:
        """The runbook of a text; ``validated``: the text passed every check before (it is
        an execution's saved document), so parsing it is enough."""
        # A tuple, not a joined string: a step's lookup hashes no text (a str caches its
        # hash), where joining copied and hashed the whole document at every step.
        key = (name, content)
        runbook = self._runbooks.pop(key, None)
        if runbook is None:
            schemas = self.registry.schemas()
            if validated:
                report = _parsed_only(content, path, schemas, name)
            else:
                report = validate_text(content, path, schemas, name=name)
            runbook = runbook_from_report(report)
            if len(self._runbooks) >= _PARSED_KEPT:
                del self._runbooks[next(iter(self._runbooks))]  # the least recently used
        self._runbooks[key] = runbook
        return runbook

    def runbook_of(self, execution: ExecutionRecord) -> Runbook:
        """The runbook an execution runs (parsed from the text saved at its start)."""
        path = str(execution.extra.get("document_path") or execution.document_name)
        return self.parse(execution.document_content, path, execution.document_name, validated=True)

    def attachments(self, execution: ExecutionRecord) -> Mapping[str, bytes]:
        """The files an execution's runbook names, read from the directory it came from."""
        directory = execution.extra.get("document_dir")
        runbook = self.runbook_of(execution)
        files: dict[str, bytes] = {}
        if directory:
            for name in runbook.files:
                path = Path(directory) / name
                if path.is_file():
                    files[name] = path.read_bytes()
        return files


def _parsed_only(
    content: str, path: str, schemas: Mapping[str, ActionSchema], name: str
) -> ValidationReport:
    """Parse a document without the expression and step-graph checks."""
    try:
        source = load_source(content, path)
    except SourceSyntaxError as exc:
        return ValidationReport(path, None, None, (exc.diagnostic,))
    runbook, diagnostics = parse_runbook(source, schemas, name)
    return ValidationReport(path, "Automation", runbook, tuple(diagnostics), source)
