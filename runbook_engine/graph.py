"""Placeholder until the graph module lands."""

from __future__ import annotations

from runbook_engine.diagnostics import Finding
from runbook_engine.model import Runbook


def check_graph(runbook: Runbook) -> list[Finding]:
    return []
