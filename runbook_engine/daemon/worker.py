"""Workers: claim a due execution, drive it until it ends or waits, let it go.

Each of the daemon's ``workers`` tasks loops on ``store.claim_next`` (an indexed query:
runnable executions, then the longest overdue timer; ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), then ``Engine.wait(until_waiting=True)``, which renews the lease while it
drives and releases it at the end. A waiting execution holds no task: the scheduler
saves when it must be looked at again (``wake_at``), and signals, stops and ended child
executions make it due at once (``Engine.wake``). Several daemons on one database share
the work the same way; one that dies stops renewing, and after ``lease_seconds`` its
executions are claimed by the others, resuming from their step records.

Shutdown (SIGTERM): stop claiming, give running executions ``grace`` seconds, then cancel
them; the cancelled drivers release their leases on the way out, so other daemons take
the executions over at once instead of after the lease expires.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import anyio
from anyio.abc import TaskGroup

from runbook_engine.daemon import logs
from runbook_engine.daemon.metrics import Metrics
from runbook_engine.engine import Engine
from runbook_engine.errors import ExecutionClaimed, LeaseLost, StaleRecord
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.status import Status

RETRY_AFTER_ERROR = timedelta(seconds=30)  # an execution whose drive failed waits this long


class WorkerPool:
    def __init__(
        self, engine: Engine, metrics: Metrics, *, workers: int, poll_seconds: float
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.workers = workers
        self.poll_seconds = poll_seconds
        self._work = anyio.Event()
        self._claiming = True
        self._busy = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._group: TaskGroup | None = None

    def notify(self) -> None:
        """New or woken work: idle workers look now rather than at their next poll."""
        self._work.set()

    async def run(self) -> None:
        async with anyio.create_task_group() as group:
            self._group = group
            for index in range(self.workers):
                group.start_soon(self._loop, index)

    async def shutdown(self, grace: float) -> None:
        """Stop claiming; after ``grace`` seconds cancel what still runs (leases released)."""
        self._claiming = False
        self._work.set()
        with anyio.move_on_after(grace):
            await self._idle.wait()
        if self._group is not None:
            self._group.cancel_scope.cancel()

    async def _loop(self, index: int) -> None:
        lease = self.engine.settings.lease_seconds
        while self._claiming:
            record = await self.engine.store.claim_next(self.engine.owner, lease, self.engine.now())
            if record is None:
                with anyio.move_on_after(self.poll_seconds):
                    await self._work.wait()
                if self._work.is_set():
                    self._work = anyio.Event()
                continue
            self._started()
            try:
                await self._drive(record, index)
            finally:
                self._finished()

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
        self.metrics.claims.inc()
        steps = await self.engine.store.get_steps(execution_id)
        taken_over = any(_left_running(step) for step in steps)
        if taken_over:
            self.metrics.takeovers.inc()
        logs.event(
            "claimed",
            execution_id=execution_id,
            status=record.status.value,
            worker=index,
            taken_over=taken_over,
        )
        try:
            view = await self.engine.wait(execution_id, until_waiting=True)
        except (ExecutionClaimed, LeaseLost) as exc:
            logs.event("lost", logging.WARNING, execution_id=execution_id, reason=exc.message)
            return
        except Exception:
            logging.getLogger("runbook_engine.daemon").exception(
                "driving failed", extra={"fields": {"execution_id": execution_id}}
            )
            await self._retry_later(execution_id)
            return
        logs.event(
            "released",
            execution_id=execution_id,
            status=view.status.value,
            wake_at=view.execution.wake_at,
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
