"""Before/after: the engine of this checkout against the one of an earlier git revision.

On a machine shared with other work, two runs minutes apart differ more than most
changes do. This runs the same generated runbook alternately with the revision's
``runbook_engine`` and ``actions`` (extracted with ``git archive`` and put first on
``PYTHONPATH``) and with the checkout's, ``--pairs`` times, so both see the same load,
and prints best and median wall and CPU time per step for each. Both run from bytecode
(the environment of ``_cli_env.py``; the first pair writes it).

    python benchmarks/compare_revision.py 907cb73 [--workload sleep|shell] [--steps N] [--pairs 6]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from _cli_env import cli_env
from engine_overhead import sleep_runbook
from engine_run import HERE, load_average
from shell_steps import shell_runbook

ROOT = HERE.parent.parent
WORKLOADS = {"sleep": (sleep_runbook, 1000), "shell": (shell_runbook, 200)}


def extract(revision: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "runbook_engine", "actions"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def one_run(document: Path, db: Path, pythonpath: str | None) -> dict[str, float]:
    env = cli_env(db.parent, {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [sys.executable, str(HERE), str(document), str(db)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare against")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="sleep")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--pairs", type=int, default=6)
    args = parser.parse_args()
    make, default_steps = WORKLOADS[args.workload]
    steps = args.steps or default_steps

    results: dict[str, list[dict[str, float]]] = {args.revision: [], "checkout": []}
    with tempfile.TemporaryDirectory(prefix="compare-revision-") as tmp_name:
        tmp = Path(tmp_name)
        before = tmp / "before"
        before.mkdir()
        extract(args.revision, before)
        document = tmp / f"{args.workload}.yaml"
        document.write_text(make(steps), encoding="utf-8")
        for n in range(args.pairs):
            for label, path in ((args.revision, str(before)), ("checkout", None)):
                results[label].append(one_run(document, tmp / f"{n}-{len(label)}.db", path))

    print(
        f"{steps} x {args.workload} steps, {args.pairs} alternating pairs "
        f"(load average {load_average()})"
    )
    print(f"  {'':<12} {'wall ms/step':>22} {'CPU ms/step':>22}")
    print(f"  {'':<12} {'best':>10} {'median':>11} {'best':>10} {'median':>11}")
    for label, runs in results.items():
        wall = [r["run_seconds"] * 1000 / steps for r in runs]
        cpu = [(r["run_cpu_seconds"] + r["children_cpu_seconds"]) * 1000 / steps for r in runs]
        print(
            f"  {label:<12} {min(wall):10.3f} {statistics.median(wall):11.3f} "
            f"{min(cpu):10.3f} {statistics.median(cpu):11.3f}"
        )


if __name__ == "__main__":
    main()
