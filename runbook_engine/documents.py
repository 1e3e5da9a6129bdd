"""Finding documents by path or by name: runbooks for ``run`` and aws:executeAutomation,
Command documents for aws:runCommand.

Names resolve against the ``--documents`` directories first, then the runbooks bundled
with runbook-engine (``runbooks/``). A document's name is its file name without the
extension.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runbook_engine.errors import DocumentNotFound

EXTENSIONS = (".yaml", ".yml", ".json")
BUNDLED = Path(__file__).resolve().parent.parent / "runbooks"


@dataclass(frozen=True)
class DocumentText:
    name: str
    path: str
    content: str
    directory: str = ""  # where attachments named in ``files`` are looked for
    version: str = "1"  # a stored document's version; a file is version 1


class DocumentLibrary:
    def __init__(self, directories: Sequence[str | Path] = (), *, bundled: bool = True) -> None:
        dirs = [Path(d).expanduser() for d in directories]
        if bundled and BUNDLED.is_dir():
            dirs.append(BUNDLED)
        self.directories = tuple(dirs)

    def find(self, reference: str) -> DocumentText:
        """A path to a file, or a document name looked up in the directories."""
        path = Path(reference).expanduser()
        if path.suffix.lower() in EXTENSIONS or path.is_file():
            if not path.is_file():
                raise DocumentNotFound(f"Document file {reference} does not exist")
            return self._read(path)
        for candidate in self._candidates(reference):
            return self._read(candidate)
        searched = ", ".join(str(d) for d in self.directories) or "no directories"
        raise DocumentNotFound(f"Document {reference} was not found (searched {searched})")

    def find_by_name(self, name: str) -> DocumentText:
        """A document by name in the directories only, never a path: what a remote
        caller (the daemon's API) may ask for."""
        if "/" in name or "\\" in name or name in (".", ".."):
            raise DocumentNotFound(f"Document {name} was not found")
        for candidate in self._candidates(name):
            return self._read(candidate)
        raise DocumentNotFound(f"Document {name} was not found")

    def _candidates(self, name: str) -> Iterator[Path]:
        for directory in self.directories:
            for extension in EXTENSIONS:
                candidate = directory / f"{name}{extension}"
                if candidate.is_file():
                    yield candidate

    def names(self) -> Iterable[str]:
        seen: set[str] = set()
        for directory in self.directories:
            for path in sorted(directory.iterdir()) if directory.is_dir() else ():
                if path.suffix.lower() in EXTENSIONS and path.stem not in seen:
                    seen.add(path.stem)
                    yield path.stem

    @staticmethod
    def _read(path: Path) -> DocumentText:
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DocumentNotFound(f"Cannot read document {path}: {exc}") from exc
        return DocumentText(path.stem, str(path), content, str(path.resolve().parent))
