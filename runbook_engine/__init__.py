"""runbook-engine: run AWS Systems Manager Automation runbooks on your own machines.

The execution side (``Engine``, ``SyncEngine``, ``ExecutionView``, ``Settings``) is
imported on first use, so that validating documents does not load the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runbook_engine.diagnostics import Diagnostic
from runbook_engine.errors import (
    DocumentError,
    DocumentNotFound,
    ExecutionClaimed,
    ExecutionNotFound,
    InvalidSignal,
    InvalidStatusUpdate,
    ParameterError,
    RunbookError,
    StepNotFound,
)
from runbook_engine.model import CommandDocument, Parameter, Runbook, Step
from runbook_engine.status import Mode, Status
from runbook_engine.validation import ValidationReport, load_runbook, validate_file, validate_text

if TYPE_CHECKING:
    from runbook_engine.engine import Engine, ExecutionView
    from runbook_engine.settings import Settings
    from runbook_engine.sync import SyncEngine

_LAZY = {
    "Engine": "runbook_engine.engine",
    "ExecutionView": "runbook_engine.engine",
    "Settings": "runbook_engine.settings",
    "SyncEngine": "runbook_engine.sync",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runbook_engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "CommandDocument",
    "Diagnostic",
    "DocumentError",
    "DocumentNotFound",
    "Engine",
    "ExecutionClaimed",
    "ExecutionNotFound",
    "ExecutionView",
    "InvalidSignal",
    "InvalidStatusUpdate",
    "Mode",
    "Parameter",
    "ParameterError",
    "Runbook",
    "RunbookError",
    "Settings",
    "Status",
    "Step",
    "StepNotFound",
    "SyncEngine",
    "ValidationReport",
    "load_runbook",
    "validate_file",
    "validate_text",
]
