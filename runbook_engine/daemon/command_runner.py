"""Runs SendCommand commands inside the daemon, as the registered ``aws:runCommand``
action runs them (the engine reaches actions only through the registry): its fleet
machinery (``actions._fleet_command.run_on_instances``) does the rate control, the
delivery timeout, the per-instance invocations and the command's status; the state is
in ``store.commands``.

The command runs in the runner's task group with a small ``ActionContext`` of its own:
its ``checkpoint`` turns the fleet machinery's progress (instances started, invocations
finished with their full output) into invocation rows as they happen; its documents
give the command's own document text (stored or from a file, as SendCommand found it);
its targets wrap the inventory's so that CancelCommand can stop one instance's run (the
target kills the remote process on cancellation) or refuse to start it.

Daemon death and restarts (the policy): every finished invocation is in the store
before the next one is reported. The daemon running a command holds a lease on it,
renewed every ``lease_seconds / 3``. A daemon that stops (SIGTERM) kills the processes
of its running invocations and releases the lease; one that dies (SIGKILL, crash) stops
renewing it. Either way the next daemon to look (every ``poll_seconds``; at start-up
for a single daemon) adopts the command and resumes it the way a resumed
``aws:runCommand`` step resumes: finished invocations stay as they were, an invocation
that had started is recorded ``Failed`` as interrupted (its script may have run, and
scripts are not assumed safe to run twice), instances never started run now.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from runbook_engine.daemon import logs
from runbook_engine.engine import Engine
from runbook_engine.errors import RunbookError, StoreError, TargetError
from runbook_engine.inventory import Instance
from runbook_engine.model import CommandDocument
from runbook_engine.plugin import (
    ActionError,
    ActionResult,
    ChildRequest,
    ChildStatus,
    DocumentAccess,
    FleetAccess,
)
from runbook_engine.source import load_source
from runbook_engine.store.commands import (
    CommandQuery,
    CommandRecord,
    InvocationRecord,
    Progress,
)
from runbook_engine.targets import CommandResult, Target
from runbook_engine.validation import validate_source

MAX_INVOCATIONS = 100_000
RUN_COMMAND = "aws:runCommand"
log = logging.getLogger("runbook_engine.daemon")


def parse_command_document(content: str, name: str, fmt: str | None = None) -> CommandDocument:
    """The Command document of a text, or ``RunbookError`` (InvalidDocument) saying why."""
    source = load_source(content, name, "json" if fmt == "JSON" else "yaml" if fmt else None)
    report = validate_source(source, {}, name)
    if report.kind != "Command" or not isinstance(report.document, CommandDocument):
        raise _invalid_document(f"Document {name} is not a Command document")
    if report.errors:
        summary = "; ".join(d.format() for d in report.errors[:5])
        raise _invalid_document(f"Document {name} is not valid: {summary}")
    return report.document


def _invalid_document(message: str) -> RunbookError:
    error = RunbookError(message)
    error.code = "InvalidDocument"
    return error


class _Control:
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

    def __init__(self, inner: Target, control: _Control) -> None:
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
    def __init__(self, engine: Engine, control: _Control) -> None:
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


class _CommandContext:
    """What ``run_on_instances`` needs of an action context, for one command."""

    signals: Sequence[Any] = ()
    files: Mapping[str, bytes] = {}
    attempt = 1

    def __init__(
        self,
        runner: CommandRunner,
        control: _Control,
        state: Mapping[str, Any],
        document: CommandDocument,
    ) -> None:
        engine = runner.engine
        self._runner = runner
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
        await self._runner.record(self._control, state)

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


def _instant(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


class CommandRunner:
    def __init__(self, engine: Engine, *, lease_seconds: float, poll_seconds: float) -> None:
        self.engine = engine
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._running: dict[str, _Control] = {}
        self._group: TaskGroup | None = None
        self._ready = anyio.Event()

    @property
    def store(self) -> Any:
        return self.engine.store.commands

    def _expires(self) -> datetime:
        return self.engine.now() + timedelta(seconds=self.lease_seconds)

    async def run(self) -> None:
        """Run commands until cancelled; adopt those whose daemon went away."""
        async with anyio.create_task_group() as group:
            self._group = group
            self._ready.set()
            while True:
                try:
                    while (
                        adopted := await self.store.adopt(
                            self.engine.owner, self._expires(), self.engine.now()
                        )
                    ) is not None:
                        if adopted.command_id in self._running:
                            continue  # ours, renewed late: it is running here already
                        logs.event("command_adopted", command_id=adopted.command_id)
                        self._launch(adopted)
                except StoreError:
                    log.exception("commands: store error")
                await anyio.sleep(self.poll_seconds)

    async def submit(self, command: CommandRecord) -> None:
        """Start a command just stored (owned by this daemon)."""
        await self._ready.wait()
        self._launch(command)

    async def cancel(self, command_id: str, instance_ids: Sequence[str]) -> CommandRecord:
        control = self._running.get(command_id)
        stored = await self.store.request_cancel(command_id, instance_ids)
        if control is not None:
            control.apply(stored)
        return stored

    def _launch(self, command: CommandRecord) -> None:
        assert self._group is not None
        control = _Control(command)
        self._running[command.command_id] = control
        self._group.start_soon(self._execute, control)

    async def _execute(self, control: _Control) -> None:
        command_id = control.command.command_id
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._keep_lease, control, group)
                await self._run(control)
                group.cancel_scope.cancel()
        except Exception:
            log.exception("command %s failed", command_id)
            with anyio.CancelScope(shield=True):
                await self._finish(control, Progress("Failed", "Failed", *self._counts(control)))
        finally:
            self._running.pop(command_id, None)
            with anyio.CancelScope(shield=True):
                try:
                    await self.store.release(command_id, self.engine.owner)
                except StoreError:
                    pass  # the lease runs out by itself

    async def _keep_lease(self, control: _Control, group: TaskGroup) -> None:
        while True:
            await anyio.sleep(self.lease_seconds / 3)
            stored = await self.store.renew(
                control.command.command_id, self.engine.owner, self._expires()
            )
            if stored is None:  # another daemon took it over: stop here
                logs.event("command_lost", logging.WARNING, command_id=control.command.command_id)
                group.cancel_scope.cancel()
                return
            if stored.cancel_requested != control.command.cancel_requested:
                control.apply(stored)  # a CancelCommand that another daemon answered

    async def _run(self, control: _Control) -> None:
        command = control.command
        control.apply(command)
        rows = await self.store.list_invocations(
            CommandQuery(command_id=command.command_id), limit=MAX_INVOCATIONS
        )
        control.invocations = {row.instance_id: row for row in rows}
        if not rows:
            await self._finish(control, Progress("Failed", "No Instances In Tag", 0, 0, 0, 0))
            return
        state = {
            "command_id": command.command_id,
            "requested": command.requested.isoformat(),
            "instances": [row.instance_id for row in rows],
            "started": [row.instance_id for row in rows if row.status != "Pending"],
            "done": {row.instance_id: outcome_state(row, command) for row in rows if row.terminal},
        }
        inputs: dict[str, Any] = {
            "DocumentName": command.document_name,
            "Parameters": {k: list(v) for k, v in command.parameters.items()},
            "InstanceIds": [row.instance_id for row in rows],
            "MaxConcurrency": command.max_concurrency,
            "MaxErrors": command.max_errors,
            "TimeoutSeconds": command.timeout_seconds,
        }
        response: Mapping[str, Any] | None
        try:
            document = parse_command_document(command.document_content, command.document_name)
            context = _CommandContext(self, control, state, document)
            result = await self.engine.registry[RUN_COMMAND].run(inputs, context)
            if not isinstance(result, ActionResult):
                raise ActionError(f"{RUN_COMMAND} asked to wait, which a command cannot do")
            response = result.response
        except ActionError as exc:
            response = exc.response
        except RunbookError as exc:  # the document no longer parses: nothing runs
            response = {"Status": "Failed", "StatusDetails": "Failed", "Message": exc.message}
        for record in (response or {}).get("CommandInvocations") or ():
            row = control.invocations.get(record["InstanceId"])
            if row is not None and not row.terminal:  # never started: not checkpointed
                await self._save(
                    control,
                    self._finished_row(
                        control, row, record, "", str(record.get("StandardErrorContent", "")), False
                    ),
                )
        for row in list(control.invocations.values()):
            if not row.terminal:  # the document failed before anything ran
                await self._save(
                    control,
                    InvocationRecord(
                        row.command_id,
                        row.instance_id,
                        row.sequence,
                        row.instance_name,
                        "Failed",
                        "Failed",
                        -1,
                        stderr=str((response or {}).get("Message", "")),
                        failed=True,
                    ),
                )
        await self._finish(control, self._final(control, response or {}))

    # -- progress ---------------------------------------------------------------------------

    async def record(self, control: _Control, state: Mapping[str, Any]) -> None:
        """A checkpoint of the fleet machinery: write what started and what finished."""
        now = self.engine.now()
        for instance_id in state.get("started") or ():
            row = control.invocations.get(instance_id)
            if row is not None and row.status == "Pending":
                await self._save(
                    control,
                    InvocationRecord(
                        row.command_id,
                        row.instance_id,
                        row.sequence,
                        row.instance_name,
                        "InProgress",
                        "In Progress",
                        -1,
                        now,
                    ),
                )
        for instance_id, data in (state.get("done") or {}).items():
            row = control.invocations.get(instance_id)
            if row is None or row.terminal:
                continue
            finished = self._finished_row(
                control,
                row,
                data["record"],
                str(data.get("stdout", "")),
                str(data.get("stderr", "")),
                bool(data.get("failed")),
            )
            await self._save(control, finished)
        running = control.command.cancel_requested is not None
        status = ("Cancelling", "Cancelling") if running else ("InProgress", "In Progress")
        await self.store.record_progress(
            control.command.command_id, Progress(*status, *self._counts(control))
        )

    def _finished_row(
        self,
        control: _Control,
        row: InvocationRecord,
        record: Mapping[str, Any],
        stdout: str,
        stderr: str,
        failed: bool,
    ) -> InvocationRecord:
        status, details = str(record["Status"]), str(record["StatusDetails"])
        if row.instance_id in control.interrupted and status != "Success":
            status, details, failed = "Cancelled", "Cancelled", False
        elif status == "Cancelled" and control.command.cancels(row.instance_id):
            details = "Cancelled"  # never started because of CancelCommand, not MaxErrors
        plugins = [
            {**plugin, "Status": "Cancelled", "StatusDetails": "Cancelled"}
            if status == "Cancelled" and plugin.get("Status") == "Failed"
            else dict(plugin)
            for plugin in record.get("CommandPlugins") or ()
        ]
        return InvocationRecord(
            row.command_id,
            row.instance_id,
            row.sequence,
            row.instance_name,
            status,
            details,
            int(record.get("ResponseCode", -1)),
            _instant(record.get("ExecutionStartDateTime")) or row.start_time,
            _instant(record.get("ExecutionEndDateTime")) or self.engine.now(),
            stdout,
            stderr,
            plugins,
            failed,
        )

    async def _save(self, control: _Control, row: InvocationRecord) -> None:
        control.invocations[row.instance_id] = row
        await self.store.save_invocation(row)

    @staticmethod
    def _counts(control: _Control) -> tuple[int, int, int, int]:
        rows = list(control.invocations.values())
        return (
            len(rows),
            sum(1 for r in rows if r.terminal),
            sum(1 for r in rows if r.failed),
            sum(1 for r in rows if r.status_details == "Delivery Timed Out"),
        )

    def _final(self, control: _Control, response: Mapping[str, Any]) -> Progress:
        rows = list(control.invocations.values())
        cancelled = [r for r in rows if r.status == "Cancelled"]
        counts = self._counts(control)
        if control.command.cancel_requested is not None and cancelled:
            if all(r.status in ("Success", "Cancelled") for r in rows) or control.command.cancels(
                "*"
            ):
                return Progress("Cancelled", "Cancelled", *counts)
        return Progress(
            str(response.get("Status", "Failed")),
            str(response.get("StatusDetails", "Failed")),
            *counts,
        )

    async def _finish(self, control: _Control, progress: Progress) -> None:
        await self.store.record_progress(control.command.command_id, progress)
        logs.event(
            "command_finished",
            command_id=control.command.command_id,
            status=progress.status,
            details=progress.status_details,
        )
