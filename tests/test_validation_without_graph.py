"""Validation skips the step graph (networkx) for runbooks without jumps, and finds the same.

``validation.has_jumps`` decides; a runbook it calls jump-free must get exactly the
diagnostics the full graph checks give. Checked on every document of the conformance
corpus and of this repository (runbooks/, tests/fixtures/), with installed actions and
with every SSM action known (so that documents with uninstalled actions still reach the
graph checks).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from runbook_engine import graph, validation
from runbook_engine.inputs import ActionSchema
from runbook_engine.registry import default_registry
from runbook_engine.source import load_source
from runbook_engine.validation import has_jumps, validate_file, validate_text
from tests.conftest import CORPUS

ROOT = Path(__file__).resolve().parent.parent


def _documents() -> list[Path]:
    roots = [CORPUS / "automation", ROOT / "runbooks", ROOT / "tests" / "fixtures"]
    return sorted(p for r in roots for p in r.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))


DOCUMENTS = _documents()


class _EveryAction(Mapping[str, ActionSchema]):
    """Installed schemas, and a permissive one for any other ``aws:`` action."""

    def __init__(self) -> None:
        self.installed = default_registry().schemas()
        self.permissive = ActionSchema(inputs={}, extra_inputs=True)

    def __getitem__(self, name: str) -> ActionSchema:
        if name in self.installed:
            return self.installed[name]
        if name.startswith("aws:"):
            return self.permissive
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.installed)

    def __len__(self) -> int:
        return len(self.installed)


def _diagnostics(
    path: Path, schemas: Mapping[str, ActionSchema] | None
) -> list[tuple[object, ...]]:
    report = validate_file(path, schemas)
    return [(d.line, d.column, d.severity, d.message) for d in report.diagnostics]


@pytest.mark.parametrize("every_action", [False, True], ids=["installed", "every-action"])
def test_same_findings_with_and_without_the_graph(
    corpus: Path, every_action: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    schemas = _EveryAction() if every_action else None
    skipped = 0
    for path in DOCUMENTS:
        fast = _diagnostics(path, schemas)
        with monkeypatch.context() as patched:
            patched.setattr(validation, "has_jumps", lambda runbook: True)
            full = _diagnostics(path, schemas)
        assert fast == full, path
        report = validate_file(path, schemas)
        if isinstance(report.document, validation.Runbook) and not has_jumps(report.document):
            skipped += 1
            assert graph.check_graph(report.document) == [], path
    # Both kinds are in the set: documents that skip the graph and documents that need it.
    assert 50 < skipped < len(DOCUMENTS) - 50


STRAIGHT = """\
schemaVersion: '0.3'
mainSteps:
  - name: one
    action: aws:sleep
    onFailure: Continue
    inputs: {Duration: PT0S}
  - name: two
    action: aws:sleep
    onFailure: Abort
    inputs: {Duration: PT0S}
"""


def _runbook(text: str) -> validation.Runbook:
    report = validate_text(text, "doc.yaml", _EveryAction())
    assert isinstance(report.document, validation.Runbook), report.diagnostics
    return report.document


def test_a_straight_runbook_has_no_jumps() -> None:
    assert has_jumps(_runbook(STRAIGHT)) is False


@pytest.mark.parametrize(
    "extra",
    [
        "nextStep: one",
        "isEnd: true",
        "onFailure: step:one",
        "onCancel: step:one",
    ],
)
def test_each_jump_property_counts(extra: str) -> None:
    text = STRAIGHT.replace("    onFailure: Abort\n", f"    {extra}\n")
    assert has_jumps(_runbook(text)) is True


@pytest.mark.parametrize("action", ["aws:branch", "aws:loop"])
def test_branch_and_loop_count(action: str) -> None:
    inputs = (
        "{Choices: [{NextStep: one, Variable: '{{ automation:EXECUTION_ID }}', StringEquals: x}]}"
        if action == "aws:branch"
        else "{MaxIterations: 1, Steps: [{name: inner, action: aws:sleep,"
        " inputs: {Duration: PT0S}}]}"
    )
    text = STRAIGHT + textwrap.indent(
        f"- name: three\n  action: {action}\n  inputs: {inputs}\n", "  "
    )
    assert has_jumps(_runbook(text)) is True


def test_a_cycle_is_still_reported() -> None:
    """A jump (here a cycle by nextStep) still goes through the graph checks."""
    text = STRAIGHT.replace("    onFailure: Abort\n", "    nextStep: one\n")
    report = validate_text(text, "doc.yaml")
    assert any("unconditional cycle" in d.message for d in report.errors)
    assert load_source(text, "doc.yaml").data["mainSteps"][1]["nextStep"] == "one"
