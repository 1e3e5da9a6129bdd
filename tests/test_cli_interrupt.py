"""Ctrl-C during ``runbook run``: the execution is cancelled cleanly.

As in a terminal, SIGINT goes to the command's whole process group; the shell step runs
in a session of its own (so that the engine decides what happens to it), and the engine
answers the first Ctrl-C with a Cancel: the running step is stopped and its processes
killed, the step's onCancel workflow runs, the execution ends Cancelled, exit code 1.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

from runbook_engine.status import Status
from tests.runbook_processes import CRASH_RUNBOOKS, Workspace, parameters

EXIT_FAILED = 1


def wait_for_file(path: Path, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def group_members(pgid: int) -> list[int]:
    """Processes of a process group that still run (zombies, waiting to be reaped by
    init after their parent died, run nothing)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def settled_members(pgid: int, timeout: float = 5.0) -> list[int]:
    """Members left once SIGKILLs sent just now have landed."""
    deadline = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return group_members(pgid)


def test_ctrl_c_cancels_runs_on_cancel_and_leaves_no_process(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    pid_file = tmp_path / "long.pid"
    run = workspace.start(
        "run",
        str(CRASH_RUNBOOKS / "ctrl-c.yaml"),
        *parameters({"Effects": str(workspace.effects), "PidFile": str(pid_file)}),
        "--output",
        "json",
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    try:
        shell = int(wait_for_file(pid_file))  # the step's shell: leader of its own group
        assert group_members(shell)
        os.killpg(run.pid, signal.SIGINT)
        stdout, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == EXIT_FAILED, stderr
    assert "Cancelling" in stderr
    shown = json.loads(stdout)
    assert shown["AutomationExecutionStatus"] == Status.CANCELLED.value
    steps = {s["StepName"]: s["StepStatus"] for s in shown["StepExecutions"]}
    assert steps == {"long": "Cancelled", "cleanup": "Success"}
    assert workspace.effect_counts() == Counter({"cleanup": 1})
    assert settled_members(shell) == []  # `sleep 60` and its shell died with the step
    stored = workspace.snapshot()
    assert stored.top.status == Status.CANCELLED
    assert stored.top.owner is None  # the lease was given back
