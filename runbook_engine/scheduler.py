"""The async shell around the conductor: decide, write ahead, act, record, repeat.

One :class:`Driver` runs one execution while it holds the execution's lease. Every
step transition is committed before the next side effect: the record of a step is
written *before* its action runs; its final record is written in the same commit as
whatever comes next (the next step's write-ahead record, a wait, the execution's end),
shielded from cancellation, so a step costs one commit, not two. A step that only reads
(``plugin.only_reads``: a Describe call) is no side effect: its record commits while its
call runs, off the critical path, when the step before it only read too.
Parked steps (timers, approvals, child executions) are records, not tasks: a driver
may return while the execution waits, and any later driver resumes it from the store.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio

from runbook_engine import conditions, reads, waits
from runbook_engine import step_outcomes as outcomes
from runbook_engine.conductor import (
    AwaitInstruction,
    CancelStep,
    ContinueStep,
    EndLoop,
    Finish,
    RunStep,
    Situation,
    StepIndex,
    WaitOnStep,
    decide,
    valid_next_steps,
)
from runbook_engine.errors import LeaseLost, StaleRecord
from runbook_engine.model import BRANCH, LOOP, Runbook, Step
from runbook_engine.outputs import execution_outputs, latest_outputs
from runbook_engine.plugin import (
    Action,
    ActionError,
    ActionResult,
    FailureStage,
    FailureType,
    Suspend,
    only_reads,
)
from runbook_engine.processes import running_step
from runbook_engine.record_copies import evolve
from runbook_engine.records import ExecutionRecord, LoopContext, SignalRecord, StepRecord
from runbook_engine.rendering import RenderScope
from runbook_engine.status import Mode, Status
from runbook_engine.step_context import StepContext

if TYPE_CHECKING:
    from runbook_engine.engine import Engine

log = logging.getLogger("runbook_engine")

UPDATE_VARIABLE = "aws:updateVariable"


class Driver:
    """Runs one execution, holding its lease, until it ends or (optionally) waits."""

    def __init__(
        self,
        engine: Engine,
        execution: ExecutionRecord,
        runbook: Runbook,
        records: list[StepRecord],
        *,
        until_waiting: bool,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.settings = engine.settings
        self.execution = execution
        self.runbook = runbook
        self.index = StepIndex(runbook)
        self.records = records
        self.until_waiting = until_waiting
        self.signals: list[SignalRecord] = []
        self.wakeup = anyio.Event()
        self._stopped_step: str | None = None
        self._running: tuple[anyio.CancelScope, str] | None = None
        self.outputs: dict[str, dict[str, Any]] = latest_outputs(records)
        self._positions = {r.step_execution_id: i for i, r in enumerate(records)}
        self._files: Mapping[str, bytes] | None = None
        # A step's final record, written with the next transition (see ``finish_step``).
        self._held: StepRecord | None = None

    @property
    def held(self) -> StepRecord | None:
        """A step's final record, taken as done, written with the next transition."""
        return self._held

    def attachments(self) -> Mapping[str, bytes]:
        """The document's attached files, read once per driver (not once per step)."""
        if self._files is None:
            self._files = self.engine.runbooks.attachments(self.execution)
        return self._files

    # -- persistence -------------------------------------------------------------------------

    async def save(
        self, record: StepRecord | None = None, *, consume: Sequence[int] = (), **changes: Any
    ) -> None:
        """Write a step record and/or execution changes in one transaction (shielded),
        with the held final record of the step before, if any; ``consume``: signals the
        step acted on, consumed in that transaction too."""
        held, self._held = self._held, None
        if held is not None and record is not None:
            if held.step_execution_id == record.step_execution_id:
                held = None  # superseded
        steps = [r for r in (held, record) if r is not None]
        with anyio.CancelScope(shield=True):
            while True:
                updated = evolve(self.execution, **changes) if changes else self.execution
                try:
                    if steps:
                        saved = await self.store.record_steps_and_execution(
                            steps, updated, self.execution.version, consume
                        )
                    else:
                        saved = await self.store.update_execution(
                            updated, expected_version=self.execution.version
                        )
                except StaleRecord:
                    # Someone else wrote the execution: a stop request (take it and retry),
                    # or another process took the lease over (stop: it runs the execution now).
                    fresh = await self.store.get_execution(self.execution.execution_id)
                    if fresh.owner is not None and fresh.owner != self.engine.owner:
                        raise LeaseLost(
                            f"Execution {fresh.execution_id} was taken over by {fresh.owner}"
                        ) from None
                    self.execution = evolve(
                        self.execution,
                        stop_requested=fresh.stop_requested,
                        cancel_deadline=fresh.cancel_deadline or self.execution.cancel_deadline,
                        version=fresh.version,
                    )
                    continue
                self.execution = saved
                break
        if consume:
            self.signals = [s for s in self.signals if s.signal_id not in consume]
        for step in steps:
            if step is not held:  # a held record is already remembered
                self._remember(step)
            if self.engine.listener is not None:
                self.engine.listener(step)

    async def hold(self, record: StepRecord, **changes: Any) -> None:
        """Take ``record`` (a step's final record) and ``changes`` to the execution as
        done, and write them with the next transition: the write-ahead record of the next
        step, or the execution's end. One commit per step instead of two; nothing the
        next step does can happen before that commit. A crash before it loses the step's
        result, as a crash between an action's end and its record's commit always did;
        the window now also spans deciding and rendering the next step."""
        if self._held is not None and self._held.step_execution_id != record.step_execution_id:
            await self.flush()
        if changes:
            self.execution = evolve(self.execution, **changes)
        self._held = record
        self._remember(record)

    async def flush(self) -> None:
        """Write the held record, if any, on its own."""
        if self._held is not None:
            await self.save()

    def _remember(self, record: StepRecord) -> None:
        if record.status.terminal and (record.response is not None or record.logs):
            # Decisions need a finished step's status and outputs, never its response or
            # logs (they are in the store): a long execution does not keep every answer
            # alive, which the garbage collector would walk again and again.
            record = evolve(record, response=None, logs="")
        if record.outputs or record.step_name not in self.outputs:
            self.outputs[record.step_name] = dict(record.outputs)
        position = self._positions.get(record.step_execution_id)
        if position is None:
            self._positions[record.step_execution_id] = len(self.records)
            self.records.append(record)
        else:
            self.records[position] = record

    async def refresh_control(self, *, execution_too: bool = True) -> None:
        """Pick up stop requests and signals written by other processes (the execution
        record only if ``execution_too``: not right after this driver saved it)."""
        fresh = (
            await self.store.get_execution(self.execution.execution_id)
            if execution_too
            else self.execution
        )
        if fresh.version != self.execution.version:
            self.execution = evolve(
                self.execution,
                stop_requested=fresh.stop_requested,
                cancel_deadline=fresh.cancel_deadline,
                version=fresh.version,
            )
        self.signals = await self.store.get_signals(
            self.execution.execution_id, unconsumed_only=True
        )

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> ExecutionRecord:
        now = self.engine.now()
        saved = True  # the record as just saved is the stored one: no need to read it back
        if self.execution.status == Status.PENDING:
            first = (
                Status.WAITING if self.execution.mode == Mode.INTERACTIVE else Status.IN_PROGRESS
            )
            await self.save(status=first, start_time=now)
        elif self.execution.status == Status.WAITING and self.execution.mode == Mode.AUTO:
            await self.save(status=Status.IN_PROGRESS)
        else:
            saved = False
        await self.refresh_control(execution_too=not saved)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch_running_step)
                try:
                    while not self.execution.status.terminal:
                        situation = Situation(
                            self.runbook,
                            self.execution,
                            self.records,
                            self.signals,
                            now=self.engine.now(),
                            loop_condition=self._loop_condition,
                            step_budget=self.settings.step_budget,
                            index=self.index,
                        )
                        await self._apply(decide(situation))
                except waits.Parked:
                    pass
                finally:
                    group.cancel_scope.cancel()
        finally:
            await self.flush()  # shielded: a step that ended is recorded, even on Ctrl-C
        return self.execution

    async def _apply(self, decision: object) -> None:
        match decision:
            case RunStep(step=step, loop=loop, cancel_run=cancel_run, consumed_signals=ids):
                if ids:
                    await self.store.consume_signals(list(ids))
                    self.signals = [s for s in self.signals if s.signal_id not in ids]
                await self._run_step(step, loop, cancel_run)
            case ContinueStep(record=record):
                await waits.continue_interrupted(self, record)
            case WaitOnStep(record=record):
                await waits.wait_on(self, record)
            case CancelStep(record=record):
                await waits.cancel_step(self, record)
            case EndLoop(record=record, status=status, exit_to=exit_to, failure_message=message):
                await self._end_loop(record, status, exit_to, message)
            case AwaitInstruction(valid_next_steps=valid):
                await waits.await_instruction(self, valid)
            case Finish(status=status, failure_message=message):
                await self._finish(status, message)
            case _:
                raise AssertionError(f"unknown decision {decision!r}")

    # -- starting and running steps ----------------------------------------------------------

    def _scope(self, loop: LoopContext | None) -> RenderScope:
        return RenderScope.build(self.execution, self.outputs, loop, self.settings)

    def _new_record(self, step: Step, loop: LoopContext | None, cancel_run: bool) -> StepRecord:
        return StepRecord(
            execution_id=self.execution.execution_id,
            step_execution_id=str(uuid.uuid4()),
            sequence=(self.records[-1].sequence + 1) if self.records else 1,
            step_name=step.name,
            action=step.action,
            status=Status.IN_PROGRESS,
            start_time=self.engine.now(),
            loop=loop,
            cancel_run=cancel_run,
        )

    async def _run_step(self, step: Step, loop: LoopContext | None, cancel_run: bool) -> None:
        record = self._new_record(step, loop, cancel_run)
        scope = self._scope(loop)
        if step.action == BRANCH:
            await self._run_branch(step, record, scope)
            return
        if step.action == LOOP:
            inputs = {k: v for k, v in step.inputs.items() if k not in ("Steps", "LoopCondition")}
            # One write with the inputs: a loop record without them, resumed after a crash,
            # would read as a do-while loop with no condition.
            record = evolve(record, inputs=scope.render(inputs))
            await self.save(record, **self.current(step, record))
            return
        action = self.engine.registry.get(step.action)
        try:
            if action is None:
                raise ActionError(
                    f"action {step.action} is not installed", stage=FailureStage.PRE_VERIFICATION
                )
            inputs = outcomes.checked_inputs(action.schema, scope.render(dict(step.inputs)))
        except ActionError as exc:
            failed = outcomes.failed(
                evolve(record, inputs=dict(step.inputs)), exc, self.engine.now()
            )
            await self.save(failed, **self.current(step, failed))
            return
        record = evolve(record, inputs=inputs)
        assert action is not None
        if only_reads(action, inputs) and reads.held_only_reads(self):
            outcome = await reads.attempt_while_writing_ahead(self, step, action, record)
            await self.attempts(step, action, record, outcome)
            return
        await self.save(record, **self.current(step, record))  # write-ahead
        await self.attempts(step, action, record)

    def current(self, step: Step, record: StepRecord) -> dict[str, Any]:
        changes: dict[str, Any] = {"current_step_name": step.name, "current_action": step.action}
        if self.execution.status == Status.WAITING and not record.status.terminal:
            changes["status"] = Status.IN_PROGRESS
        return changes

    async def _run_branch(self, step: Step, record: StepRecord, scope: RenderScope) -> None:
        rendered = scope.render(dict(step.inputs))
        choices = rendered.get("Choices") or []
        target = conditions.branch_target(choices, rendered.get("Default"))
        done = evolve(
            record,
            inputs=rendered,
            status=Status.SUCCESS,
            end_time=self.engine.now(),
            state={"target": target} if target else {},
        )
        done = evolve(done, valid_next_steps=valid_next_steps(self.runbook, done, self.index))
        await self.save(done, **self.current(step, done))

    async def attempts(
        self, step: Step, action: Action, record: StepRecord, outcome: StepRecord | None = None
    ) -> None:
        """Run attempts from ``record.attempt`` up to maxAttempts (``outcome``: that of
        the first, already run); record the outcome."""
        while True:
            if outcome is None:
                outcome = await self.invoke(step, action, record)
            if outcome.status.terminal and outcome.status != Status.SUCCESS:
                if outcome.status != Status.CANCELLED and record.attempt < step.max_attempts:
                    record = evolve(
                        record,
                        attempt=record.attempt + 1,
                        state={},
                        failure_message=outcome.failure_message,
                    )
                    await self.save(record)
                    outcome = None
                    continue
            await self.finish_step(step, outcome)
            return

    async def finish_step(
        self, step: Step, record: StepRecord, *, consume: Sequence[int] = ()
    ) -> None:
        changes: dict[str, Any] = {}
        if record.status == Status.SUCCESS and step.action == UPDATE_VARIABLE:
            try:
                changes["variables"] = outcomes.updated_variables(
                    self.runbook, self.execution.variables, record
                )
            except ActionError as exc:
                record = outcomes.failed(record, exc, self.engine.now())
        if record.status.terminal:
            record = evolve(
                record, valid_next_steps=valid_next_steps(self.runbook, record, self.index)
            )
        elif record.status == Status.WAITING:
            changes["status"] = Status.WAITING
        if record.status.terminal and not consume:
            await self.hold(record, **changes)
        else:
            await self.save(record, consume=consume, **changes)

    def _timeout(self, step: Step, action: Action) -> float | None:
        seconds = step.timeout_seconds or action.schema.default_timeout
        return float(seconds) if seconds else None

    async def invoke(self, step: Step, action: Action, record: StepRecord) -> StepRecord:
        """One call of the action: a terminal record, or a parked one."""
        timeout = self._timeout(step, action)
        started = record.start_time or self.engine.now()
        parked_before = bool(record.state)
        deadline = None
        if timeout is not None:
            base = started if parked_before else self.engine.now()
            deadline = base + timedelta(seconds=timeout)
        context = StepContext.for_record(self, record)
        result: ActionResult | Suspend | None = None
        error: ActionError | None = None
        cancelled = False
        remaining = (deadline - self.engine.now()).total_seconds() if deadline else None
        if remaining is not None and remaining <= 0:
            return outcomes.timed_out(record, timeout, self.engine.now())
        self._stopped_step = None
        scope = anyio.CancelScope(
            deadline=anyio.current_time() + remaining if remaining else float("inf")
        )
        self._running = (scope, record.step_execution_id)
        try:
            with scope, running_step(record.step_execution_id):
                try:
                    result = await action.run(record.inputs, context)
                except ActionError as exc:
                    error = exc
                except Exception as exc:  # an action's bug must not kill the execution
                    log.exception("action %s raised", step.action)
                    error = ActionError(
                        f"{type(exc).__name__}: {exc}", failure_type=FailureType.INTERNAL
                    )
        finally:
            self._running = None
        if scope.cancelled_caught:
            cancelled = self.execution.stop_requested is not None
            if self._stopped_step == record.step_execution_id:
                return outcomes.stopped(record, self.engine.now())
            if not cancelled:
                return outcomes.timed_out(record, timeout, self.engine.now())
        if cancelled:
            return evolve(record, status=Status.CANCELLED, end_time=self.engine.now())
        if error is not None:
            if error.timed_out:
                return outcomes.timed_out(record, timeout, self.engine.now(), error)
            return outcomes.failed(record, error, self.engine.now())
        if isinstance(result, Suspend):
            return outcomes.suspended(record, result, deadline)
        assert isinstance(result, ActionResult)
        return outcomes.succeeded(step, record, result, self.engine.now())

    async def _watch_running_step(self) -> None:
        """Cancel the running action when a stop request or a StopStep signal arrives
        (from this process or another one): one task per driver, not one per step."""
        while True:
            with anyio.move_on_after(self.settings.poll_interval):
                await self.wakeup.wait()
            self.wakeup = anyio.Event()
            running = self._running
            if running is None:
                continue
            scope, step_execution_id = running
            await self.refresh_control()
            for signal in self.signals:
                wanted = next(iter(signal.payload.get("StepExecutionId") or ()), None)
                if signal.type == "StopStep" and wanted == step_execution_id:
                    self._stopped_step = step_execution_id
                    if signal.signal_id is not None:
                        await self.store.consume_signals([signal.signal_id])
                    scope.cancel()
                    break
            else:
                if self.execution.stop_requested is not None:
                    scope.cancel()

    async def _end_loop(
        self, record: StepRecord, status: Status, exit_to: str | None, message: str | None
    ) -> None:
        body = [
            r
            for r in self.records
            if r.loop and r.loop.step_execution_id == record.step_execution_id
        ]
        outputs: dict[str, Any] = {}
        if body and body[-1].loop is not None:
            outputs["CurrentIteration"] = body[-1].loop.iteration
            if body[-1].loop.iterator_value is not None:
                outputs["CurrentIteratorValue"] = body[-1].loop.iterator_value
        state: dict[str, Any] = {}
        if exit_to:
            state["exit_to"] = exit_to
        if status in (Status.FAILED, Status.TIMED_OUT):
            state["abort"] = True
        done = evolve(
            record,
            status=status,
            end_time=self.engine.now(),
            outputs=outputs,
            state=state,
            failure_message=message,
        )
        done = evolve(done, valid_next_steps=valid_next_steps(self.runbook, done, self.index))
        await self.save(done)

    async def _finish(self, status: Status, message: str | None) -> None:
        outputs = execution_outputs(self.runbook, self.records)
        await self.save(
            status=status,
            end_time=self.engine.now(),
            failure_message=message,
            outputs=outputs,
            current_step_name=None,
            current_action=None,
            wake_at=None,
        )
        if self.signals:
            await self.store.consume_signals(
                [s.signal_id for s in self.signals if s.signal_id is not None]
            )
        if self.execution.parent_execution_id:  # a parent parked on this child goes on
            await self.engine.wake(self.execution.parent_execution_id)

    def _loop_condition(self, condition: Any, loop_record: StepRecord) -> bool:
        last_pass = next(
            (
                r.loop
                for r in reversed(self.records)
                if r.loop is not None and r.loop.step_execution_id == loop_record.step_execution_id
            ),
            None,
        )
        return conditions.evaluate(self._scope(last_pass).render(condition))
