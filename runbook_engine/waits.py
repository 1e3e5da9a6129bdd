"""Waiting, resuming and cancelling steps: what a :class:`Driver` does with a step that
is not simply run (an interrupted attempt, a parked wait, a stop request).

Parked work holds no task: a driver that may return (``until_waiting``) saves when the
execution is due again and raises :class:`Parked`; a worker claims it when a timer is due
or a signal, stop or child's end makes it due (``Engine.wake``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio

from runbook_engine import step_outcomes as outcomes
from runbook_engine.plugin import ActionError, FailureType, only_reads
from runbook_engine.processes import kill_marked
from runbook_engine.records import StepRecord
from runbook_engine.status import Status, StopType
from runbook_engine.step_context import CHECKPOINT_KEY

if TYPE_CHECKING:
    from runbook_engine.scheduler import Driver

log = logging.getLogger("runbook_engine")

CANCEL_WORKFLOW_LIMIT = timedelta(minutes=2)
# A parent parked on a child execution looks at it at least this often.
CHILD_POLL_INTERVAL = timedelta(seconds=30)


class Parked(Exception):
    """The execution waits for a person or another process; the driver returns."""


async def continue_interrupted(driver: Driver, record: StepRecord) -> None:
    step = driver.index.by_name[record.step_name]
    action = driver.engine.registry.get(record.action)
    if action is None:
        failed = outcomes.failed(
            record, ActionError(f"action {record.action} is not installed"), driver.engine.now()
        )
        await driver.save(failed)
        return
    # Its attempt's local processes outlived the process that ran it: end them first.
    killed = await anyio.to_thread.run_sync(kill_marked, record.step_execution_id)
    if killed:
        log.warning(
            "step %s: killed what its interrupted attempt left running (%d marked process(es))",
            record.step_name,
            killed,
        )
    if record.state.get(CHECKPOINT_KEY):  # the action saved progress: it resumes itself
        await driver.attempts(step, action, record)
        return
    if action.idempotent or only_reads(action, record.inputs):
        await driver.attempts(step, action, replace(record, state={}))
        return
    interrupted = outcomes.failed(
        record,
        ActionError(
            f"interrupted: the process running attempt {record.attempt} stopped before it "
            f"finished, and {record.action} is not safe to run twice"
            + (" (the processes it left running were killed)" if killed else ""),
            failure_type=FailureType.INTERNAL,
        ),
        driver.engine.now(),
    )
    if record.attempt < step.max_attempts:
        retry = replace(
            record,
            attempt=record.attempt + 1,
            failure_message=interrupted.failure_message,
            state={},
        )
        await driver.save(retry)
        await driver.attempts(step, action, retry)
        return
    await driver.finish_step(step, interrupted)


async def wait_on(driver: Driver, record: StepRecord) -> None:
    step = driver.index.by_name[record.step_name]
    action = driver.engine.registry.get(record.action)
    assert action is not None
    while True:
        now = driver.engine.now()
        due = record.wake_at is not None and record.wake_at <= now
        signalled = any(s.type in record.waiting_for for s in driver.signals)
        child_done = False
        if record.child_execution_id:
            child_done = await driver.engine.children.settle(
                record.child_execution_id, until_waiting=driver.until_waiting
            )
            await driver.refresh_control()  # a stop may have come while the child ran
        if due or signalled or child_done or driver.execution.stop_requested:
            if driver.execution.stop_requested:
                return  # the conductor turns this into a CancelStep
            outcome = await driver.invoke(step, action, record)
            if outcome.status.terminal:
                # Consumed with the step's result, in one commit (see save).
                acted_on = step_signal_ids(driver, record)
                if outcome.status != Status.SUCCESS and record.attempt < step.max_attempts:
                    retry = replace(
                        record,
                        attempt=record.attempt + 1,
                        state={},
                        wake_at=None,
                        waiting_for=(),
                        failure_message=outcome.failure_message,
                    )
                    await driver.save(retry, consume=acted_on)
                    await driver.attempts(step, action, retry)
                    return
                await driver.finish_step(step, outcome, consume=acted_on)
                return
            if outcome != record:
                await driver.finish_step(step, outcome)
            record = outcome
            signalled = False
        if driver.until_waiting and (
            record.status == Status.WAITING
            or record.child_execution_id
            or timer_is_far(driver, record)
        ):
            if await park(driver, record):
                raise Parked
            continue  # a signal, a stop or the child's end came in while parking
        await sleep_until(driver, record.wake_at)


def timer_is_far(driver: Driver, record: StepRecord) -> bool:
    """A long timer parks like a wait (``Settings.park_timers_after``): the worker
    is freed, and ``claim_next`` picks the execution up when the timer is due."""
    limit = driver.settings.park_timers_after
    if limit is None or record.wake_at is None:
        return False
    return (record.wake_at - driver.engine.now()).total_seconds() > limit


async def park(driver: Driver, record: StepRecord | None) -> bool:
    """Save when a worker must look at the parked execution again; then look once
    more for what may have arrived meanwhile (False: do not park after all).

    ``wake_at`` is the step's timer: a worker's ``claim_next`` picks the execution up
    when it is due, and ``Engine.wake`` makes it due at once for a signal, a stop or
    the end of a child. Saving before the last look closes the race with a signal
    sent while parking: either the look sees it, or its wake-up comes after the save.
    """
    now = driver.engine.now()
    wake_at = record.wake_at if record is not None else None
    if record is not None and record.child_execution_id:
        # An InProgress execution without a timer would look runnable at once.
        fallback = now + CHILD_POLL_INTERVAL
        wake_at = fallback if wake_at is None else min(wake_at, fallback)
    changes: dict[str, Any] = {"wake_at": wake_at}
    if record is None or record.status == Status.WAITING:
        changes["status"] = Status.WAITING
    await driver.save(**changes)
    await driver.refresh_control()
    if driver.execution.stop_requested is not None:
        return False
    if record is None:
        return not any(s.type == "StartStep" for s in driver.signals)
    if any(s.type in record.waiting_for for s in driver.signals):
        return False
    if record.child_execution_id:
        child = await driver.store.get_execution(record.child_execution_id)
        return not child.status.terminal
    return True


def step_signal_ids(driver: Driver, record: StepRecord) -> list[int]:
    """The signals a waiting step acts on (consumed with its result)."""
    return [
        s.signal_id
        for s in driver.signals
        if s.type in record.waiting_for and s.signal_id is not None
    ]


async def sleep_until(driver: Driver, wake_at: datetime | None) -> None:
    delay = driver.settings.poll_interval
    if wake_at is not None:
        delay = min(delay, max(0.0, (wake_at - driver.engine.now()).total_seconds()))
    with anyio.move_on_after(delay):
        await driver.wakeup.wait()
    driver.wakeup = anyio.Event()
    await driver.refresh_control()


async def cancel_step(driver: Driver, record: StepRecord) -> None:
    if record.child_execution_id:
        await driver.engine.children.cancel(record.child_execution_id)
    changes: dict[str, Any] = {}
    if (
        driver.execution.status != Status.CANCELLING
        and driver.execution.stop_requested == StopType.CANCEL
    ):
        changes["status"] = Status.CANCELLING
        changes["cancel_deadline"] = driver.engine.now() + CANCEL_WORKFLOW_LIMIT
    status = Status.CANCELLED
    if driver.execution.stop_requested == StopType.COMPLETE and record.status.terminal:
        status = record.status
    await driver.save(
        replace(record, status=status, end_time=driver.engine.now(), wake_at=None, waiting_for=()),
        **changes,
    )


async def await_instruction(driver: Driver, valid: tuple[str, ...]) -> None:
    if driver.execution.status != Status.WAITING:
        await driver.save(status=Status.WAITING, current_step_name=None, current_action=None)
    if (
        driver.until_waiting
        and not any(s.type == "StartStep" for s in driver.signals)
        and await park(driver, None)
    ):
        raise Parked
    await sleep_until(driver, None)
