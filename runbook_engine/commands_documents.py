"""``runbook validate`` and ``runbook graph``: commands that read documents and run nothing."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
import networkx as nx

from runbook_engine.cli import emit_json, global_options, output_format
from runbook_engine.diagnostics import Diagnostic, format_path
from runbook_engine.errors import DocumentError, DocumentNotFound
from runbook_engine.graph import END, build_graph, to_dot, to_mermaid
from runbook_engine.registry import default_registry
from runbook_engine.validation import ValidationReport, runbook_from_report, validate_text

DOCUMENT_SUFFIXES = (".yaml", ".yml", ".json")


def document_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and every ``*.yaml``/``*.yml``/``*.json`` under given directories."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES
            )
            if not inside:
                raise DocumentNotFound(f"no .yaml, .yml or .json documents under {path}")
            found.extend(inside)
        elif path.exists():
            found.append(path)
        else:
            raise DocumentNotFound(f"no such file or directory: {path}")
    return found


def read_document(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(f"cannot read {path}: {exc}") from exc


def _diagnostic_json(diagnostic: Diagnostic) -> dict[str, Any]:
    return {
        "line": diagnostic.line,
        "column": diagnostic.column,
        "path": format_path(diagnostic.path),
        "message": diagnostic.message,
    }


def report_json(report: ValidationReport) -> dict[str, Any]:
    """One entry of ``runbook validate --output json``."""
    return {
        "path": report.path,
        "valid": report.valid,
        "errors": [_diagnostic_json(d) for d in report.errors],
        "warnings": [_diagnostic_json(d) for d in report.warnings],
    }


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary_line(reports: list[ValidationReport]) -> str:
    valid = sum(1 for r in reports if r.valid)
    errors = sum(len(r.errors) for r in reports)
    warnings = sum(len(r.warnings) for r in reports)
    return (
        f"{_count(len(reports), 'document')}: {valid} valid, {len(reports) - valid} invalid "
        f"({_count(errors, 'error')}, {_count(warnings, 'warning')})"
    )


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@global_options
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Check documents (runbooks and Command documents); run nothing.

    Directories are searched for *.yaml, *.yml and *.json files. Exit code 0 when every
    document is valid, 1 when one is not, 2 when a path cannot be read.
    """
    files = document_paths(paths)
    texts = [(str(path), read_document(path)) for path in files]
    schemas = default_registry().schemas()
    reports = [validate_text(text, path, schemas) for path, text in texts]
    if output_format(ctx) == "json":
        emit_json([report_json(r) for r in reports])
    else:
        for report in reports:
            for diagnostic in report.diagnostics:
                click.echo(diagnostic.format())
        click.echo(summary_line(reports))
    ctx.exit(0 if all(r.valid for r in reports) else 1)


def graph_json(graph: nx.DiGraph, fmt: str, text: str) -> dict[str, Any]:
    return {
        "name": graph.graph.get("name"),
        "nodes": [
            {"name": "END" if node == END else node, "action": data.get("action")}
            for node, data in graph.nodes(data=True)
        ],
        "edges": [
            {
                "from": source,
                "to": "END" if target == END else target,
                "kind": data["kind"],
                "kinds": list(data["kinds"]),
                "label": data["label"],
            }
            for source, target, data in graph.edges(data=True)
        ],
        "format": fmt,
        "text": text,
    }


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["dot", "mermaid"]), default="dot", show_default=True
)
@global_options
@click.pass_context
def graph(ctx: click.Context, path: Path, fmt: str) -> None:
    """Draw a runbook's possible step transitions as Graphviz DOT or Mermaid."""
    if not path.is_file():
        raise DocumentNotFound(f"no such file: {path}")
    report = validate_text(read_document(path), str(path), default_registry().schemas())
    step_graph = build_graph(runbook_from_report(report))
    text = to_dot(step_graph) if fmt == "dot" else to_mermaid(step_graph)
    if output_format(ctx) == "json":
        emit_json(graph_json(step_graph, fmt, text))
    else:
        click.echo(text, nl=False)
