"""Cost of one durable step transition: ``record_steps_and_execution`` per commit.

The scheduler commits once per step transition (write-ahead ``InProgress``, then the
final status), each time a step record and the execution record in one transaction.
This measures that call on SQLite (a temporary file, WAL, synchronous=NORMAL), beside
a bare ``sqlite3`` single-row commit in the same mode as the floor, and on PostgreSQL
when ``RUNBOOK_BENCH_POSTGRES_URL`` names a database (its tables are created there).

    python benchmarks/store_writes.py [--commits 4000] [--document-steps 60] [--repeat 3]

Each figure is the best of ``--repeat`` passes, as wall time and as CPU time of this
process (on a machine shared with other work the CPU time moves less). The execution
record carries its document text, as the engine's do: ``--document-steps 1000`` stores
the 80 KB document of ``engine_overhead.py``.
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

Timing = tuple[float, float]  # (wall ms, CPU ms) per commit


def document(steps: int) -> str:
    """A runbook of ``steps`` sleep steps (60: about 4 KB), stored with the execution."""
    return "schemaVersion: '0.3'\nmainSteps:\n" + "".join(
        f"  - name: step{n}\n    action: aws:sleep\n    inputs:\n      Duration: PT0S\n"
        for n in range(steps)
    )


async def step_transitions(store: StateStore, commits: int, text: str) -> Timing:
    """Milliseconds (wall, CPU) per record_steps_and_execution over ``commits`` calls."""
    execution_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    record = ExecutionRecord(
        execution_id=execution_id,
        document_name="Bench",
        document_content=text,
        status=Status.IN_PROGRESS,
        parameters={"Message": "hello", "Count": 3},
        start_time=now,
    )
    await store.create_execution(record)
    started, cpu_started = time.perf_counter(), time.process_time()
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
        record = await store.record_steps_and_execution(
            [step],
            replace(record, current_step_name=step.step_name, current_action=step.action),
            record.version,
        )
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return wall * 1000 / commits, cpu * 1000 / commits


def bare_sqlite(path: Path, commits: int) -> Timing:
    """Milliseconds per single-row commit through sqlite3 itself, same journal settings."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, value TEXT)")
    started, cpu_started = time.perf_counter(), time.process_time()
    for n in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (n % 100, "x" * 200))
        conn.execute("COMMIT")
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    conn.close()
    return wall * 1000 / commits, cpu * 1000 / commits


async def measure(url: str, commits: int, text: str) -> Timing:
    store = open_store(url)
    try:
        await step_transitions(store, commits // 10, text)  # warm up caches and the file
        return await step_transitions(store, commits, text)
    finally:
        await store.close()


def best(runs: list[Timing]) -> Timing:
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=4000)
    parser.add_argument("--document-steps", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    text = document(args.document_steps)
    urls = {"memory record_steps_and_execution": "memory://"}
    postgres_url = os.environ.get("RUNBOOK_BENCH_POSTGRES_URL")
    if postgres_url:
        urls["PostgreSQL record_steps_and_execution"] = postgres_url
    rows: dict[str, list[Timing]] = {}
    for n in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            bare = bare_sqlite(Path(tmp, "bare.db"), args.commits)
            rows.setdefault("sqlite3 bare single-row commit", []).append(bare)
            sqlite_url = f"sqlite:///{Path(tmp, f'state-{n}.db')}"
            timing = anyio.run(measure, sqlite_url, args.commits, text)
            rows.setdefault("SQLite record_steps_and_execution", []).append(timing)
        for label, url in urls.items():
            rows.setdefault(label, []).append(anyio.run(measure, url, args.commits, text))
    width = max(len(label) for label in rows)
    print(
        f"document {len(text) / 1024:.0f} KB, best of {args.repeat}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'what':<{width}}  ms/commit  commits/s  CPU ms/commit")
    for label, runs in rows.items():
        wall, cpu = best(runs)
        print(f"{label:<{width}}  {wall:9.4f}  {1000 / wall:9.0f}  {cpu:13.4f}")


if __name__ == "__main__":
    main()
