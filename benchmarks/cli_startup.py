"""Start-up of the ``runbook`` command: a no-op ``runbook run`` (one ``aws:sleep PT0S``).

What every ``runbook run`` pays before its first step does anything: the interpreter,
the imports, reading and validating the document, opening the SQLite state file (made
by an untimed first run) and writing the execution. Side by side, in the same run:

* ``python -c pass`` (the interpreter alone),
* ``runbook --version`` (the command group's imports),
* ``runbook run noop.yaml --output json``.

Every process runs with the environment of ``_cli_env.py``: bytecode written by the
untimed first run under the temporary root and read by the timed ones, as an installed
engine does. Figures are wall time and CPU time (user + system, from ``wait4``) of each
process, best and median of ``--repeat``; ``--baseline-source DIR`` runs another source
tree (``git archive`` of an older commit) interleaved with the current one.

    python benchmarks/cli_startup.py [--repeat 10] [--baseline-source DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _cli_env import cli_env

RUNBOOK = Path(sys.executable).parent / "runbook"
DOCUMENT = """\
schemaVersion: '0.3'
mainSteps:
  - name: nap
    action: aws:sleep
    inputs:
      Duration: PT0S
"""


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one process."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise SystemExit(f"{argv} failed ({code}):\n{err.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def summary(name: str, runs: list[tuple[float, float]]) -> str:
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    return (
        f"{name:34s} wall best {min(walls) * 1000:6.0f} ms  median "
        f"{statistics.median(walls) * 1000:6.0f} ms   CPU best {min(cpus) * 1000:6.0f} ms"
        f"  median {statistics.median(cpus) * 1000:6.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--baseline-source", metavar="DIR")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as scratch:
        root = Path(scratch)
        document = root / "noop.yaml"
        document.write_text(DOCUMENT)
        env = cli_env(root)
        env.pop("RUNBOOK_STATE_URL", None)
        run = [str(RUNBOOK), "run", str(document), "--output", "json", "--state"]
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            "runbook --version": ([str(RUNBOOK), "--version"], env),
            "runbook run (no-op)": ([*run, f"sqlite:///{root / 'state.db'}"], env),
        }
        if args.baseline_source:
            baseline_env = {**env, "PYTHONPATH": args.baseline_source}
            commands["  the same, --baseline-source"] = (
                [*run, f"sqlite:///{root / 'baseline.db'}"],
                baseline_env,
            )
        for argv, command_env in commands.values():  # untimed: bytecode and state files
            timed(argv, command_env)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, (argv, command_env) in commands.items():
                results[name].append(timed(argv, command_env))
    print(f"{args.repeat} runs each, interleaved (load average {os.getloadavg()[0]:.2f} after)")
    for name, runs in results.items():
        print(summary(name, runs))


if __name__ == "__main__":
    main()
