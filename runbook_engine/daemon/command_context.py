"""What a command runs with: its document, and the small ``ActionContext`` the registered
``aws:runCommand`` action gets for it (``command_runner``).

The context's ``checkpoint`` hands the fleet machinery's progress to the runner, which
writes it as invocation rows; its documents give the command's own document text (as
SendCommand found it: stored, or from a file); its targets wrap the inventory's so that
CancelCommand can stop one instance's run (a target kills the remote process when its
run is cancelled) or refuse to start it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import anyio

from runbook_engine.engine import Engine
from runbook_engine.errors import RunbookError, TargetError
from runbook_engine.inventory import Instance
from runbook_engine.model import CommandDocument
from runbook_engine.plugin import (
    ActionError,
    ChildRequest,
    ChildStatus,
    DocumentAccess,
    FleetAccess,
)
from runbook_engine.source import load_source
from runbook_engine.store.commands import CommandRecord, InvocationRecord
from runbook_engine.targets import CommandResult, Target
from runbook_engine.validation import validate_source

log = logging.getLogger("runbook_engine.daemon")
Checkpoint = Callable[["CommandControl", Mapping[str, Any]], Awaitable[None]]


def parse_command_document(content: str, name: str, fmt: str | None = None) -> CommandDocument:
    """The Command document of a text, or ``RunbookError`` (InvalidDocument) saying why."""
    source = load_source(content, name, "json" if fmt == "JSON" else "yaml" if fmt else None)
    report = validate_source(source, {}, name)
    if report.kind != "Command" or not isinstance(report.document, CommandDocument):
        raise InvalidCommandDocument(f"Document {name} is not a Command document")
    if report.errors:
        summary = "; ".join(d.format() for d in report.errors[:5])
        raise InvalidCommandDocument(f"Document {name} is not valid: {summary}")
    return report.document


class InvalidCommandDocument(RunbookError):
    code = "InvalidDocument"


class CommandControl:
    """One running command: what was asked to stop, and how to stop what runs."""

    def __init__(self, command: CommandRecord) -> None:
        self.command = command
        self.scopes: dict[str, anyio.CancelScope] = {}
        self.interrupted: set[str] = set()  # runs CancelCommand stopped or refused
        self.invocations: dict[str, InvocationRecord] = {}

    def apply(self, command: CommandRecord) -> None:
        """Take a (newer) cancellation request into account: stop what it names."""
        self.command = command
        for instance_id, scope in list(self.scopes.items()):
            if command.cancels(instance_id):
                scope.cancel()

    async def guard(self, instance_id: str, call: Callable[[], Awaitable[Any]]) -> Any:
        if self.command.cancels(instance_id):
            self.interrupted.add(instance_id)
            raise TargetError(f"{instance_id}: cancelled by CancelCommand before it started")
        with anyio.CancelScope() as scope:
            self.scopes[instance_id] = scope
            try:
                return await call()
            finally:
                self.scopes.pop(instance_id, None)
        self.interrupted.add(instance_id)
        raise TargetError(f"{instance_id}: cancelled by CancelCommand: the process was killed")


class _CancellableTarget:
    """An inventory target whose runs CancelCommand can stop."""

    def __init__(self, inner: Target, control: CommandControl) -> None:
        self._inner = inner
        self._control = control
        self.instance_id = inner.instance_id
        self.platform = inner.platform

    async def run(self, script: str, **options: Any) -> CommandResult:
        result: CommandResult = await self._control.guard(
            self.instance_id, lambda: self._inner.run(script, **options)
        )
        return result

    async def copy(self, source: str | Path | bytes, remote_path: str) -> None:
        await self._inner.copy(source, remote_path)

    async def reboot(self, time_limit: float) -> None:
        await self._control.guard(self.instance_id, lambda: self._inner.reboot(time_limit))

    async def close(self) -> None:
        await self._inner.close()


class _Fleet:
    def __init__(self, engine: Engine, control: CommandControl) -> None:
        self._fleet = engine.fleet
        self._control = control
        self.ramp_up = engine.fleet.ramp_up

    async def resolve(
        self,
        instance_ids: Sequence[str] | None = None,
        targets: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[Instance]:
        return await self._fleet.resolve(instance_ids, targets)

    def target(self, instance: Instance) -> Target:
        return _CancellableTarget(self._fleet.target(instance), self._control)


class _Documents:
    """The command's own document, whatever name the action asks for."""

    def __init__(self, document: CommandDocument) -> None:
        self._document = document

    def command_document(self, name: str) -> CommandDocument:
        return self._document


class CommandContext:
    """The action context ``aws:runCommand`` runs one command with."""

    signals: Sequence[Any] = ()
    files: Mapping[str, bytes] = MappingProxyType({})
    attempt = 1

    def __init__(
        self,
        engine: Engine,
        checkpoint: Checkpoint,
        control: CommandControl,
        state: Mapping[str, Any],
        document: CommandDocument,
    ) -> None:
        self._checkpoint = checkpoint
        self._control = control
        self._engine = engine
        self.execution_id = self.step_execution_id = control.command.command_id
        self.step_name = "SendCommand"
        self.state = state
        self.log = log
        self.region = engine.settings.region
        self.account_id = engine.settings.account_id
        self.targets: FleetAccess = _Fleet(engine, control)
        self.documents: DocumentAccess = _Documents(document)

    def now(self) -> datetime:
        return self._engine.now()

    @property
    def aws(self) -> Any:
        return self._engine.aws

    @property
    def parameters(self) -> Any:
        return self._engine.parameters

    async def checkpoint(self, state: Mapping[str, Any]) -> None:
        await self._checkpoint(self._control, state)

    async def start_child(self, request: ChildRequest) -> str:
        raise ActionError("a command cannot start automations")

    async def child_status(self, execution_id: str) -> ChildStatus:
        raise ActionError("a command has no child executions")

    async def cancel_child(self, execution_id: str) -> None:
        raise ActionError("a command has no child executions")


def outcome_state(invocation: InvocationRecord, command: CommandRecord) -> dict[str, Any]:
    """An invocation row as the fleet machinery's checkpoint holds a finished one."""
    record = {
        "CommandId": invocation.command_id,
        "InstanceId": invocation.instance_id,
        "InstanceName": invocation.instance_name,
        "Status": invocation.status,
        "StatusDetails": invocation.status_details,
        "ResponseCode": invocation.response_code,
        "RequestedDateTime": command.requested.isoformat(),
        "StandardOutputContent": invocation.stdout,
        "StandardErrorContent": invocation.stderr,
        "CommandPlugins": list(invocation.plugins),
    }
    return {
        "record": record,
        "stdout": invocation.stdout,
        "stderr": invocation.stderr,
        "failed": invocation.failed,
    }
