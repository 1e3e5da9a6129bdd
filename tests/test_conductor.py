"""The conductor decides from plain lists of records: no event loop, no store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_engine.conductor import (
    AwaitInstruction,
    CancelStep,
    ContinueStep,
    Decision,
    EndLoop,
    Finish,
    RunStep,
    Situation,
    WaitOnStep,
    decide,
    should_retry,
    valid_next_steps,
)
from runbook_engine.model import Runbook
from runbook_engine.records import ExecutionRecord, LoopContext, SignalRecord, StepRecord
from runbook_engine.status import Mode, Status
from tests.support.documents import runbook

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def execution(**changes: object) -> ExecutionRecord:
    base = ExecutionRecord("e-1", "doc", "", Status.IN_PROGRESS)
    return replace(base, **changes)  # type: ignore[arg-type]


def record(
    name: str, status: Status, seq: int, action: str = "aws:sleep", **kw: object
) -> StepRecord:
    base = StepRecord("e-1", f"s-{seq}", seq, name, action, status, start_time=NOW)
    return replace(base, **kw)  # type: ignore[arg-type]


def next_of(book: Runbook, records: list[StepRecord], **kw: object) -> Decision:
    situation = Situation(book, kw.pop("execution", execution()), records, **kw)  # type: ignore[arg-type]
    return decide(situation)


LINEAR = runbook(
    """
schemaVersion: '0.3'
mainSteps:
  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}
  - {name: b, action: aws:sleep, inputs: {Duration: PT0S}, onFailure: Continue}
  - {name: c, action: aws:sleep, inputs: {Duration: PT0S}}
"""
)


def test_starts_with_the_first_step() -> None:
    decision = next_of(LINEAR, [])
    assert isinstance(decision, RunStep) and decision.step.name == "a"


def test_success_moves_to_the_next_step_and_the_last_one_ends_in_success() -> None:
    assert next_of(LINEAR, [record("a", Status.SUCCESS, 1)]).step.name == "b"  # type: ignore[union-attr]
    done = [record(n, Status.SUCCESS, i) for i, n in enumerate("abc", 1)]
    assert next_of(LINEAR, done) == Finish(Status.SUCCESS, None)


def test_abort_ends_with_the_failed_steps_status_and_names_it() -> None:
    failed = record("a", Status.FAILED, 1, failure_message="Step a failed: boom")
    assert next_of(LINEAR, [failed]) == Finish(Status.FAILED, "Step a failed: boom")
    timed_out = record("a", Status.TIMED_OUT, 1)
    decision = next_of(LINEAR, [timed_out])
    assert isinstance(decision, Finish) and decision.status == Status.TIMED_OUT
    assert "Step a" in (decision.failure_message or "")


def test_continue_on_a_non_critical_step_lets_the_execution_succeed() -> None:
    records = [
        record("a", Status.SUCCESS, 1),
        record("b", Status.FAILED, 2),
    ]
    assert next_of(LINEAR, records).step.name == "c"  # type: ignore[union-attr]
    records.append(record("c", Status.SUCCESS, 3))
    assert next_of(LINEAR, records) == Finish(Status.SUCCESS, None)


ROUTED = runbook(
    """
schemaVersion: '0.3'
mainSteps:
  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}, onFailure: 'step:recover', isEnd: true}
  - {name: skipped, action: aws:sleep, inputs: {Duration: PT0S}}
  - {name: recover, action: aws:sleep, inputs: {Duration: PT0S}, nextStep: final}
  - {name: final, action: aws:sleep, inputs: {Duration: PT0S}, isCritical: false, onFailure: Continue}
"""
)


def test_on_failure_step_wins_over_is_end_and_the_failure_still_counts() -> None:
    records = [record("a", Status.FAILED, 1)]
    assert next_of(ROUTED, records).step.name == "recover"  # type: ignore[union-attr]
    records += [record("recover", Status.SUCCESS, 2)]
    assert next_of(ROUTED, records).step.name == "final"  # type: ignore[union-attr]
    records += [record("final", Status.FAILED, 3)]
    decision = next_of(ROUTED, records)
    assert isinstance(decision, Finish) and decision.status == Status.FAILED  # a is critical


def test_is_end_stops_after_success() -> None:
    assert next_of(ROUTED, [record("a", Status.SUCCESS, 1)]) == Finish(Status.SUCCESS, None)


BRANCHY = runbook(
    """
