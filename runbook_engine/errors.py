"""Errors a user of the engine can meet; each carries the SSM error code it maps to.

::

    RunbookError
     ├── DocumentError                 InvalidDocumentContent (with every located problem)
     │    └── DocumentNotFound         AutomationDefinitionNotFoundException
     │         └── DefinitionVersionNotFound  AutomationDefinitionVersionNotFoundException
     ├── ParameterError                InvalidAutomationExecutionParametersException
     ├── IdempotencyMismatch           IdempotentParameterMismatch (ClientToken reused)
     ├── TargetError                   InvalidTarget
     ├── ExecutionNotFound            AutomationExecutionNotFoundException
     ├── StepNotFound                  AutomationStepNotFoundException
     ├── InvalidSignal                 InvalidAutomationSignalException
     ├── InvalidStatusUpdate           InvalidAutomationStatusUpdateException
     ├── ExecutionClaimed              (another process is running this execution)
     ├── LeaseLost                     (another process took over the execution being run)
     ├── PluginError                   (an action plugin cannot be loaded)
     ├── DocumentMissing               InvalidDocument (no stored document of that name)
     ├── DocumentVersionMissing        InvalidDocumentVersion
     ├── DocumentExists                DocumentAlreadyExists
     ├── DocumentVersionNameTaken      DuplicateDocumentVersionName
     ├── ConcurrentUpdate              TooManyUpdates (another update came first)
     ├── ScheduleError                 InvalidSchedule (a cron or rate expression)
     ├── ScheduleMissing               AssociationDoesNotExist
     └── StoreError                    (the state database failed; cause kept)
          └── StaleRecord              (compare-and-set lost: the record changed since read)

Foreign errors are wrapped and kept as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Sequence

from runbook_engine.diagnostics import Diagnostic


class RunbookError(Exception):
    code = "InternalServerError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DocumentError(RunbookError):
    code = "InvalidDocumentContent"

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = tuple(diagnostics)


class DocumentNotFound(DocumentError):
    code = "AutomationDefinitionNotFoundException"


class DefinitionVersionNotFound(DocumentNotFound):
    code = "AutomationDefinitionVersionNotFoundException"


class ParameterError(RunbookError):
    code = "InvalidAutomationExecutionParametersException"


class IdempotencyMismatch(RunbookError):
    code = "IdempotentParameterMismatch"


class TargetError(RunbookError):
    code = "InvalidTarget"


class ExecutionNotFound(RunbookError):
    code = "AutomationExecutionNotFoundException"


class StepNotFound(RunbookError):
    code = "AutomationStepNotFoundException"


class InvalidSignal(RunbookError):
    code = "InvalidAutomationSignalException"


class InvalidStatusUpdate(RunbookError):
    code = "InvalidAutomationStatusUpdateException"


class ExecutionClaimed(RunbookError):
    code = "InvalidAutomationStatusUpdateException"


class LeaseLost(RunbookError):
    """The lease on an execution went to another process: this one must stop writing."""


class PluginError(RunbookError):
    pass


class DocumentMissing(RunbookError):
    code = "InvalidDocument"


class DocumentVersionMissing(RunbookError):
    code = "InvalidDocumentVersion"


class DocumentExists(RunbookError):
    code = "DocumentAlreadyExists"


class DocumentVersionNameTaken(RunbookError):
    code = "DuplicateDocumentVersionName"


class ConcurrentUpdate(RunbookError):
    code = "TooManyUpdates"


class ScheduleError(RunbookError):
    code = "InvalidSchedule"


class ScheduleMissing(RunbookError):
    code = "AssociationDoesNotExist"


class StoreError(RunbookError):
    pass


class StaleRecord(StoreError):
    """The stored record's version is not the one the writer read: someone else wrote first."""
