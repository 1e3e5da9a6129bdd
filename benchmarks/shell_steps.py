"""Shell steps: a runbook of N ``aws:runShellScript`` steps running ``true`` on this host.

Every step starts ``/bin/sh`` on a script file, collects its output and is committed
twice to SQLite. The runbook runs through the library ``Engine`` in a subprocess of its
own (``engine_run.py``). Side by side, in the same run, the floors it is made of:

* bare ``subprocess.run(["/bin/sh", "-c", "true"])``, N times: starting a shell;
* ``actions._process.run_in_process_group`` (asyncio subprocess in a new session, with
  both output pipes drained), N times: what the action uses to start the shell;
* the same runbook with ``aws:sleep PT0S`` steps: the engine's own cost of a durable step.

    python benchmarks/shell_steps.py [--steps 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from engine_overhead import sleep_runbook
from engine_run import EngineRun, load_average, run_engine

from actions._process import run_in_process_group

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


def bare_spawns(count: int) -> float:
    """Milliseconds per ``subprocess.run`` of ``/bin/sh -c true`` with captured output."""
    started = time.perf_counter()
    for _ in range(count):
        subprocess.run(["/bin/sh", "-c", "true"], capture_output=True, check=True)
    return (time.perf_counter() - started) * 1000 / count


def async_spawns(count: int) -> float:
    """Milliseconds per ``run_in_process_group(["/bin/sh", "-c", "true"])`` in one loop."""

    async def main() -> float:
        started = time.perf_counter()
        for _ in range(count):
            outcome = await run_in_process_group(["/bin/sh", "-c", "true"])
            assert outcome.exit_code == 0
        return (time.perf_counter() - started) * 1000 / count

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
    noop_ms = min(r.ms_per_step for r in noop)
    print(
        f"{args.steps} steps of aws:runShellScript 'true' on the local host, SQLite file "
        f"(best of {args.repeat}; load average {load_average()})"
    )
    rows = [
        ("runbook-engine, runShellScript step", shell_ms, [r.ms_per_step for r in shell]),
        ("floor: subprocess.run /bin/sh -c true", min(bare), bare),
        ("floor: run_in_process_group (asyncio)", min(asyncio_), asyncio_),
        ("engine: aws:sleep PT0S step (durable)", noop_ms, [r.ms_per_step for r in noop]),
    ]
    for label, best, all_runs in rows:
        print(f"  {label:<40} {best:7.3f} ms/step (median {statistics.median(all_runs):.3f})")
    rest = shell_ms - min(asyncio_) - noop_ms
    print(
        f"  shell step - asyncio spawn - no-op step = {rest:.3f} ms/step "
        "(script file, temporary directory, output handling)"
    )
    print(
        f"  shell step / bare spawn = {shell_ms / min(bare):.1f}x; "
        f"target < {TARGET_MS:g} ms/step: {'met' if shell_ms < TARGET_MS else 'NOT met'}"
    )
    print(f"  peak RSS of the shell run: {min(r.peak_rss_mb for r in shell):.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
