"""Engine overhead: a runbook of N no-op steps (``aws:sleep PT0S``), every step durable.

Each step is one SQLite commit: its write-ahead ``InProgress`` record, in the same
transaction as the final record of the step before and the execution record. The runbook
is generated in a temporary directory and run through the library ``Engine`` on a fresh
SQLite file, in a subprocess of its own (``engine_run.py``) so that its peak memory is
its own.

The peer, side by side in the same run: a Prefect 3 flow of N no-op tasks
(``prefect_flow.py``, its default ephemeral local server and SQLite), run with an
interpreter that has Prefect (``--prefect-python``, default ``$PREFECT_PYTHON``; without
one the Prefect column is skipped with a note). Prefect does not persist a task's result
by default; a runbook-engine step is committed before it runs, and its result with the
next commit.

    python benchmarks/engine_overhead.py [--steps 1000] [--repeat 3] [--prefect-python PATH]
    python benchmarks/engine_overhead.py --profile /tmp/engine.prof   # cProfile one run

Figures: steps/s and ms/step of ``Engine.run`` (best of ``--repeat`` runs, median too),
the whole process wall time (interpreter start, imports, store creation, run, exit),
peak RSS; Prefect's ms/task inside the flow and end to end; the ratio of Prefect's
in-flow ms/task to the engine's ms/step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from engine_run import EngineRun, load_average, run_engine

HERE = Path(__file__).resolve().parent
TARGET_STEPS_PER_SECOND = 1000
TARGET_RATIO = 4.0


def sleep_runbook(steps: int) -> str:
    lines = ["schemaVersion: '0.3'", "description: engine overhead benchmark", "mainSteps:"]
    for n in range(steps):
        lines += [
            f"  - name: step{n}",
            "    action: aws:sleep",
            "    inputs:",
            "      Duration: PT0S",
        ]
    return "\n".join(lines) + "\n"


def run_prefect(python: str, steps: int) -> dict[str, float]:
    """One Prefect flow of ``steps`` no-op tasks in a fresh interpreter and PREFECT_HOME."""
    with tempfile.TemporaryDirectory(prefix="prefect-bench-") as home:
        env = {
            **os.environ,
            "PREFECT_HOME": home,
            # its server starts in a subprocess; on a busy machine 20 s is not always enough
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        }
        started = time.perf_counter()
        done = subprocess.run(
            [python, str(HERE / "prefect_flow.py"), str(steps)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        process_seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"Prefect flow failed ({done.returncode}):\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "in_flow_ms": data["in_flow_seconds"] * 1000 / steps,
        "end_to_end_ms": data["end_to_end_seconds"] * 1000 / steps,
        "process_seconds": process_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="engine runs (best is reported)")
    parser.add_argument(
        "--prefect-python",
        default=os.environ.get("PREFECT_PYTHON"),
        help="an interpreter with Prefect 3 installed (default: $PREFECT_PYTHON)",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="write cProfile stats of one run here"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="engine-overhead-") as tmp:
        document = Path(tmp) / "noop-steps.yaml"
        document.write_text(sleep_runbook(args.steps), encoding="utf-8")
        if args.profile is not None:
            run = run_engine(document, Path(tmp) / "profile.db", args.steps, args.profile)
            print(f"profiled one run ({run.ms_per_step:.3f} ms/step under cProfile)")
            print(f"  python -m pstats {args.profile}   # then: sort tottime / stats 30")
            return
        runs: list[EngineRun] = []
        for n in range(args.repeat):
            runs.append(run_engine(document, Path(tmp) / f"state-{n}.db", args.steps))

    best = min(runs, key=lambda r: r.run_seconds)
    median_ms = statistics.median(r.ms_per_step for r in runs)
    print(
        f"runbook-engine: {args.steps} x aws:sleep PT0S, SQLite file, "
        f"1 commit per step (load average {load_average()})"
    )
    print(
        f"  Engine.run          {best.steps_per_second:8.0f} steps/s   "
        f"{best.ms_per_step:.3f} ms/step (best of {len(runs)}; median {median_ms:.3f} ms/step)"
    )
    cpu_best = min(runs, key=lambda r: r.run_cpu_seconds)
    print(
        f"  CPU time            {1000 / cpu_best.cpu_ms_per_step:8.0f} steps/s   "
        f"{cpu_best.cpu_ms_per_step:.3f} ms/step (user + system CPU of Engine.run, best of "
        f"{len(runs)}: moves less than the wall time when other work shares the cores)"
    )
    print(
        f"    of which          {best.start_seconds:8.3f} s      Engine.start (read, parse, check "
        f"the document, create the execution); {best.drive_ms_per_step:.3f} ms/step for the rest "
        "(Engine.wait: drive, read back)"
    )
    print(
        f"  whole process       {best.process_seconds:8.2f} s      "
        f"(interpreter start, imports, store creation {best.open_seconds:.3f} s, run, exit)"
    )
    print(
        f"  memory              {best.peak_rss_mb:8.1f} MB peak RSS "
        f"({best.rss_after_import_mb:.1f} MB after imports, "
        f"+{best.peak_rss_mb - best.rss_after_import_mb:.1f} MB for the run)"
    )
    verdict = "met" if best.steps_per_second >= TARGET_STEPS_PER_SECOND else "NOT met"
    print(f"  target >= {TARGET_STEPS_PER_SECOND} steps/s: {verdict}")

    if not args.prefect_python:
        print(
            "Prefect: skipped (no --prefect-python and no $PREFECT_PYTHON); "
            "pass an interpreter that has Prefect 3 installed to compare"
        )
        return
    prefect = run_prefect(args.prefect_python, args.steps)
    ratio = prefect["in_flow_ms"] / best.ms_per_step
    print(
        f"Prefect 3: flow of {args.steps} no-op tasks, ephemeral local server, SQLite "
        f"(load average {load_average()})"
    )
    print(f"  in the flow         {prefect['in_flow_ms']:.3f} ms/task")
    print(f"  end to end          {prefect['end_to_end_ms']:.3f} ms/task (flow call)")
    print(f"  whole process       {prefect['process_seconds']:8.2f} s")
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(
        f"ratio: Prefect in-flow ms/task / runbook-engine ms/step = {ratio:.1f}x "
        f"(target >= {TARGET_RATIO:g}x: {verdict}); end to end "
        f"{prefect['end_to_end_ms'] / best.ms_per_step:.1f}x"
    )


if __name__ == "__main__":
    main()