schemaVersion: '0.3'
mainSteps:
  - name: choose
    action: aws:branch
    isEnd: true
    inputs:
      Choices:
        - {NextStep: left, Variable: x, StringEquals: x}
  - {name: left, action: aws:sleep, inputs: {Duration: PT0S}, isEnd: true}
"""
)


def test_a_taken_branch_wins_over_is_end_and_no_match_ends() -> None:
    taken = record("choose", Status.SUCCESS, 1, action="aws:branch", state={"target": "left"})
    assert next_of(BRANCHY, [taken]).step.name == "left"  # type: ignore[union-attr]
    untaken = record("choose", Status.SUCCESS, 1, action="aws:branch")
    assert next_of(BRANCHY, [untaken]) == Finish(Status.SUCCESS, None)


def test_in_flight_and_parked_steps() -> None:
    running = record("a", Status.IN_PROGRESS, 1)
    assert next_of(LINEAR, [running]) == ContinueStep(running)
    parked = record("a", Status.WAITING, 1, waiting_for=("Approve", "Reject"))
    assert next_of(LINEAR, [parked]) == WaitOnStep(parked)
    sleeping = record("a", Status.IN_PROGRESS, 1, wake_at=NOW)
    assert next_of(LINEAR, [sleeping]) == WaitOnStep(sleeping)


def test_cancel_cancels_the_running_step_then_runs_on_cancel() -> None:
    book = runbook(
        """
schemaVersion: '0.3'
mainSteps:
  - {name: a, action: aws:sleep, inputs: {Duration: PT1H}, onCancel: 'step:cleanup'}
  - {name: b, action: aws:sleep, inputs: {Duration: PT0S}}
  - {name: cleanup, action: aws:sleep, inputs: {Duration: PT0S}}
"""
    )
    cancelling = execution(stop_requested="Cancel", status=Status.CANCELLING)
    running = record("a", Status.IN_PROGRESS, 1, wake_at=NOW)
    assert next_of(book, [running], execution=cancelling) == CancelStep(running)
    cancelled = replace(running, status=Status.CANCELLED)
    decision = next_of(book, [cancelled], execution=cancelling)
    assert isinstance(decision, RunStep) and decision.step.name == "cleanup" and decision.cancel_run
    cleanup = record("cleanup", Status.SUCCESS, 2, cancel_run=True)
    assert next_of(book, [cancelled, cleanup], execution=cancelling).status == Status.CANCELLED  # type: ignore[union-attr]


LOOPED = runbook(
    """
schemaVersion: '0.3'
mainSteps:
  - name: each
    action: aws:loop
    inputs:
      Iterators: [x, y]
      Steps:
        - {name: inner, action: aws:sleep, inputs: {Duration: PT0S}}
        - {name: inner2, action: aws:sleep, inputs: {Duration: PT0S}}
  - {name: after, action: aws:sleep, inputs: {Duration: PT0S}}
