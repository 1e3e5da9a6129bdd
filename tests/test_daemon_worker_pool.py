"""The worker pool in one process, on the in-memory store: a notify wakes an idle worker
without waiting for a poll, a batch of work started by one notify is all run, and the
polling worker picks up a parked timer when it comes due."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from runbook_engine.control import Claimed, send_signal
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


GATE = """\
schemaVersion: '0.3'
mainSteps:
  - name: gate
    action: aws:approve
    inputs: {Approvers: [tester]}
  - name: after
    action: aws:sleep
    inputs: {Duration: PT0S}
"""


async def parked_at_gate(engine: Engine, document: Path, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        execution_id = await engine.start(str(document))
        view = await engine.wait(execution_id, until_waiting=True)
        assert view.status == Status.WAITING
        ids.append(execution_id)
    return ids


def approval(engine: Engine, execution_id: str) -> Callable[[bool], Awaitable[Claimed | None]]:
    """What the daemon's SendAutomationSignal hands to ``hand_off``: send an Approve."""

    async def send(claim: bool) -> Claimed | None:
        return await send_signal(engine, execution_id, "Approve", None, None, "tester", claim=claim)

    return send


async def test_a_hand_off_drives_a_signalled_execution_without_any_worker(
    tmp_path: Path,
) -> None:
    document = tmp_path / "gate.yaml"
    document.write_text(GATE)
    async with Engine("memory://") as engine, anyio.create_task_group() as group:
        (execution_id,) = await parked_at_gate(engine, document, 1)
        metrics = Metrics()
        pool = WorkerPool(engine, metrics, workers=0, poll_seconds=3600)  # nobody claims
        group.start_soon(pool.run)
        await anyio.sleep(0.05)  # the pool's task group is open
        engine.listener = pool.step_changed
        await pool.hand_off(execution_id, approval(engine, execution_id))
        # The answer waited until the next step had started.
        after = [s for s in await engine.store.get_steps(execution_id) if s.step_name == "after"]
        assert len(after) == 1 and after[0].start_time is not None
        await until_all_end(engine, [execution_id])
        await pool.shutdown(5)  # waits for the drive to end
        assert metrics.claims._value.get() == 1
        group.cancel_scope.cancel()


async def test_hand_offs_and_polling_workers_drive_each_execution_once(tmp_path: Path) -> None:
    """Workers polling all the time claim the same due executions as the hand-offs (same
    owner, so both claims succeed): each execution is still driven by one of them only."""
    document = tmp_path / "gate.yaml"
    document.write_text(GATE)
    async with Engine("memory://") as engine, anyio.create_task_group() as group:
        ids = await parked_at_gate(engine, document, 12)
        driven: list[str] = []
        original = engine.drive

        async def counting_drive(
            execution_id: str, *, until_waiting: bool = False, handed: Claimed | None = None
        ) -> object:
            driven.append(execution_id)
            return await original(execution_id, until_waiting=until_waiting, handed=handed)

        engine.drive = counting_drive  # type: ignore[method-assign,assignment]
        pool = WorkerPool(engine, Metrics(), workers=3, poll_seconds=0.001)
        group.start_soon(pool.run)
        engine.listener = pool.step_changed

        async def approve(execution_id: str) -> None:
            send = approval(engine, execution_id)

            async def send_then_race(claim: bool) -> Claimed | None:
                claimed = await send(claim)
                pool.notify()  # a worker races the hand-off for the same execution
                await anyio.sleep(0.002)  # let it claim first, sometimes
                return claimed

            await pool.hand_off(execution_id, send_then_race)

        async with anyio.create_task_group() as signals:
            for execution_id in ids:
                signals.start_soon(approve, execution_id)
        await until_all_end(engine, ids)
        assert sorted(driven) == sorted(ids)
        for execution_id in ids:
            steps = await engine.store.get_steps(execution_id)
            assert [s.step_name for s in steps] == ["gate", "after"]
        await pool.shutdown(5)
        group.cancel_scope.cancel()
