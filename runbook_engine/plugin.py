"""The surface an action sees: its context, what it returns, how it fails.

Errors::

    ActionError                 the step fails (FailureDetails from its fields)
     └── ActionTimeout          the step times out (status TimedOut)

An action's ``run`` returns either :class:`ActionResult` (done) or :class:`Suspend`
(park the step durably: the scheduler records what it waits for and until when, holds
no task, and calls ``run`` again when a signal arrives or the time comes, with the
saved ``state`` in ``ctx.state``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from runbook_engine.inputs import ActionSchema

if TYPE_CHECKING:
    from runbook_engine.aws import AwsCaller
    from runbook_engine.inventory import Instance
    from runbook_engine.model import CommandDocument
    from runbook_engine.parameters import ParameterStore
    from runbook_engine.targets import Target


class FailureType(StrEnum):
    ACTION = "Action"
    PERMISSION = "Permission"
    THROTTLING = "Throttling"
    VERIFICATION = "Verification"
    INTERNAL = "Internal"


class FailureStage(StrEnum):
    INPUT_VALIDATION = "InputValidation"
    PRE_VERIFICATION = "PreVerification"
    INVOCATION = "Invocation"
    POST_VERIFICATION = "PostVerification"


class ActionError(Exception):
    """The action failed; ``message`` is what the user reads."""

    timed_out = False

    def __init__(
        self,
        message: str,
        *,
        failure_type: FailureType = FailureType.ACTION,
        stage: FailureStage = FailureStage.INVOCATION,
        details: Mapping[str, list[str]] | None = None,
        outputs: Mapping[str, Any] | None = None,
        response: Any = None,
        logs: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.failure_type = failure_type
        self.stage = stage
        self.details = dict(details or {})
        self.outputs = dict(outputs or {})
        self.response = response  # kept on the failed step record, as ActionResult's
        self.logs = logs


class ActionTimeout(ActionError):
    timed_out = True


@dataclass(frozen=True)
class ActionResult:
    """A finished action: predefined outputs, and the object custom selectors read."""

    outputs: Mapping[str, Any] = field(default_factory=dict)
    response: Any = None  # selector root; defaults to ``outputs`` when None
    logs: str = ""  # full stdout/stderr or other text kept in the store


@dataclass(frozen=True)
class Suspend:
    """Park the step until ``wake_at`` or one of ``signals`` arrives."""

    status: Literal["Waiting", "InProgress"] = "Waiting"
    wake_at: datetime | None = None
    signals: tuple[str, ...] = ()
    state: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""  # shown to whoever runs it (aws:approve Message)
    child_execution_id: str | None = None  # woken when that execution ends


@dataclass(frozen=True)
class SignalView:
    """A signal delivered to the running step."""

    type: str
    principal: str
    payload: Mapping[str, list[str]]
    time: datetime


@dataclass(frozen=True)
class SignalRequest:
    """A signal someone wants to send to a waiting step; the action may refuse it."""

    step_name: str
    inputs: Mapping[str, Any]
    signal_type: str
    principal: str
    payload: Mapping[str, list[str]]


SignalCheck = Callable[[SignalRequest], "str | None"]


@dataclass(frozen=True)
class ChildRequest:
    """What aws:executeAutomation asks the engine to start."""

    document_name: str
    document_version: str | None
    parameters: Mapping[str, list[str]]
    targets: Sequence[Mapping[str, Any]] | None = None
    target_parameter_name: str | None = None
    target_maps: Sequence[Mapping[str, Any]] | None = None
    max_concurrency: str | None = None
    max_errors: str | None = None


@dataclass(frozen=True)
class ChildStatus:
    execution_id: str
    status: str
    outputs: Mapping[str, list[str]]
    failure_message: str | None


class FleetAccess(Protocol):
    """``ctx.targets``: managed instances from the inventory, and targets to run on."""

    ramp_up: bool  # rate control starts with 1 target, then 2, 4 ... (the default)

    async def resolve(
        self,
        instance_ids: Sequence[str] | None = None,
        targets: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[Instance]:
        """Instances named by InstanceIds or Targets; unknown ids raise TargetError."""
        ...

    def target(self, instance: Instance) -> Target: ...


class DocumentAccess(Protocol):
    """``ctx.documents``: Command documents by name (--documents dirs, bundled runbooks)."""

    def command_document(self, name: str) -> CommandDocument: ...


class ActionContext(Protocol):
    """What a running action may use; nothing else of the engine is reachable."""

    execution_id: str
    step_name: str
    step_execution_id: str
    attempt: int
    state: Mapping[str, Any]
    signals: Sequence[SignalView]
    log: logging.Logger
    region: str
    account_id: str
    files: Mapping[str, bytes]  # runbook attachments by name
    targets: FleetAccess
    documents: DocumentAccess

    def now(self) -> datetime: ...

    @property
    def aws(self) -> AwsCaller:
        """The AWS caller (runbook_engine.aws), with the runbook's assumeRole if set."""
        ...

    @property
    def parameters(self) -> ParameterStore:
        """The Parameter Store (runbook_engine.parameters): local or AWS SSM."""
        ...

    async def checkpoint(self, state: Mapping[str, Any]) -> None:
        """Save progress durably while the step runs. A step interrupted after a
        checkpoint is resumed with that state in ``ctx.state`` (not failed as
        interrupted): the action itself skips the work the state says is done."""
        ...

    async def start_child(self, request: ChildRequest) -> str: ...

    async def child_status(self, execution_id: str) -> ChildStatus: ...

    async def cancel_child(self, execution_id: str) -> None: ...


@runtime_checkable
class Action(Protocol):
    """An action plugin, registered under the ``runbook_engine.actions`` entry points."""

    name: str
    schema: ActionSchema
    idempotent: bool

    async def run(
        self, inputs: Mapping[str, Any], ctx: ActionContext
    ) -> ActionResult | Suspend: ...


RunFunction = Callable[[Mapping[str, Any], ActionContext], Awaitable[ActionResult | Suspend]]
ReadsOnly = Callable[[Mapping[str, Any]], bool]


def only_reads(action: Action, inputs: Mapping[str, Any]) -> bool:
    """Whether running ``action`` with these (rendered) inputs only reads: nothing
    outside the execution changes, so running it again is harmless. An action says so
    with a ``reads_only(inputs)`` attribute; one without it is taken to change things."""
    check: ReadsOnly | None = getattr(action, "reads_only", None)
    return check is not None and check(inputs)


@dataclass(frozen=True)
class SimpleAction:
    """An action made of a schema and a coroutine function (how built-ins are written)."""

    name: str
    schema: ActionSchema
    run_function: RunFunction | None
    idempotent: bool = False
    description: str = ""
    runnable_reason: str | None = None  # why it cannot run here, when run_function is None
    signal_check: SignalCheck | None = None  # why a signal must be refused, or None
    reads_only: ReadsOnly | None = None  # see only_reads

    async def run(self, inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult | Suspend:
        if self.run_function is None:
            raise ActionError(
                f"{self.name} cannot run here: {self.runnable_reason or 'no implementation'}",
                stage=FailureStage.PRE_VERIFICATION,
            )
        return await self.run_function(inputs, ctx)