"""
)


def test_loop_iterates_over_items_then_moves_on() -> None:
    loop = record(
        "each", Status.IN_PROGRESS, 1, action="aws:loop", inputs={"Iterators": ["x", "y"]}
    )
    first = next_of(LOOPED, [loop])
    assert isinstance(first, RunStep) and first.step.name == "inner"
    assert first.loop == LoopContext("s-1", "each", 1, "x")
    records = [loop, record("inner", Status.SUCCESS, 2, loop=first.loop)]
    assert next_of(LOOPED, records).step.name == "inner2"  # type: ignore[union-attr]
    records.append(record("inner2", Status.SUCCESS, 3, loop=first.loop))
    second = next_of(LOOPED, records)
    assert isinstance(second, RunStep) and second.loop == LoopContext("s-1", "each", 2, "y")
    records += [
        record("inner", Status.SUCCESS, 4, loop=second.loop),
        record("inner2", Status.SUCCESS, 5, loop=second.loop),
    ]
    assert next_of(LOOPED, records) == EndLoop(loop, Status.SUCCESS)
    records[0] = replace(loop, status=Status.SUCCESS)
    assert next_of(LOOPED, records).step.name == "after"  # type: ignore[union-attr]


def test_inner_abort_fails_the_loop_and_the_execution() -> None:
    loop = record("each", Status.IN_PROGRESS, 1, action="aws:loop", inputs={"Iterators": ["x"]})
    inner = record("inner", Status.FAILED, 2, loop=LoopContext("s-1", "each", 1, "x"))
    decision = next_of(LOOPED, [loop, inner])
    assert isinstance(decision, EndLoop) and decision.status == Status.FAILED
    closed = replace(loop, status=Status.FAILED, state={"abort": True})
    assert next_of(LOOPED, [closed, inner]).status == Status.FAILED  # type: ignore[union-attr]


def test_interactive_mode_waits_for_start_step_and_offers_valid_next_steps() -> None:
    interactive = execution(mode=Mode.INTERACTIVE, status=Status.WAITING)
    assert next_of(LINEAR, [], execution=interactive) == AwaitInstruction(("a",))
    start = SignalRecord(7, "e-1", "StartStep", {"StepName": ["a"]}, "me", NOW)
    decision = next_of(LINEAR, [], execution=interactive, signals=[start])
    assert isinstance(decision, RunStep) and decision.consumed_signals == (7,)
    done = record("a", Status.SUCCESS, 1)
    assert valid_next_steps(LINEAR, done) == ("b",)
    assert next_of(LINEAR, [done], execution=interactive) == AwaitInstruction(("b",))


def test_step_budget_stops_runaway_executions() -> None:
    records = [record("a", Status.SUCCESS, i) for i in range(1, 6)]
    decision = next_of(LINEAR, records, step_budget=5)
    assert isinstance(decision, Finish) and decision.status == Status.FAILED
    assert "budget" in (decision.failure_message or "")


# -- properties ---------------------------------------------------------------------------

CYCLIC = runbook(
    """
schemaVersion: '0.3'
mainSteps:
  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}, maxAttempts: 3, onFailure: Continue}
  - name: b
    action: aws:branch
    inputs:
      Choices:
        - {NextStep: a, Variable: x, StringEquals: x}
      Default: c
  - {name: c, action: aws:sleep, inputs: {Duration: PT0S}, maxAttempts: 2, onFailure: 'step:e', isEnd: true}
  - {name: d, action: aws:sleep, inputs: {Duration: PT0S}}
  - {name: e, action: aws:sleep, inputs: {Duration: PT0S}, maxAttempts: 2, isEnd: true}
  - {name: f, action: aws:sleep, inputs: {Duration: PT0S}}
"""
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_outcomes_terminate_respect_attempts_and_is_end(data: st.DataObject) -> None:
    records: list[StepRecord] = []
    budget = 60
    for _ in range(budget * 4):
        decision = next_of(CYCLIC, records, step_budget=budget)
        if isinstance(decision, Finish):
            break
        assert isinstance(decision, RunStep)
        step = decision.step
        if records:
            previous = CYCLIC.step(records[-1].step_name)
            ended = records[-1].status
            # Nothing runs after an isEnd step, unless a failure route or a branch took over.
            if previous.is_end and previous.action != "aws:branch":
                assert ended != Status.SUCCESS and previous.failure_target == step.name
        seq = len(records) + 1
        if step.action == "aws:branch":
            target = data.draw(st.sampled_from(["a", None]))
            records.append(
                record(
                    step.name,
                    Status.SUCCESS,
                    seq,
                    action=step.action,
                    state={"target": target} if target else {},
                )
            )
            continue
        current = record(step.name, Status.IN_PROGRESS, seq)
        while True:  # attempts, as the scheduler makes them
            outcome = data.draw(st.sampled_from([Status.SUCCESS, Status.FAILED, Status.TIMED_OUT]))
            current = replace(current, status=outcome)
            if not should_retry(step, current):
                break
            current = replace(current, attempt=current.attempt + 1)
        assert current.attempt <= step.max_attempts
        records.append(current)
    else:
        raise AssertionError("the execution never finished")
    assert len(records) <= budget
