"""The local and waiting actions come through the entry-point door like any plugin."""

from __future__ import annotations

from runbook_engine.registry import default_registry


def test_local_actions_are_registered() -> None:
    registry = default_registry()
    for name in (
        "aws:approve",
        "aws:pause",
        "aws:updateVariable",
        "aws:executeScript",
        "aws:runShellScript",
        "aws:executeAutomation",
    ):
        assert registry[name].name == name
    assert registry["aws:updateVariable"].schema.on_cancel_allowed is False
    assert registry["aws:executeScript"].schema.max_timeout == 600
    assert registry["aws:executeScript"].idempotent is False
    assert registry["aws:executeAutomation"].idempotent is True
