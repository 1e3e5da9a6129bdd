"""Workers: claim a due execution, drive it until it ends or waits, let it go.

Each of the daemon's ``workers`` tasks loops on ``store.claim_next`` (an indexed query:
runnable executions, then the longest overdue timer; ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), then ``Engine.drive(until_waiting=True)``, which renews the lease while it
drives and releases it at the end. A waiting execution holds no task: the scheduler
saves when it must be looked at again (``wake_at``), and signals, stops and ended child
executions make it due at once (``Engine.wake``). Several daemons on one database share
the work the same way; one that dies stops renewing, and after ``lease_seconds`` its
executions are claimed by the others, resuming from their step records.

Idle workers do not all poll: one of them (the poller) looks every ``poll_seconds`` for
timers that came due, the others sleep until woken. ``notify`` wakes one idle worker,
not all of them, and a worker leaving the poller's role to drive an execution hands the
role to another idle worker (which looks at once, so a batch of due work is picked up
worker after worker). Waking every idle worker on each signal made them race for the
same row and for the database connections, which slowed the one that won.

A signal needs no worker at all: the request handler hands the execution it just woke to
``hand_off``, which drives it here at once (``Engine.drive``: claim by id, drive, release)
instead of leaving it to a worker's next ``claim_next``. Under a burst the workers were
the queue: 200 approvals waited behind 4 drives at a time for seconds, while a parked
execution's wake is I/O bound and cheap to run many at once. The handler answers once the
execution went on (a step started since the signal, or the drive ended), at most
``HAND_OFF_WAIT`` later: callers that signal faster than the daemon drives are slowed
down, instead of a backlog growing unseen. Lease semantics do not change: the claim is
taken in the signal's own store call (``add_signal_and_wake``: the signal, the wake-up
and the claim in one transaction, under the same atomic conditions as ``claim``); if
another process holds the execution, ``Engine.drive`` claims as before (a dead process
of this host is taken over, a live one keeps it and the hand-off drives nothing).

Shutdown (SIGTERM): stop claiming, give running executions ``grace`` seconds, then cancel
them; the cancelled drivers release their leases on the way out, so other daemons take
the executions over at once instead of after the lease expires.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import anyio
from anyio.abc import TaskGroup

from runbook_engine.control import Claimed
from runbook_engine.daemon import logs
from runbook_engine.daemon.metrics import Metrics
from runbook_engine.engine import Engine
from runbook_engine.errors import ExecutionClaimed, LeaseLost, StaleRecord
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.status import Status

RETRY_AFTER_ERROR = timedelta(seconds=30)  # an execution whose drive failed waits this long
HAND_OFF_WAIT = 1.0  # seconds a signal's answer waits at most for its execution to go on
HAND_OFFS = 32  # executions driven at once by hand-offs (besides the workers)


@dataclass
class _Progress:
    """A hand-off waits on this: a step started since ``since``, or the drive ended."""

    since: datetime
    event: anyio.Event


class WorkerPool:
    def __init__(
        self, engine: Engine, metrics: Metrics, *, workers: int, poll_seconds: float
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.workers = workers
        self.poll_seconds = poll_seconds
        self._waiting: deque[anyio.Event] = deque()  # idle workers, longest idle first
        self._poller: int | None = None  # the idle worker that polls
        self._missed = False  # a notify came while no worker was idle
        self._claiming = True
        self._busy = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._group: TaskGroup | None = None
        self._driving: set[str] = set()  # executions driven in this pool now
        self._handed = 0  # drives started by hand_off, running now
        self._progress: dict[str, list[_Progress]] = {}  # hand-offs waiting, per execution

    def notify(self) -> None:
        """New or woken work: one idle worker looks now rather than at the next poll."""
        self._wake_one()

    async def hand_off(
        self, execution_id: str, send: Callable[[bool], Awaitable[Claimed | None]]
    ) -> None:
        """Send a signal (``send``) and drive the execution it woke here now; return once
        the execution went on.

        ``send(claim)`` records the signal and, if ``claim``, takes the execution's lease
        in the same transaction (``control.send_signal``). It claims when this pool can
        start a drive: not stopping, fewer than ``HAND_OFFS`` hand-offs running; otherwise
        a worker claims the execution (``notify``). If a drive of this pool runs the
        execution already (same owner: the claim succeeds and changes nothing), nothing
        starts, but the wait for progress is the same. If another process holds the lease,
        ``Engine.drive`` claims as usual: a dead process of this host is taken over at
        once, a live one keeps the execution (the drive ends at once).
        """
        can_drive = self._claiming and self._group is not None and self._handed < HAND_OFFS
        progress = _Progress(self.engine.now(), anyio.Event())
        self._progress.setdefault(execution_id, []).append(progress)
        try:
            # Shielded: a lease taken must reach its drive (which releases it), not be
            # left to expire because the request was cancelled between the two.
            with anyio.CancelScope(shield=True):
                if can_drive:
                    self._handed += 1  # the slot is held while the signal is sent
                try:
                    claimed = await send(can_drive)
                finally:
                    if can_drive:
                        self._handed -= 1
                if not can_drive:
                    self.notify()
                    return
                if execution_id not in self._driving and self._group is not None:
                    self._driving.add(execution_id)
                    self._handed += 1
                    self._group.start_soon(self._drive_handed, execution_id, claimed)
            with anyio.move_on_after(HAND_OFF_WAIT):
                await progress.event.wait()
        finally:
            waiting = self._progress[execution_id]
            waiting.remove(progress)
            if not waiting:
                del self._progress[execution_id]

    def step_changed(self, record: StepRecord) -> None:
        """The engine's step listener: a step that started since a hand-off ends its wait."""
        for progress in self._progress.get(record.execution_id, ()):
            if record.start_time and record.start_time >= progress.since:
                progress.event.set()

    def _went_on(self, execution_id: str) -> None:
        for progress in self._progress.get(execution_id, ()):
            progress.event.set()

    async def _drive_handed(self, execution_id: str, claimed: Claimed | None) -> None:
        self._started()
        try:
            await self._drive_claimed(execution_id, taken_over=None, handed=claimed)
        finally:
            self._driving.discard(execution_id)
            self._handed -= 1
            self._finished()
            self._went_on(execution_id)

    def _wake_one(self) -> None:
        while self._waiting:
            event = self._waiting.popleft()
            if not event.is_set():
                event.set()
                return
        self._missed = True  # every worker is busy: the next one to go idle looks again

    async def _wait_for_work(self, index: int) -> None:
        if self._missed:
            self._missed = False
            return
        if self._poller is None:
            self._poller = index
        event = anyio.Event()
        self._waiting.append(event)
        try:
            if self._poller == index:
                with anyio.move_on_after(self.poll_seconds):
                    await event.wait()
            else:
                await event.wait()
        finally:
            event.set()
            if event in self._waiting:
                self._waiting.remove(event)

    def _leave_idle(self, index: int) -> None:
        """This worker goes to drive an execution: another idle one takes the polling."""
        if self._poller == index:
            self._poller = None
            if self._waiting:
                self._wake_one()

    async def run(self) -> None:
        async with anyio.create_task_group() as group:
            self._group = group
            for index in range(self.workers):
                group.start_soon(self._loop, index)
            # Open for hand-offs until shutdown cancels it, even with no workers.
            group.start_soon(anyio.sleep_forever)

    async def shutdown(self, grace: float) -> None:
        """Stop claiming; after ``grace`` seconds cancel what still runs (leases released)."""
        self._claiming = False
        while self._waiting:
            self._waiting.popleft().set()
        with anyio.move_on_after(grace):
            await self._idle.wait()
        if self._group is not None:
            self._group.cancel_scope.cancel()

    async def _loop(self, index: int) -> None:
        lease = self.engine.settings.lease_seconds
        while self._claiming:
            record = await self.engine.store.claim_next(self.engine.owner, lease, self.engine.now())
            if record is None:
                if self._claiming:
                    await self._wait_for_work(index)
                continue
            if record.execution_id in self._driving:  # a hand-off runs it (same lease)
                continue
            self._leave_idle(index)
            self._driving.add(record.execution_id)
            self._started()
            try:
                await self._drive(record, index)
            finally:
                self._driving.discard(record.execution_id)
                self._finished()
                self._went_on(record.execution_id)

    def _started(self) -> None:
        self._busy += 1
        self._idle = anyio.Event() if self._busy == 1 else self._idle
        self.metrics.busy_workers.set(self._busy)

    def _finished(self) -> None:
        self._busy -= 1
        self.metrics.busy_workers.set(self._busy)
        if self._busy == 0:
            self._idle.set()

    async def _drive(self, record: ExecutionRecord, index: int) -> None:
        execution_id = record.execution_id
        steps = await self.engine.store.get_steps(execution_id)
        taken_over = any(_left_running(step) for step in steps)
        logs.event(
            "claimed",
            execution_id=execution_id,
            status=record.status.value,
            worker=index,
            taken_over=taken_over,
        )
        self.metrics.claims.inc()
        if taken_over:
            self.metrics.takeovers.inc()
        await self._drive_claimed(execution_id, taken_over=taken_over)

    async def _drive_claimed(
        self, execution_id: str, *, taken_over: bool | None, handed: Claimed | None = None
    ) -> None:
        """Drive until the execution ends or waits; ``taken_over`` None: a hand-off, whose
        claim is the signal's (``handed``) or else ``Engine.drive``'s own (another daemon
        may hold the execution)."""
        try:
            execution = await self.engine.drive(execution_id, until_waiting=True, handed=handed)
        except ExecutionClaimed as exc:
            level = logging.INFO if taken_over is None else logging.WARNING
            logs.event(
                "lost",
                level,
                execution_id=execution_id,
                reason=exc.message,
                handed_off=taken_over is None,
            )
            return
        except LeaseLost as exc:
            logs.event("lost", logging.WARNING, execution_id=execution_id, reason=exc.message)
            return
        except Exception:
            logging.getLogger("runbook_engine.daemon").exception(
                "driving failed", extra={"fields": {"execution_id": execution_id}}
            )
            await self._retry_later(execution_id)
            return
        if taken_over is None:
            self.metrics.claims.inc()
        logs.event(
            "released",
            execution_id=execution_id,
            status=execution.status.value,
            wake_at=execution.wake_at,
            handed_off=taken_over is None,
        )

    async def _retry_later(self, execution_id: str) -> None:
        """Park an execution whose drive raised, so that it is not claimed again at once."""
        store = self.engine.store
        for _ in range(5):
            try:
                execution = await store.get_execution(execution_id)
                if execution.status.terminal:
                    return
                await store.update_execution(
                    replace(execution, wake_at=self.engine.now() + RETRY_AFTER_ERROR),
                    expected_version=execution.version,
                )
                return
            except StaleRecord:
                continue
            except Exception:  # the store itself is failing: the lease runs out anyway
                return


def _left_running(step: StepRecord) -> bool:
    """A step some process was running (not one parked for a person or a child execution):
    claiming its execution means taking it over from a holder that stopped."""
    return (
        not step.status.terminal and step.status != Status.WAITING and not step.child_execution_id
    )
