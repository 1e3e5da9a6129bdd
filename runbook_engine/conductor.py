"""What happens next in an execution: a pure function of the runbook and its records.

``decide`` reads the runbook, the execution record, every step record so far and the
unconsumed signals, and returns one :data:`Decision`. It does no I/O and keeps no
state between calls: replaying the same records gives the same decision, which is what
makes a resumed execution continue exactly where the crashed one stopped.

Records are read as a stack of "containers": the top level (``mainSteps``) and, while an
``aws:loop`` step runs, its body. The position inside a container is its most recently
started record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runbook_engine.model import ABORT, BRANCH, CONTINUE, LOOP, Runbook, Step
from runbook_engine.records import ExecutionRecord, LoopContext, SignalRecord, StepRecord
from runbook_engine.status import Mode, SignalType, Status, StopType

MAX_LOOP_ITERATIONS = 100
DEFAULT_STEP_BUDGET = 10_000
END = "<END>"  # transition targets besides step names
ABORTED = "<ABORT>"


@dataclass(frozen=True)
class RunStep:
    """Start a new step execution."""

    step: Step
    loop: LoopContext | None = None
    cancel_run: bool = False
    consumed_signals: tuple[int, ...] = ()


@dataclass(frozen=True)
class ContinueStep:
    """A step was in flight when its process died: re-run it or record the interruption."""

    record: StepRecord


@dataclass(frozen=True)
class WaitOnStep:
    """A parked step (timer, signal or child execution): wake it when that comes."""

    record: StepRecord


@dataclass(frozen=True)
class CancelStep:
    """A cancel was requested while this step was not yet terminal."""

    record: StepRecord


@dataclass(frozen=True)
class EndLoop:
    """Close an aws:loop record: Success, Exited (``exit_to``) or a failure status."""

    record: StepRecord
    status: Status
    exit_to: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class AwaitInstruction:
    """Interactive mode: wait for a StartStep signal naming one of these steps."""

    valid_next_steps: tuple[str, ...]


@dataclass(frozen=True)
class Finish:
    status: Status
    failure_message: str | None = None


Decision = RunStep | ContinueStep | WaitOnStep | CancelStep | EndLoop | AwaitInstruction | Finish
ConditionEvaluator = Callable[[Any, StepRecord], bool]
"""(raw LoopCondition, loop record) -> does the loop go round again."""


@dataclass(frozen=True)
class Situation:
    runbook: Runbook
    execution: ExecutionRecord
    records: Sequence[StepRecord]
    signals: Sequence[SignalRecord] = ()
    now: datetime | None = None
    loop_condition: ConditionEvaluator | None = None
    step_budget: int = DEFAULT_STEP_BUDGET
    index: StepIndex | None = None  # pass one built once per runbook on hot paths

    def __post_init__(self) -> None:
        if self.index is None:
            object.__setattr__(self, "index", StepIndex(self.runbook))

    @property
    def steps(self) -> StepIndex:
        assert self.index is not None
        return self.index

    def step(self, name: str) -> Step:
        return self.steps.by_name[name]


def decide(situation: Situation) -> Decision:
    execution = situation.execution
    if execution.status.terminal:
        return Finish(execution.status, execution.failure_message)
    if execution.stop_requested == StopType.CANCEL:
        return _decide_cancel(situation)
    if execution.stop_requested == StopType.COMPLETE:
        active = _innermost_active(situation)
        if active is not None:
            return CancelStep(active)
        return Finish(*final_status(situation.runbook, situation.records))
    if len(situation.records) >= situation.step_budget:
        return Finish(
            Status.FAILED,
            f"Execution ran {len(situation.records)} steps, the step budget: stopped to "
            "avoid an endless loop",
        )
    return _advance(situation, None)


def _container_of(record: StepRecord) -> str | None:
    return record.loop.step_execution_id if record.loop is not None else None


def _last_in(
    situation: Situation, container: str | None, *, cancel_run: bool = False
) -> StepRecord | None:
    for record in reversed(situation.records):
        if _container_of(record) == container and record.cancel_run == cancel_run:
            return record
    return None


def _advance(situation: Situation, loop_record: StepRecord | None) -> Decision:
    container = loop_record.step_execution_id if loop_record else None
    last = _last_in(situation, container)
    if last is None:
        if loop_record is None:
            return _start(situation, situation.runbook.steps[0])
        return _next_iteration(situation, loop_record, iteration=0)
    if not last.status.terminal:
        if last.action == LOOP and last.status in (Status.IN_PROGRESS, Status.PENDING):
            return _advance(situation, last)
        if _parked(last):
            return WaitOnStep(last)
        return ContinueStep(last)
    step = situation.step(last.step_name)
    target = transition(situation.steps, step, last)
    if loop_record is None:
        if target == ABORTED:
            return Finish(last.status, abort_message(last))
        if target == END:
            return Finish(*final_status(situation.runbook, situation.records))
        return _start(situation, situation.step(target))
    body = {s.name for s in situation.step(loop_record.step_name).steps}
    if target == ABORTED:
        return EndLoop(loop_record, last.status, failure_message=abort_message(last))
    if target == END:
        assert last.loop is not None
        return _next_iteration(situation, loop_record, iteration=last.loop.iteration)
    if target in body:
        return RunStep(situation.step(target), last.loop)
    return EndLoop(loop_record, Status.EXITED, exit_to=target)


def _start(situation: Situation, step: Step) -> Decision:
    if situation.execution.mode != Mode.INTERACTIVE:
        return RunStep(step)
    valid = (
        (step.name,)
        if not situation.records
        else valid_next_steps(situation.runbook, situation.records[-1], situation.steps)
    )
    for signal in situation.signals:
        if signal.type == SignalType.START_STEP and not signal.consumed:
            wanted = (signal.payload.get("StepName") or [""])[0]
            if wanted in valid:
                ids = (signal.signal_id,) if signal.signal_id is not None else ()
                return RunStep(situation.step(wanted), consumed_signals=ids)
    return AwaitInstruction(valid)


def _parked(record: StepRecord) -> bool:
    return bool(record.waiting_for or record.wake_at or record.child_execution_id)


def _next_iteration(situation: Situation, loop_record: StepRecord, iteration: int) -> Decision:
    """``iteration`` is the number of passes already made (0 before the first)."""
    loop_step = situation.step(loop_record.step_name)
    inputs = loop_record.inputs
    limit = _max_iterations(inputs)
    if "Iterators" in inputs:
        items = inputs.get("Iterators") or []
        if not isinstance(items, list):
            items = [items]
        if iteration >= min(len(items), limit):
            return EndLoop(loop_record, Status.SUCCESS)
        context = LoopContext(
            loop_record.step_execution_id, loop_step.name, iteration + 1, items[iteration]
        )
        return RunStep(loop_step.steps[0], context)
    if iteration > 0:  # do-while: the condition is read after each pass
        condition = loop_step.inputs.get("LoopCondition")
        again = situation.loop_condition is not None and situation.loop_condition(
            condition, loop_record
        )
        if not again or iteration >= limit:
            return EndLoop(loop_record, Status.SUCCESS)
    context = LoopContext(loop_record.step_execution_id, loop_step.name, iteration + 1, None)
    return RunStep(loop_step.steps[0], context)


def _max_iterations(inputs: Any) -> int:
    raw = inputs.get("MaxIterations", MAX_LOOP_ITERATIONS) if hasattr(inputs, "get") else None
    try:
        return max(1, min(MAX_LOOP_ITERATIONS, int(str(raw))))
    except (TypeError, ValueError):
        return MAX_LOOP_ITERATIONS


def transition(index: StepIndex, step: Step, record: StepRecord) -> str:
    """Where control goes after ``record`` ended (§2.2): a step name, END or ABORT."""
    if record.status == Status.SUCCESS:
        if step.action == BRANCH:
            chosen = record.state.get("target") if record.state else None
            if chosen:
                return str(chosen)
            return END if step.is_end else index.successor(step.name)
        if step.is_end:
            return END
        return step.next_step or index.successor(step.name)
    if record.status == Status.EXITED:
        exit_to = record.state.get("exit_to") if record.state else None
        return str(exit_to) if exit_to else index.successor(step.name)
    if record.status == Status.CANCELLED and not record.cancel_run:
        if not record.state.get("stopped"):  # a StopStep signal fails just that step
            return ABORTED
    if record.state.get("abort"):
        return ABORTED
    # Failed or TimedOut after every attempt.
    if step.failure_target is not None:
        return step.failure_target
    if step.on_failure == ABORT:
        return ABORTED
    if step.is_end:
        return END
    return step.next_step or index.successor(step.name)


class StepIndex:
    """Steps by name, and the step list (mainSteps or a loop body) each belongs to."""

    def __init__(self, runbook: Runbook) -> None:
        self.runbook = runbook
        self.by_name: dict[str, Step] = {}
        self._next: dict[str, str] = {}
        self._add(runbook.steps)

    def _add(self, steps: tuple[Step, ...]) -> None:
        for position, step in enumerate(steps):
            self.by_name[step.name] = step
            self._next[step.name] = steps[position + 1].name if position + 1 < len(steps) else END
            if step.steps:
                self._add(step.steps)

    def successor(self, name: str) -> str:
        """The next step in the same list (mainSteps or a loop body), or END."""
        return self._next.get(name, END)


def should_retry(step: Step, record: StepRecord) -> bool:
    """After a failed or timed-out attempt: is there an attempt left (maxAttempts)?"""
    return record.status in (Status.FAILED, Status.TIMED_OUT) and record.attempt < step.max_attempts


def abort_message(record: StepRecord) -> str:
    detail = record.failure_message or record.status.value
    return (
        f"Step {record.step_name} failed: {detail}"
        if not detail.startswith(f"Step {record.step_name}")
        else detail
    )


def final_status(runbook: Runbook, records: Sequence[StepRecord]) -> tuple[Status, str | None]:
    """§2.3: the execution reached its end; critical failures decide the status."""
    index = {s.name: s for s in runbook.all_steps()}
    timed_out: StepRecord | None = None
    for record in records:
        if record.cancel_run:
            continue
        step = index.get(record.step_name)
        if step is None or not step.effective_critical:
            continue
        if record.status == Status.FAILED:
            return Status.FAILED, abort_message(record)
        if record.status == Status.TIMED_OUT and timed_out is None:
            timed_out = record
    if timed_out is not None:
        return Status.TIMED_OUT, abort_message(timed_out)
    return Status.SUCCESS, None


def valid_next_steps(
    runbook: Runbook, record: StepRecord, index: StepIndex | None = None
) -> tuple[str, ...]:
    """Interactive mode: the steps the caller may start after ``record``."""
    if not record.status.terminal:
        return ()
    index = index or StepIndex(runbook)
    step = index.by_name.get(record.step_name)
    if step is None:
        return ()
    target = transition(index, step, record)
    return () if target in (END, ABORTED) else (target,)


def _innermost_active(situation: Situation) -> StepRecord | None:
    """The deepest non-terminal record (a running body step before its loop)."""
    active = [r for r in situation.records if not r.status.terminal]
    if not active:
        return None
    non_loops = [r for r in active if r.action != LOOP]
    return (non_loops or active)[-1]


def _decide_cancel(situation: Situation) -> Decision:
    active = _innermost_active(situation)
    if active is not None and not active.cancel_run:
        return CancelStep(active)
    deadline = situation.execution.cancel_deadline
    if deadline is not None and situation.now is not None and situation.now >= deadline:
        if active is not None:
            return CancelStep(active)
        return Finish(Status.CANCELLED, "Execution was cancelled")
    cancelled = next(
        (
            r
            for r in situation.records
            if r.status == Status.CANCELLED and not r.cancel_run and r.action != LOOP
        ),
        None,
    )
    if cancelled is None:
        return Finish(Status.CANCELLED, "Execution was cancelled")
    step = situation.step(cancelled.step_name)
    last = _last_in(situation, _container_of(cancelled), cancel_run=True) or _last_any_cancel_run(
        situation
    )
    if last is None:
        if step.cancel_target is None:
            return Finish(Status.CANCELLED, "Execution was cancelled")
        return RunStep(situation.step(step.cancel_target), cancel_run=True)
    if not last.status.terminal:
        return WaitOnStep(last) if _parked(last) else ContinueStep(last)
    target = transition(situation.steps, situation.step(last.step_name), last)
    if target in (END, ABORTED):
        return Finish(Status.CANCELLED, "Execution was cancelled")
    return RunStep(situation.step(target), cancel_run=True)


def _last_any_cancel_run(situation: Situation) -> StepRecord | None:
    for record in reversed(situation.records):
        if record.cancel_run:
            return record
    return None


__all__ = [
    "ABORTED",
    "CONTINUE",
    "END",
    "AwaitInstruction",
    "CancelStep",
    "ContinueStep",
    "Decision",
    "EndLoop",
    "Finish",
    "RunStep",
    "Situation",
    "StepIndex",
    "WaitOnStep",
    "abort_message",
    "decide",
    "final_status",
    "should_retry",
    "transition",
    "valid_next_steps",
]
