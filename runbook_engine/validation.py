"""Whole-document validation: structure, action inputs, expressions and the step graph.

This is what ``runbook validate`` runs and what every execution runs first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runbook_engine import expressions
from runbook_engine.command_documents import COMMAND_SCHEMA_VERSIONS, parse_command_document
from runbook_engine.diagnostics import Diagnostic, Finding
from runbook_engine.errors import DocumentError
from runbook_engine.inputs import ActionSchema
from runbook_engine.model import BRANCH, LOOP, CommandDocument, Runbook
from runbook_engine.parser import parse_runbook
from runbook_engine.source import Source, SourceSyntaxError, load_source

DocumentKind = Literal["Automation", "Command"]


@dataclass(frozen=True)
class ValidationReport:
    path: str
    kind: DocumentKind | None
    document: Runbook | CommandDocument | None
    diagnostics: tuple[Diagnostic, ...]
    source: Source | None = None

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if not d.is_error)

    @property
    def valid(self) -> bool:
        return self.document is not None and not self.errors


def document_name(path: str) -> str:
    """A document's name from its file name: ``runbooks/Hello-World.yaml`` -> ``Hello-World``."""
    name = Path(path).name
    for suffix in (".yaml", ".yml", ".json"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _default_schemas() -> Mapping[str, ActionSchema]:
    from runbook_engine.registry import default_registry

    return default_registry().schemas()


def validate_source(
    source: Source, schemas: Mapping[str, ActionSchema] | None = None, name: str | None = None
) -> ValidationReport:
    schemas = schemas if schemas is not None else _default_schemas()
    name = name or document_name(source.path)
    data = source.data
    version = str(data.get("schemaVersion", "")) if isinstance(data, dict) else ""
    if version in COMMAND_SCHEMA_VERSIONS:
        command, diagnostics = parse_command_document(source, name)
        return ValidationReport(source.path, "Command", command, tuple(diagnostics), source)
    runbook, diagnostics = parse_runbook(source, schemas, name)
    if runbook is not None:
        findings: list[Finding] = list(expressions.check_runbook(runbook, schemas))
        if has_jumps(runbook):
            # Imported here: networkx costs a process ~0.2 s of start-up, and a runbook
            # without jumps has nothing for the graph checks to find (see has_jumps).
            from runbook_engine import graph

            findings.extend(graph.check_graph(runbook))
            findings.extend(graph.check_cancel_targets(runbook, schemas))
        diagnostics.extend(
            source.diagnostic(f.path, f.message, severity=f.severity, at_key=f.at_key)
            for f in findings
        )
    diagnostics.sort(key=lambda d: (d.line, d.column, d.severity))
    return ValidationReport(source.path, "Automation", runbook, tuple(diagnostics), source)


def has_jumps(runbook: Runbook) -> bool:
    """Whether any step may go elsewhere than to the next step in order.

    Without ``nextStep``, ``isEnd``, ``onFailure``/``onCancel: step:X``, ``aws:branch``
    or ``aws:loop``, the step graph is the list of steps in order followed by END: no
    jump can name an unknown step, no cycle exists, every step is reached from the first
    and no onCancel target exists, so :func:`runbook_engine.graph.check_graph` and
    ``check_cancel_targets`` find nothing and validation need not build the graph.
    """
    return any(
        step.next_step is not None
        or step.is_end
        or step.failure_target is not None
        or step.cancel_target is not None
        or step.action in (BRANCH, LOOP)
        or step.steps
        for step in runbook.all_steps()
    )


def validate_text(
    text: str,
    path: str = "<string>",
    schemas: Mapping[str, ActionSchema] | None = None,
    name: str | None = None,
) -> ValidationReport:
    try:
        source = load_source(text, path)
    except SourceSyntaxError as exc:
        return ValidationReport(path, None, None, (exc.diagnostic,))
    return validate_source(source, schemas, name)


def validate_file(
    path: str | Path, schemas: Mapping[str, ActionSchema] | None = None
) -> ValidationReport:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return ValidationReport(
            str(path), None, None, (Diagnostic(str(path), 1, 1, (), f"cannot read: {exc}"),)
        )
    return validate_text(text, str(path), schemas)


def load_runbook(path: str | Path, schemas: Mapping[str, ActionSchema] | None = None) -> Runbook:
    """A valid runbook from a file, or :class:`DocumentError` with every problem."""
    report = validate_file(path, schemas)
    return runbook_from_report(report)


def runbook_from_report(report: ValidationReport) -> Runbook:
    if not report.valid or not isinstance(report.document, Runbook):
        problems = report.errors or (
            Diagnostic(report.path, 1, 1, (), "not an Automation runbook (schemaVersion 0.3)"),
        )
        summary = "; ".join(d.format() for d in problems[:5])
        raise DocumentError(f"invalid runbook {report.path}: {summary}", problems)
    return report.document
