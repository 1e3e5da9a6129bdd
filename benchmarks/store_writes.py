"""Cost of one durable step transition: ``record_step_and_execution`` per commit.

The scheduler commits once per step transition (write-ahead ``InProgress``, then the
final status), each time a step record and the execution record in one transaction.
This measures that call on SQLite (a temporary file, WAL, synchronous=NORMAL), beside
a bare ``sqlite3`` single-row commit in the same mode as the floor, and on PostgreSQL
when ``RUNBOOK_BENCH_POSTGRES_URL`` names a database (its tables are created there).

    python benchmarks/store_writes.py [--commits 4000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import anyio

from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.status import Status
from runbook_engine.store import StateStore, open_store

DOCUMENT = "schemaVersion: '0.3'\nmainSteps:\n" + "".join(
    f"  - name: step{n}\n    action: aws:sleep\n    inputs:\n      Duration: PT0S\n"
    for n in range(60)
)  # about 4 KB, stored with every execution


async def step_transitions(store: StateStore, commits: int) -> float:
    """Milliseconds per record_step_and_execution over ``commits`` calls."""
    execution_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    record = ExecutionRecord(
        execution_id=execution_id,
        document_name="Bench",
        document_content=DOCUMENT,
        status=Status.IN_PROGRESS,
        parameters={"Message": "hello", "Count": 3},
        start_time=now,
    )
    await store.create_execution(record)
    started = time.perf_counter()
    for n in range(commits):
        final = n % 2 == 1
        step = StepRecord(
            execution_id=execution_id,
            step_execution_id=f"{execution_id}-{n // 2}",
            sequence=n // 2,
            step_name=f"step{n // 2 % 60}",
            action="aws:sleep",
            status=Status.SUCCESS if final else Status.IN_PROGRESS,
            start_time=now,
            end_time=now if final else None,
            inputs={"Duration": "PT0S"},
            outputs={"Slept": 0} if final else {},
        )
        record = await store.record_step_and_execution(
            step,
            replace(record, current_step_name=step.step_name, current_action=step.action),
            record.version,
        )
    return (time.perf_counter() - started) * 1000 / commits


def bare_sqlite(path: Path, commits: int) -> float:
    """Milliseconds per single-row commit through sqlite3 itself, same journal settings."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, value TEXT)")
    started = time.perf_counter()
    for n in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (n % 100, "x" * 200))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed * 1000 / commits


async def measure(url: str, commits: int) -> float:
    store = open_store(url)
    try:
        await step_transitions(store, commits // 10)  # warm up caches and the file
        return await step_transitions(store, commits)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=4000)
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(
            ("sqlite3 bare single-row commit", bare_sqlite(Path(tmp, "bare.db"), args.commits))
        )
        sqlite_url = f"sqlite:///{Path(tmp, 'state.db')}"
        rows.append(
            ("SQLite record_step_and_execution", anyio.run(measure, sqlite_url, args.commits))
        )
        rows.append(
            ("memory record_step_and_execution", anyio.run(measure, "memory://", args.commits))
        )
    postgres_url = os.environ.get("RUNBOOK_BENCH_POSTGRES_URL")
    if postgres_url:
        label = "PostgreSQL record_step_and_execution"
        rows.append((label, anyio.run(measure, postgres_url, args.commits)))
    width = max(len(label) for label, _ in rows)
    print(f"{'what':<{width}}  ms/commit  commits/s")
    for label, ms in rows:
        print(f"{label:<{width}}  {ms:9.4f}  {1000 / ms:9.0f}")


if __name__ == "__main__":
    main()
