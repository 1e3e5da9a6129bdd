"""Rate-controlled automations: one child execution per target value (ssm-reference §5.5).

A parent started with ``Targets``/``TargetParameterName`` or ``TargetMaps`` runs no step
of its runbook. It resolves the targets into values (kept as ``ResolvedTargets``), then
starts one child per value under :mod:`runbook_engine.ratecontrol` (ramp-up,
``MaxConcurrency``, ``MaxErrors``) through :func:`runbook_engine.fanout.fan_out`.

Its step executions are one per target (``StepName`` = the value, ``aws:executeAutomation``),
written before the child starts, so a resumed parent finds each target's record and, through
``Engine.start_child``'s lookup by parent step execution, the child already started for it:
a crash never starts a second child for a target. Targets never started are recorded
``Cancelled``. The parent ends ``Success`` when every child succeeded, ``Cancelled`` when it
was cancelled, else ``Failed``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio

from runbook_engine.errors import LeaseLost, ParameterError, RunbookError, StaleRecord
from runbook_engine.plugin import ChildRequest
from runbook_engine.ratecontrol import RateControl
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.status import Status

if TYPE_CHECKING:
    from runbook_engine.engine import Engine

AUTOMATION_CONCURRENCY = "10"  # StartAutomationExecution's default (§5.5)
AUTOMATION_ERRORS = "0"  # not stated for automations: Run Command's default
ACTION = "aws:executeAutomation"
POLL_SECONDS = 0.2  # a child run by another process is polled this often


def is_rate_controlled(execution: ExecutionRecord) -> bool:
    return bool(execution.target_parameter_name or execution.target_maps)


def check_targets(
    parameter_names: Sequence[str],
    target_parameter_name: str | None,
    targets: Sequence[Mapping[str, Any]],
    target_maps: Sequence[Mapping[str, Any]],
    max_concurrency: str | None,
    max_errors: str | None,
) -> None:
    """Reject what StartAutomationExecution rejects (a :class:`ParameterError`)."""
    if targets and target_maps:
        raise ParameterError("Targets and TargetMaps cannot be given together")
    if bool(targets) != bool(target_parameter_name):
        raise ParameterError("TargetParameterName and Targets must be given together")
    if target_parameter_name and target_parameter_name not in parameter_names:
        raise ParameterError(
            f"TargetParameterName {target_parameter_name} is not a parameter of the runbook"
        )
    if len(targets) > 5:
        raise ParameterError("At most 5 Targets can be given")
    if len(target_maps) > 300:
        raise ParameterError("At most 300 TargetMaps can be given")
    try:
        RateControl(
            max_concurrency or AUTOMATION_CONCURRENCY, max_errors or AUTOMATION_ERRORS
        ).check()
    except ValueError as exc:
        raise ParameterError(str(exc)) from exc


def map_label(target_map: Mapping[str, Any]) -> str:
    """The step name standing for one TargetMaps entry."""
    return json.dumps(target_map, sort_keys=True, separators=(",", ":"))


@dataclass
class _Target:
    label: str  # the step name
    inputs: dict[str, Any]
    parameters: dict[str, list[str]]  # the child's parameters


class RateControlledDriver:
    """Drives one rate-controlled parent while the engine holds its lease."""

    def __init__(self, engine: Engine, execution: ExecutionRecord) -> None:
        self.engine = engine
        self.execution = execution
        self.wakeup = anyio.Event()  # set on stop requests; children watch the record

    async def _save(self, **changes: Any) -> None:
        with anyio.CancelScope(shield=True):
            while True:
                try:
                    self.execution = await self.engine.store.update_execution(
                        replace(self.execution, **changes),
                        expected_version=self.execution.version,
                    )
                    return
                except StaleRecord:
                    fresh = await self.engine.store.get_execution(self.execution.execution_id)
                    if fresh.owner is not None and fresh.owner != self.engine.owner:
                        raise LeaseLost(
                            f"Execution {fresh.execution_id} was taken over by {fresh.owner}"
                        ) from None
                    self.execution = replace(
                        self.execution,
                        stop_requested=fresh.stop_requested,
                        status=fresh.status,
                        version=fresh.version,
                    )

    async def _put(self, record: StepRecord) -> None:
        with anyio.CancelScope(shield=True):
            await self.engine.store.put_step(record)
        if self.engine.listener is not None:
            self.engine.listener(record)

    async def _cancelled(self) -> bool:
        fresh = await self.engine.store.get_execution(self.execution.execution_id)
        return fresh.stop_requested == "Cancel"

    async def _targets(self) -> list[_Target]:
        execution = self.execution
        given = {k: list(v) for k, v in execution.supplied_parameters.items()}
        if execution.target_maps:
            return [
                _Target(
                    map_label(m),
                    {k: v for k, v in m.items()},
                    {**given, **{k: _strings(v) for k, v in m.items()}},
                )
                for m in execution.target_maps
            ]
        name = execution.target_parameter_name or ""
        values = list(execution.resolved_targets)
        if not values:
            values = await self.engine.fleet.resolve_values(execution.targets)
            await self._save(resolved_targets=tuple(values))
        return [_Target(v, {name: v}, {**given, name: [v]}) for v in values]

    async def run(self) -> ExecutionRecord:
        if self.execution.status == Status.PENDING:
            await self._save(status=Status.IN_PROGRESS, start_time=self.engine.now())
        try:
            targets = await self._targets()
        except RunbookError as exc:
            return await self._finish(Status.FAILED, f"cannot resolve the targets: {exc}")
        records = {
            r.target: r
            for r in await self.engine.store.get_steps(self.execution.execution_id)
            if r.target is not None
        }
        earlier = {
            i: records[t.label].status
            for i, t in enumerate(targets)
            if t.label in records and records[t.label].status.terminal
        }
        rate = RateControl(
            self.execution.max_concurrency or AUTOMATION_CONCURRENCY,
            self.execution.max_errors or AUTOMATION_ERRORS,
            ramp_up=self.engine.settings.ramp_up,
        )
        from runbook_engine.fanout import fan_out

        async def work(index: int) -> Status:
            return await self._one(index, targets[index], records.get(targets[index].label))

        result = await fan_out(
            range(len(targets)),
            work,
            rate=rate,
            failed=lambda status: status != Status.SUCCESS,
            earlier=earlier,
        )
        for index in result.never_started:
            target = targets[index]
            now = self.engine.now()
            record = self._record(index, target, records.get(target.label), Status.CANCELLED)
            await self._put(replace(record, start_time=now, end_time=now))
        statuses = list(result.results.values())
        if await self._cancelled():
            return await self._finish(Status.CANCELLED, None)
        if len(statuses) == len(targets) and all(s == Status.SUCCESS for s in statuses):
            return await self._finish(Status.SUCCESS, None)
        failed = sum(1 for s in statuses if s != Status.SUCCESS)
        reason = f"{failed} of {len(targets)} targets did not succeed" + (
            " (error threshold exceeded)" if result.threshold_exceeded else ""
        )
        return await self._finish(Status.FAILED, reason)

    def _record(
        self, index: int, target: _Target, existing: StepRecord | None, status: Status
    ) -> StepRecord:
        if existing is not None:
            return replace(existing, status=status)
        return StepRecord(
            execution_id=self.execution.execution_id,
            step_execution_id=str(uuid.uuid4()),
            sequence=index,
            step_name=target.label,
            action=ACTION,
            status=status,
            inputs=target.inputs,
            target=target.label,
        )

    async def _one(self, index: int, target: _Target, existing: StepRecord | None) -> Status:
        """Start (or find) the child of one target and wait for its end."""
        if await self._cancelled():
            record = self._record(index, target, existing, Status.CANCELLED)
            await self._put(replace(record, end_time=self.engine.now()))
            return Status.CANCELLED
        record = self._record(index, target, existing, Status.IN_PROGRESS)
        if existing is None:
            record = replace(record, start_time=self.engine.now())
            await self._put(record)  # write ahead: a resume finds the child through it
        # The file the parent was started from (a name may not resolve from a path start).
        document = str(self.execution.extra.get("document_path") or self.execution.document_name)
        request = ChildRequest(document, None, target.parameters)
        try:
            child_id = await self.engine.children.start(self.execution, record, request)
        except RunbookError as exc:
            await self._put(
                replace(
                    record,
                    status=Status.FAILED,
                    end_time=self.engine.now(),
                    failure_message=str(exc),
                )
            )
            return Status.FAILED
        if record.child_execution_id != child_id:
            record = replace(
                record, child_execution_id=child_id, outputs={"ExecutionId": [child_id]}
            )
            await self._put(record)
        while True:  # a child another process runs is polled: its end wakes nobody here
            if await self.engine.children.settle(child_id, until_waiting=False):
                break
            await anyio.sleep(POLL_SECONDS)
        child = await self.engine.children.status(child_id)
        status = Status(child.status)
        await self._put(
            replace(
                record,
                status=status,
                end_time=self.engine.now(),
                outputs={"ExecutionId": [child_id], "Status": [status.value]},
                failure_message=child.failure_message,
            )
        )
        return status

    async def _finish(self, status: Status, message: str | None) -> ExecutionRecord:
        await self._save(status=status, end_time=self.engine.now(), failure_message=message)
        return self.execution


def _strings(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]
