"""The loader's cache of parsed runbooks: every step looks its execution's runbook up,
so a hit must be cheap, and a long-running daemon must not keep every text it met."""

from __future__ import annotations

from runbook_engine.documents import DocumentLibrary
from runbook_engine.registry import default_registry
from runbook_engine.runbook_loader import RunbookLoader


def text(n: int) -> str:
    return f"schemaVersion: '0.3'\nmainSteps:\n  - name: s{n}\n    action: aws:sleep\n" + (
        "    inputs: {Duration: PT0S}\n"
    )


def test_a_text_parsed_before_is_not_parsed_again() -> None:
    loader = RunbookLoader(DocumentLibrary(bundled=False), default_registry())
    first = loader.parse(text(1), "one.yaml", "one")
    again = loader.parse("".join(text(1)), "one.yaml", "one")  # an equal text, not the same str
    assert again is first
    assert again.steps[0].name == "s1"
    assert loader.parse(text(1), "one.yaml", "other") is not first  # the name is part of it


def test_the_least_recently_used_runbooks_are_let_go() -> None:
    loader = RunbookLoader(DocumentLibrary(bundled=False), default_registry())
    oldest = loader.parse(text(0), "0.yaml", "0")
    used = loader.parse(text(1), "1.yaml", "1")
    for n in range(2, 64):
        loader.parse(text(n), f"{n}.yaml", str(n))
    assert loader.parse(text(1), "1.yaml", "1") is used  # 64 kept, this one used again
    loader.parse(text(64), "64.yaml", "64")  # one more: the least recently used goes
    loader.parse(text(65), "65.yaml", "65")
    assert loader.parse(text(1), "1.yaml", "1") is used
    reparsed = loader.parse(text(0), "0.yaml", "0")
    assert reparsed is not oldest
    assert reparsed.steps[0].name == oldest.steps[0].name == "s0"
