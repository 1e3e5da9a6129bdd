"""runbook-engine: run AWS Systems Manager Automation runbooks on your own machines."""

from runbook_engine.diagnostics import Diagnostic
from runbook_engine.errors import (
    DocumentError,
    DocumentNotFound,
    ExecutionNotFound,
    InvalidSignal,
    InvalidStatusUpdate,
    ParameterError,
    RunbookError,
)
from runbook_engine.model import CommandDocument, Parameter, Runbook, Step
from runbook_engine.validation import ValidationReport, load_runbook, validate_file, validate_text

__all__ = [
    "CommandDocument",
    "Diagnostic",
    "DocumentError",
    "DocumentNotFound",
    "ExecutionNotFound",
    "InvalidSignal",
    "InvalidStatusUpdate",
    "Parameter",
    "ParameterError",
    "Runbook",
    "RunbookError",
    "Step",
    "ValidationReport",
    "load_runbook",
    "validate_file",
    "validate_text",
]
