"""Shell steps: a runbook of N ``aws:runShellScript`` steps running ``true`` on this host.

Every step starts ``/bin/sh`` on a script file, collects its output and is committed
twice to SQLite. The runbook runs through the library ``Engine`` in a subprocess of its
own (``engine_run.py``). Side by side, in the same run, the floors it is made of:

* bare ``subprocess.run(["/bin/sh", "-c", "true"])``, N times: starting a shell;
* ``runbook_engine.processes.run_in_process_group`` (a child in a new session, waited for in a worker thread, with
  both output pipes drained), N times: what the action uses to start the shell;
* the same runbook with ``aws:sleep PT0S`` steps: the engine's own cost of a durable step.

    python benchmarks/shell_steps.py [--steps 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
from engine_overhead import sleep_runbook
from engine_run import EngineRun, children_cpu_seconds, load_average, run_engine

from runbook_engine.processes import run_in_process_group

TARGET_MS = 3.0


def shell_runbook(steps: int) -> str:
    lines = ["schemaVersion: '0.3'", "description: shell step benchmark", "mainSteps:"]
    for n in range(steps):
        lines += [
            f"  - name: step{n}",
            "    action: aws:runShellScript",
            "    inputs:",
            "      Commands:",
            "        - 'true'",
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Spawns:
    wall_ms: float  # per spawn
    cpu_ms: float  # per spawn, this process and the shells


def _cpu() -> float:
    return time.process_time() + children_cpu_seconds()


def bare_spawns(count: int) -> Spawns:
    """``subprocess.run`` of ``/bin/sh -c true`` with captured output, ``count`` times."""
    started, cpu = time.perf_counter(), _cpu()
    for _ in range(count):
        subprocess.run(["/bin/sh", "-c", "true"], capture_output=True, check=True)
    return Spawns((time.perf_counter() - started) * 1000 / count, (_cpu() - cpu) * 1000 / count)


def async_spawns(count: int) -> Spawns:
    """``run_in_process_group(["/bin/sh", "-c", "true"])``, ``count`` times in one loop."""

    async def main() -> Spawns:
        started, cpu = time.perf_counter(), _cpu()
        for _ in range(count):
            outcome = await run_in_process_group(["/bin/sh", "-c", "true"])
            assert outcome.exit_code == 0
        wall = (time.perf_counter() - started) * 1000 / count
        return Spawns(wall, (_cpu() - cpu) * 1000 / count)

    return anyio.run(main)


def engine_runs(document: Path, tmp: Path, steps: int, repeat: int) -> list[EngineRun]:
    return [run_engine(document, tmp / f"{document.stem}-{n}.db", steps) for n in range(repeat)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (best is reported)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shell-steps-") as tmp_name:
        tmp = Path(tmp_name)
        shell_doc = tmp / "shell-steps.yaml"
        shell_doc.write_text(shell_runbook(args.steps), encoding="utf-8")
        sleep_doc = tmp / "noop-steps.yaml"
        sleep_doc.write_text(sleep_runbook(args.steps), encoding="utf-8")
        shell = engine_runs(shell_doc, tmp, args.steps, args.repeat)
        noop = engine_runs(sleep_doc, tmp, args.steps, args.repeat)
    bare = [bare_spawns(args.steps) for _ in range(args.repeat)]
    asyncio_ = [async_spawns(args.steps) for _ in range(args.repeat)]

    shell_ms = min(r.ms_per_step for r in shell)
    print(
        f"{args.steps} steps of aws:runShellScript 'true' on the local host, SQLite file "
        f"(best of {args.repeat}; load average {load_average()})"
    )
    print(f"  {'':<40} {'wall ms/step':>12} {'(median)':>9} {'CPU ms/step':>12}")
    rows = [
        (
            "runbook-engine, runShellScript step",
            [r.ms_per_step for r in shell],
            min(r.cpu_with_children_ms_per_step for r in shell),
        ),
        (
            "floor: subprocess.run /bin/sh -c true",
            [s.wall_ms for s in bare],
            min(s.cpu_ms for s in bare),
        ),
        (
            "floor: run_in_process_group",
            [s.wall_ms for s in asyncio_],
            min(s.cpu_ms for s in asyncio_),
        ),
        (
            "engine: aws:sleep PT0S step (durable)",
            [r.ms_per_step for r in noop],
            min(r.cpu_with_children_ms_per_step for r in noop),
        ),
    ]
    for label, walls, cpu in rows:
        print(f"  {label:<40} {min(walls):12.3f} {statistics.median(walls):9.3f} {cpu:12.3f}")
    rest = rows[0][2] - rows[2][2] - rows[3][2]
    print(
        f"  CPU of a shell step - asyncio spawn - no-op step = {rest:.3f} ms "
        "(script file, output handling, the rest of the action)"
    )
    print(
        f"  shell step / bare spawn = {shell_ms / min(s.wall_ms for s in bare):.1f}x; "
        f"target < {TARGET_MS:g} ms/step: {'met' if shell_ms < TARGET_MS else 'NOT met'}"
    )
    print(f"  peak RSS of the shell run: {min(r.peak_rss_mb for r in shell):.1f} MB")
    print("  CPU: user + system of the measuring process and of the shells it started")


if __name__ == "__main__":
    main()
