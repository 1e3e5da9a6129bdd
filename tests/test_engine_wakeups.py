"""How parked executions tell workers when to look again (``wake_at``), what wakes them
early (signals, stops, a child's end), and a driver that loses its lease stopping."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from runbook_engine import Engine
from runbook_engine.engine import StartOptions
from runbook_engine.errors import IdempotencyMismatch, LeaseLost
from runbook_engine.settings import Settings
from runbook_engine.status import Status
from runbook_engine.store import ClientToken

APPROVAL = """\
schemaVersion: '0.3'
mainSteps:
  - name: gate
    action: aws:approve
    timeoutSeconds: 600
    inputs: {Approvers: [tester], Message: ok?}
  - name: done
    action: aws:sleep
    inputs: {Duration: PT0S}
"""
PARENT = """\
schemaVersion: '0.3'
mainSteps:
  - name: child
    action: aws:executeAutomation
    inputs: {DocumentName: approval}
"""
LONG_SLEEP = """\
schemaVersion: '0.3'
mainSteps:
  - name: nap
    action: aws:sleep
    inputs: {Duration: PT60S}
"""


@pytest.fixture
def documents(tmp_path: Path) -> Path:
    for name, text in (("approval", APPROVAL), ("parent", PARENT), ("nap", LONG_SLEEP)):
        (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


def engine(documents: Path, **settings: object) -> Engine:
    return Engine(
        "memory://",
        documents=[documents],
        settings=Settings(poll_interval=0.05, principal="tester", **settings),  # type: ignore[arg-type]
    )


def test_a_parked_approval_is_due_at_its_timeout_and_a_signal_makes_it_due_now(
    documents: Path,
) -> None:
    async def main() -> None:
        async with engine(documents) as e:
            view = await e.run("approval", until_waiting=True)
            parked = view.execution
            assert parked.status == Status.WAITING
            gate = view.step("gate")
            assert parked.wake_at == gate.wake_at
            assert parked.wake_at is not None and parked.wake_at > e.now() + timedelta(minutes=9)
            assert await e.store.claim_next("worker", 30, e.now()) is None
            overdue = await e.store.claim_next("worker", 30, parked.wake_at + timedelta(seconds=1))
            assert overdue is not None and overdue.execution_id == parked.execution_id
            await e.store.release(parked.execution_id, "worker")

            await e.signal(parked.execution_id, "Approve")
            woken = await e.store.get_execution(parked.execution_id)
            assert woken.wake_at is not None and woken.wake_at <= e.now()
            claimed = await e.store.claim_next("worker", 30, e.now())
            assert claimed is not None and claimed.execution_id == parked.execution_id
            await e.store.release(parked.execution_id, "worker")
            done = await e.wait(parked.execution_id, until_waiting=True)
            assert done.status == Status.SUCCESS
            assert done.execution.wake_at is None

    anyio.run(main)


def test_a_stop_request_makes_a_parked_execution_due(documents: Path) -> None:
    async def main() -> None:
        async with engine(documents) as e:
            view = await e.run("approval", until_waiting=True)
            await e.stop(view.execution_id)
            claimed = await e.store.claim_next("worker", 30, e.now())
            assert claimed is not None and claimed.stop_requested == "Cancel"
            await e.store.release(view.execution_id, "worker")
            assert (await e.wait(view.execution_id)).status == Status.CANCELLED

    anyio.run(main)


def test_a_child_that_ends_wakes_its_parked_parent(documents: Path) -> None:
    async def main() -> None:
        async with engine(documents) as e:
            parent = await e.run("parent", until_waiting=True)
            assert parent.status == Status.IN_PROGRESS
            assert parent.execution.wake_at is not None  # polled, never "runnable" at once
            assert await e.store.claim_next("worker", 30, e.now()) is None
            child_id = parent.step("child").child_execution_id
            assert child_id is not None
            await e.signal(child_id, "Approve")
            await e.wait(child_id, until_waiting=True)
            woken = await e.store.get_execution(parent.execution_id)
            assert woken.wake_at is not None and woken.wake_at <= e.now()
            assert (await e.wait(parent.execution_id)).status == Status.SUCCESS

    anyio.run(main)


def test_a_driver_whose_lease_is_taken_over_stops(documents: Path) -> None:
    async def main() -> None:
        async with engine(documents, lease_seconds=0.3) as e:
            execution_id = await e.start("nap")

            async def take_over() -> None:
                await anyio.sleep(0.5)
                later = e.now() + timedelta(hours=1)  # the lease looks expired then
                assert await e.store.claim(execution_id, "other-daemon", 60, later) is not None

            async with anyio.create_task_group() as group:
                group.start_soon(take_over)
                with pytest.raises(LeaseLost):
                    await e.wait(execution_id)
            stored = await e.store.get_execution(execution_id)
            assert stored.owner == "other-daemon"

    anyio.run(main)


def test_start_options_keep_a_token_tags_and_rate_settings(documents: Path) -> None:
    async def main() -> None:
        async with engine(documents) as e:
            options = StartOptions(
                client_token=ClientToken("0f0f0f0f-0000-4000-8000-000000000000", "same"),
                tags={"team": "ops"},
                max_concurrency="2",
                max_errors="1",
            )
            first = await e.start("nap", options=options)
            assert await e.start("nap", options=options) == first
            record = await e.store.get_execution(first)
            assert (record.max_concurrency, record.max_errors) == ("2", "1")
            other = replace(options, client_token=ClientToken(options.client_token.token, "x"))  # type: ignore[union-attr]
            with pytest.raises(IdempotencyMismatch):
                await e.start("nap", options=other)

    anyio.run(main)
