"""A shell step whose engine was killed leaves its shell running (the shell has a session
of its own). The resume of the interrupted step finds it by the step execution's mark in
its environment and kills it, with everything it started, before it records the step."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio

from runbook_engine.processes import STEP_MARK
from runbook_engine.records import StepRecord
from runbook_engine.status import Status
from runbook_engine.store import open_store
from tests.runbook_processes import Workspace

LONG_SHELL = """
schemaVersion: '0.3'
mainSteps:
  - name: work
    action: aws:runShellScript
    inputs:
      Commands:
        - echo $$ > {pid}
        - sleep 120 &
        - echo $! > {sleeper}
        - wait
        - echo late >> {effects}
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; nobody may have reaped it yet


def wait_for_file(path: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} was never written")


def test_resume_kills_what_the_crashed_attempt_left_running(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    pid_file, sleeper_file = tmp_path / "pid", tmp_path / "sleeper"
    document = tmp_path / "long.yaml"
    document.write_text(
        LONG_SHELL.format(pid=pid_file, sleeper=sleeper_file, effects=workspace.effects)
    )
    runner = workspace.start("run", str(document))
    try:
        shell = int(wait_for_file(pid_file))
        sleeper = int(wait_for_file(sleeper_file))
        marks = Path(f"/proc/{sleeper}/environ").read_bytes().split(b"\0")
        assert any(m.startswith(f"{STEP_MARK}=".encode()) for m in marks)
    finally:
        runner.kill()
        runner.wait(timeout=30)
    time.sleep(0.2)
    assert alive(shell) and alive(sleeper)  # they outlived the engine that started them
    [execution] = workspace.snapshot().executions
    try:
        resumed = workspace.cli("resume", execution.execution_id)
        assert resumed.returncode != 0, resumed.stderr  # the step failed as interrupted
        assert not alive(shell) and not alive(sleeper)
        step = anyio.run(_step, workspace.state, execution.execution_id)
        assert step.status == Status.FAILED
        assert "interrupted" in (step.failure_message or "")
        assert "the processes it left running were killed" in (step.failure_message or "")
        assert not workspace.effects.exists()  # the old attempt never got to its effect
    finally:
        for pid in (shell, sleeper):
            if alive(pid):
                os.kill(pid, 9)


async def _step(state: str, execution_id: str) -> StepRecord:
    store = open_store(state)
    try:
        [step] = await store.get_steps(execution_id)
        return step
    finally:
        await store.close()
