"""Run one generated runbook through the library ``Engine`` in a fresh process.

The engine benchmarks (``engine_overhead.py``, ``shell_steps.py``) start this file as a
subprocess so that each run has its own interpreter: the peak resident memory then
belongs to that run alone, and nothing is cached from an earlier one. It prints one
JSON object:

* ``run_seconds``: ``Engine.run`` inside an open engine, in its two parts: ``Engine.start``
  (read, parse and check the document, create the execution: ``start_seconds``) and
  ``Engine.wait`` (drive every step, one commit each, read the execution and its
  steps back); ``run_cpu_seconds``: the CPU time of the same (user + system; on a
  shared machine it moves less than the wall time), and ``children_cpu_seconds`` that of
  the processes the steps started (shells); ``open_seconds``: opening the SQLite store (schema creation) and closing it.
* ``rss_after_import_mb`` and ``peak_rss_mb`` (``ru_maxrss``): memory after importing
  the engine and the SQL store, and at the highest point of the run.
* ``status`` and ``steps``: what the store holds afterwards (every step ``Success``),
  read back with ``sqlite3`` after the engine closed, so a figure is only printed for
  a run whose steps are durable.

The subprocess gets the environment of ``_cli_env.py`` (bytecode under the state file's
directory, written by the first run, read by the later ones): the whole-process figure
is then that of an installed engine.

    python benchmarks/engine_run.py DOCUMENT.yaml STATE.db [--profile STATS_FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _cli_env import cli_env

HERE = Path(__file__).resolve()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _stored_steps(db: Path, execution_id: str) -> dict[str, int]:
    """Step records per status, as a separate reader sees them in the SQLite file."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT status, COUNT(*) FROM runbook_step_executions"
            " WHERE execution_id = ? GROUP BY status",
            (execution_id,),
        ).fetchall()
    finally:
        conn.close()
    return {str(status): count for status, count in rows}


def children_cpu_seconds() -> float:
    """User + system CPU of the child processes waited for so far (shells, scripts)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker(document: Path, db: Path, profile: Path | None) -> dict[str, Any]:
    import anyio

    # Imported up front so that the run's figures leave one-off imports out: the SQL
    # store (open_store imports it) and the step graph checks with networkx (validation
    # imports them at the first document: 0.1-0.2 s, more than a tenth of the run).
    import runbook_engine.graph
    import runbook_engine.store.sql  # noqa: F401
    from runbook_engine import Engine

    rss_after_import = _rss_mb()
    timings: dict[str, float] = {}
    result: dict[str, Any] = {}

    async def main() -> None:
        opened = time.perf_counter()
        async with Engine(f"sqlite:///{db}") as engine:
            started, cpu_started = time.perf_counter(), time.process_time()
            children_started = children_cpu_seconds()
            execution_id = await engine.start(str(document))  # what Engine.run does
            timings["start"] = time.perf_counter() - started
            view = await engine.wait(execution_id)
            timings["run"] = time.perf_counter() - started
            timings["run_cpu"] = time.process_time() - cpu_started
            timings["children_cpu"] = children_cpu_seconds() - children_started
            result["execution_id"] = view.execution_id
            result["status"] = view.status.value
        timings["open_close"] = time.perf_counter() - opened - timings["run"]

    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(anyio.run, main)
        profiler.dump_stats(profile)
    else:
        anyio.run(main)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        **result,
        "run_seconds": timings["run"],
        "start_seconds": timings["start"],
        "run_cpu_seconds": timings["run_cpu"],
        "children_cpu_seconds": timings["children_cpu"],
        "open_seconds": timings["open_close"],
        "rss_after_import_mb": round(rss_after_import, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "stored_steps": _stored_steps(db, result["execution_id"]),
    }


@dataclass(frozen=True)
class EngineRun:
    """One engine run as measured by :func:`run_engine` (seconds, megabytes)."""

    steps: int
    run_seconds: float
    start_seconds: float
    run_cpu_seconds: float
    children_cpu_seconds: float
    open_seconds: float
    process_seconds: float  # the whole subprocess: interpreter start, imports, run, exit
    rss_after_import_mb: float
    peak_rss_mb: float

    @property
    def ms_per_step(self) -> float:
        return self.run_seconds * 1000 / self.steps

    @property
    def cpu_ms_per_step(self) -> float:
        return self.run_cpu_seconds * 1000 / self.steps

    @property
    def cpu_with_children_ms_per_step(self) -> float:
        """CPU per step of the engine and of the processes its steps started."""
        return (self.run_cpu_seconds + self.children_cpu_seconds) * 1000 / self.steps

    @property
    def drive_ms_per_step(self) -> float:
        """Per step without the one-off document parse and check (``Engine.wait``)."""
        return (self.run_seconds - self.start_seconds) * 1000 / self.steps

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.run_seconds


def run_engine(document: Path, db: Path, steps: int, profile: Path | None = None) -> EngineRun:
    """Run ``document`` in a fresh interpreter; fail unless all ``steps`` succeeded durably."""
    command = [sys.executable, str(HERE), str(document), str(db)]
    if profile is not None:
        command += ["--profile", str(profile)]
    started = time.perf_counter()
    env = cli_env(db.parent)
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    process_seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"engine run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    if data["status"] != "Success" or data["stored_steps"] != {"Success": steps}:
        raise RuntimeError(
            f"expected {steps} successful steps in the store, found {data['stored_steps']} "
            f"(execution {data['status']})"
        )
    return EngineRun(
        steps=steps,
        run_seconds=data["run_seconds"],
        start_seconds=data["start_seconds"],
        run_cpu_seconds=data["run_cpu_seconds"],
        children_cpu_seconds=data["children_cpu_seconds"],
        open_seconds=data["open_seconds"],
        process_seconds=process_seconds,
        rss_after_import_mb=data["rss_after_import_mb"],
        peak_rss_mb=data["peak_rss_mb"],
    )


def load_average() -> str:
    """The 1-minute load average, printed beside figures from a shared machine."""
    return f"{os.getloadavg()[0]:.2f}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("document", type=Path)
    parser.add_argument("db", type=Path)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    print(json.dumps(worker(args.document, args.db, args.profile)))
