"""Resume latency: from ``runbook resume ID`` to the next step starting, after a ``kill -9``.

Two crashes of a real ``runbook run`` (the installed command, a SQLite file):

- *between steps*: the run SIGKILLs itself right after the commit that records step
  ``first``'s ``Success`` together with ``second``'s write-ahead record
  (``RUNBOOK_KILL_AFTER_WRITES``; a step transition is one commit): ``second``'s action
  had not begun, the resume records that attempt as interrupted and starts attempt 2
  (``maxAttempts: 2``);
- *mid-step*: the benchmark SIGKILLs the run (and the step's orphaned shell) while the
  non-idempotent step ``first`` runs; the resume records the attempt as interrupted and
  starts attempt 2 (``maxAttempts: 2``): that is the next step starting.

The clock starts just before ``runbook resume`` is spawned and stops when the next
attempt's shell command writes its timestamp, first thing (the action really runs; the
record's ``start_time`` is the first attempt's in both cases). Both clocks are this
host's.

The crashed process's lease is still in the store (owner ``host:pid:nonce``, 30 s by
default); the resume sees that the pid is gone and takes over at once. The figure a
resume would wait without that, the lease time left at the kill, is printed beside it,
with the floors every ``runbook`` command pays: interpreter start, ``runbook --version``
(the command's own imports) and ``runbook get ID`` (imports, opening the store, a read).

Every spawned process gets the environment of ``_cli_env.py`` (bytecode written under
the temporary root by an untimed first crash and resume, then read, as an installed
engine reads its own).

    python benchmarks/resume_latency.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import anyio
from _cli_env import cli_env

from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.store import open_store
from runbook_engine.testing import KILL_AFTER_WRITES_ENV

RUNBOOK = Path(sys.executable).parent / "runbook"
KILL_AFTER_FIRST_STEP = 4  # create, InProgress, first ahead, first Success with second ahead

DOCUMENT = """\
schemaVersion: '0.3'
parameters:
  Dir: {type: String}
mainSteps:
  - name: first
    action: aws:runShellScript
    maxAttempts: 2
    inputs:
      Commands:
        - date +%s.%N > "{{ Dir }}/first-started"
        - echo $$ > "{{ Dir }}/first-pid"
        - if [ -e "{{ Dir }}/hang" ]; then rm "{{ Dir }}/hang"; sleep 60; fi
  - name: second
    action: aws:runShellScript
    maxAttempts: 2
    inputs:
      Commands:
        - date +%s.%N > "{{ Dir }}/second-started"
  - name: third
    action: aws:sleep
    inputs:
      Duration: PT0S
"""


class Crash:
    """One workspace: a runbook, a state file, the files the steps write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.document = root / "resume-bench.yaml"
        self.document.write_text(DOCUMENT)
        self.state = f"sqlite:///{root / 'state.db'}"

    def argv(self, *args: str) -> list[str]:
        return [str(RUNBOOK), *args, "--state", self.state]

    def env(self, kill_after: int | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
        env = cli_env(self.root.parent, base)  # one bytecode cache for every workspace
        if kill_after is not None:
            env[KILL_AFTER_WRITES_ENV] = str(kill_after)
        return env

    def run_argv(self) -> list[str]:
        return self.argv("run", str(self.document), "-p", f"Dir={self.root}", "--output", "json")

    def between_steps(self) -> str:
        run = subprocess.run(
            self.run_argv(), env=self.env(KILL_AFTER_FIRST_STEP), capture_output=True, check=False
        )
        assert run.returncode == -signal.SIGKILL, run
        return "second"

    def mid_step(self) -> str:
        (self.root / "hang").touch()
        run = subprocess.Popen(
            self.run_argv(), env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        pid_file = self.root / "first-pid"
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline, "the first step never started"
            time.sleep(0.01)
        while (self.root / "hang").exists():  # the step is in its `sleep 60` now
            time.sleep(0.01)
        run.send_signal(signal.SIGKILL)
        run.wait()
        # The step's shell has a session of its own and outlives the engine: end it too.
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass
        (self.root / "first-started").unlink()
        return "first"

    def read(self) -> tuple[ExecutionRecord, list[StepRecord]]:
        async def main() -> tuple[ExecutionRecord, list[StepRecord]]:
            store = open_store(self.state)
            try:
                [execution] = await store.list_executions(limit=1)
                return execution, await store.get_steps(execution.execution_id)
            finally:
                await store.close()

        return anyio.run(main)


def resume_once(root: Path, crash: Callable[[Crash], str]) -> dict[str, float]:
    """Crash a run, resume it; seconds from spawning the resume to the next step."""
    workspace = Crash(root)
    step = crash(workspace)
    execution, _ = workspace.read()
    killed_at = datetime.now(UTC)
    assert execution.owner is not None and execution.lease_expires is not None
    spawned = time.time()
    resume = subprocess.run(
        workspace.argv("resume", execution.execution_id, "--output", "json"),
        env=workspace.env(),
        capture_output=True,
        check=False,
    )
    assert resume.returncode == 0, resume.stderr.decode()
    _, steps = workspace.read()
    record = next(r for r in steps if r.step_name == step)
    assert record.start_time is not None and record.status.value == "Success"
    figures = {
        "command": float((root / f"{step}-started").read_text()) - spawned,
        "lease_left": (execution.lease_expires - killed_at).total_seconds(),
    }
    assert record.attempt == 2  # the same record (its start_time is attempt 1's)
    return figures


def floor(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="resume-bench-") as scratch:
        base = Path(scratch)
        results: dict[str, list[dict[str, float]]] = {"between steps": [], "mid-step": []}
        resume_once(base / "warm-up", Crash.between_steps)  # untimed: writes the bytecode
        for n in range(args.repeat):
            results["between steps"].append(resume_once(base / f"b{n}", Crash.between_steps))
            results["mid-step"].append(resume_once(base / f"m{n}", Crash.mid_step))
        sample = Crash(base / "floor")
        sample.between_steps()
        execution, _ = sample.read()
        env = sample.env()
        floors = {
            "python -c pass": [
                floor([sys.executable, "-c", "pass"], env) for _ in range(args.repeat)
            ],
            "runbook --version": [
                floor([str(RUNBOOK), "--version"], env) for _ in range(args.repeat)
            ],
            "runbook get ID": [
                floor(sample.argv("get", execution.execution_id), env) for _ in range(args.repeat)
            ],
        }

    def ms(values: list[float]) -> str:
        return (
            f"{statistics.median(values) * 1000:7.0f} {min(values) * 1000:7.0f} "
            f"{max(values) * 1000:7.0f}"
        )

    print(f"resume latency after kill -9, {args.repeat} runs each (ms: median, min, max)")
    width = 44
    for name, runs in results.items():
        label = f"{name}: attempt 2 running"
        print(f"{label:<{width}} {ms([r['command'] for r in runs])}")
    for name, values in floors.items():
        print(f"{'floor: ' + name:<{width}} {ms(values)}")
    leases = [r["lease_left"] for runs in results.values() for r in runs]
    print(
        f"{'without takeover: lease left at the kill':<{width}} {ms(leases)}"
        "   (resume refused until then)"
    )
    median_resume = statistics.median(r["command"] for r in results["between steps"])
    print(
        f"resume / runbook get: {median_resume / statistics.median(floors['runbook get ID']):.2f}x"
    )


if __name__ == "__main__":
    main()
