"""Placeholder until the expression module lands."""

from __future__ import annotations

from collections.abc import Mapping

from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema
from runbook_engine.model import Runbook


def check_runbook(runbook: Runbook, schemas: Mapping[str, ActionSchema]) -> list[Finding]:
    return []
