"""Entry points of the OS processes that the store tests race against each other.

Each runs in a fresh interpreter (multiprocessing "spawn"), opens the store by URL like
a separate ``runbook`` process would, waits at a shared barrier so that the racers
start together, and reports what it saw on a queue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio

from runbook_engine.records import ExecutionRecord
from runbook_engine.status import Status
from runbook_engine.store import open_store

BARRIER_TIMEOUT = 60


def claim_each(url: str, owner: str, execution_ids: list[str], barrier: Any, results: Any) -> None:
    """Claim every execution in turn, in step with the other racers; report the winners."""

    async def main() -> None:
        store = open_store(url)
        try:
            for execution_id in execution_ids:
                await anyio.to_thread.run_sync(barrier.wait, BARRIER_TIMEOUT)
                record = await store.claim(execution_id, owner, 60.0)
                results.put((execution_id, owner, record is not None))
        finally:
            await store.close()

    try:
        anyio.run(main)
    except Exception as exc:
        results.put(("?", owner, f"error: {exc!r}"))
        barrier.abort()  # the other racers stop waiting and report too


def claim_until_none(url: str, owner: str, barrier: Any, results: Any) -> None:
    """Claim due executions with ``claim_next`` until none is left; report each claimed."""

    async def main() -> None:
        store = open_store(url)
        try:
            await anyio.to_thread.run_sync(barrier.wait, BARRIER_TIMEOUT)
            while (record := await store.claim_next(owner, 600.0)) is not None:
                results.put((record.execution_id, owner, record.owner == owner))
        finally:
            await store.close()

    try:
        anyio.run(main)
    except Exception as exc:
        results.put(("?", owner, f"error: {exc!r}"))
        barrier.abort()


def open_and_create(url: str, execution_id: str, barrier: Any, results: Any) -> None:
    """Open a (possibly empty) database together with the other racers, then write to it."""

    async def main() -> None:
        barrier.wait(BARRIER_TIMEOUT)
        store = open_store(url)
        try:
            record = ExecutionRecord(
                execution_id, "Race", "{}", Status.PENDING, start_time=datetime.now(UTC)
            )
            await store.create_execution(record)
            results.put((execution_id, (await store.get_execution(execution_id)).document_name))
        finally:
            await store.close()

    try:
        anyio.run(main)
    except Exception as exc:
        results.put((execution_id, f"error: {exc!r}"))
        barrier.abort()
