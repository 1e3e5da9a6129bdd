"""Runs SendCommand commands inside the daemon, as the registered ``aws:runCommand``
action runs them (the engine reaches actions only through the registry): its fleet
machinery (``actions._fleet_command.run_on_instances``) does the rate control, the
delivery timeout, the per-instance invocations and the command's status; the state is
in ``store.commands``.

Each command runs in the runner's task group with a context of its own
(``command_context``); the context's checkpoints become invocation rows here as
instances start and finish. CancelCommand reaches the command through its
``CommandControl`` when it runs in this daemon, and through the store (read at each
lease renewal) when it runs in another daemon on the same database.

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
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import anyio
from anyio.abc import TaskGroup

from runbook_engine.daemon import logs
from runbook_engine.daemon.command_context import (
    CommandContext,
    CommandControl,
    outcome_state,
    parse_command_document,
)
from runbook_engine.engine import Engine
from runbook_engine.errors import RunbookError, StoreError
from runbook_engine.plugin import ActionError, ActionResult
from runbook_engine.store.commands import (
    ALL_INSTANCES,
    CommandQuery,
    CommandRecord,
    CommandRepository,
    InvocationRecord,
    Progress,
)

MAX_INVOCATIONS = 100_000
RUN_COMMAND = "aws:runCommand"
log = logging.getLogger("runbook_engine.daemon")


def _instant(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


class CommandRunner:
    def __init__(self, engine: Engine, *, lease_seconds: float, poll_seconds: float) -> None:
        self.engine = engine
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._running: dict[str, CommandControl] = {}
        self._group: TaskGroup | None = None
        self._ready = anyio.Event()

    @property
    def store(self) -> CommandRepository:
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
        control = CommandControl(command)
        self._running[command.command_id] = control
        self._group.start_soon(self._execute, control)

    async def _execute(self, control: CommandControl) -> None:
        command_id = control.command.command_id
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._keep_lease, control, group)
                await self._run(control)
                group.cancel_scope.cancel()
        except Exception as exc:
            log.exception("command %s failed", command_id)
            with anyio.CancelScope(shield=True):
                try:
                    await self._fail_unfinished(control, f"the command failed: {exc}")
                    await self._finish(
                        control, Progress("Failed", "Failed", *self._counts(control))
                    )
                except Exception:  # the store is out of reach: another daemon adopts it later
                    log.exception("command %s: cannot record the failure", command_id)
        finally:
            self._running.pop(command_id, None)
            with anyio.CancelScope(shield=True):
                try:
                    await self.store.release(command_id, self.engine.owner)
                except StoreError:
                    pass  # the lease runs out by itself

    async def _keep_lease(self, control: CommandControl, group: TaskGroup) -> None:
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

    async def _run(self, control: CommandControl) -> None:
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
            context = CommandContext(self.engine, self.record, control, state, document)
            result = await self.engine.registry[RUN_COMMAND].run(inputs, context)
            if not isinstance(result, ActionResult):
                raise ActionError(f"{RUN_COMMAND} asked to wait, which a command cannot do")
            response = result.response
        except ActionError as exc:
            response = exc.response or {
                "Status": "Failed",
                "StatusDetails": "Failed",
                "Message": exc.message,
            }
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
        # Left unfinished only when the action failed before running anything.
        await self._fail_unfinished(control, str((response or {}).get("Message", "")))
        await self._finish(control, self._final(control, response or {}))

    async def _fail_unfinished(self, control: CommandControl, message: str) -> None:
        for row in list(control.invocations.values()):
            if not row.terminal:
                failed = InvocationRecord(
                    row.command_id,
                    row.instance_id,
                    row.sequence,
                    row.instance_name,
                    "Failed",
                    "Failed",
                    -1,
                    row.start_time,
                    self.engine.now(),
                    stderr=f"{message}\n" if message else "",
                    failed=True,
                )
                await self._save(control, failed)

    # -- progress ---------------------------------------------------------------------------

    async def record(self, control: CommandControl, state: Mapping[str, Any]) -> None:
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
        control: CommandControl,
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

    async def _save(self, control: CommandControl, row: InvocationRecord) -> None:
        control.invocations[row.instance_id] = row
        await self.store.save_invocation(row)

    @staticmethod
    def _counts(control: CommandControl) -> tuple[int, int, int, int]:
        rows = list(control.invocations.values())
        return (
            len(rows),
            sum(1 for r in rows if r.terminal),
            sum(1 for r in rows if r.failed),
            sum(1 for r in rows if r.status_details == "Delivery Timed Out"),
        )

    def _final(self, control: CommandControl, response: Mapping[str, Any]) -> Progress:
        rows = list(control.invocations.values())
        cancelled = [r for r in rows if r.status == "Cancelled"]
        counts = self._counts(control)
        if control.command.cancel_requested is not None and cancelled:
            if all(r.status in ("Success", "Cancelled") for r in rows) or control.command.cancels(
                ALL_INSTANCES
            ):
                return Progress("Cancelled", "Cancelled", *counts)
        return Progress(
            str(response.get("Status", "Failed")),
            str(response.get("StatusDetails", "Failed")),
            *counts,
        )

    async def _finish(self, control: CommandControl, progress: Progress) -> None:
        await self.store.record_progress(control.command.command_id, progress)
        logs.event(
            "command_finished",
            command_id=control.command.command_id,
            status=progress.status,
            details=progress.status_details,
        )
