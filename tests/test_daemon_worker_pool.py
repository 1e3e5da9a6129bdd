"""The worker pool in one process, on the in-memory store: a notify wakes an idle worker
without waiting for a poll, a batch of work started by one notify is all run, and the
polling worker picks up a parked timer when it comes due."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from runbook_engine.daemon.metrics import Metrics
from runbook_engine.daemon.worker import WorkerPool
from runbook_engine.engine import Engine
from runbook_engine.settings import Settings
from runbook_engine.status import Status

pytestmark = pytest.mark.anyio

QUICK = """\
schemaVersion: '0.3'
mainSteps:
  - name: nap
    action: aws:sleep
    inputs: {Duration: PT0S}
"""
PARKING = QUICK.replace("PT0S", "PT1S")


async def until_all_end(engine: Engine, ids: list[str]) -> None:
    with anyio.fail_after(30):
        while True:
            statuses = [(await engine.store.get_execution(i)).status for i in ids]
            if all(s.terminal for s in statuses):
                assert set(statuses) == {Status.SUCCESS}
                return
            await anyio.sleep(0.05)


async def test_one_notify_runs_a_batch_without_waiting_for_a_poll(tmp_path: Path) -> None:
    document = tmp_path / "quick.yaml"
    document.write_text(QUICK)
    async with Engine("memory://") as engine, anyio.create_task_group() as group:
        pool = WorkerPool(engine, Metrics(), workers=3, poll_seconds=3600)
        group.start_soon(pool.run)
        await anyio.sleep(0.2)  # every worker has looked once and is idle now
        ids = [await engine.start(str(document)) for _ in range(5)]
        pool.notify()
        await until_all_end(engine, ids)
        await pool.shutdown(5)
        group.cancel_scope.cancel()


async def test_the_polling_worker_picks_up_a_parked_timer_when_due(tmp_path: Path) -> None:
    document = tmp_path / "parking.yaml"
    document.write_text(PARKING)
    settings = Settings(park_timers_after=0.2)
    async with Engine("memory://", settings=settings) as engine, anyio.create_task_group() as group:
        pool = WorkerPool(engine, Metrics(), workers=3, poll_seconds=0.2)
        group.start_soon(pool.run)
        ids = [await engine.start(str(document)) for _ in range(3)]
        pool.notify()
        await until_all_end(engine, ids)
        for execution_id in ids:
            steps = await engine.store.get_steps(execution_id)
            assert [s.step_name for s in steps] == ["nap"]
        await pool.shutdown(5)
        group.cancel_scope.cancel()
