"""Who may resume an execution: leases, a crashed owner, two processes racing.

A process runs an execution while it holds the execution's lease (``store.claim``,
renewed by a heartbeat). After a ``kill -9`` the lease stays in the store until it
expires (``Settings.lease_seconds``, 30 s by default); on the same host the engine sees
from the owner string (``host:pid:nonce``) that the holder is gone and takes over at
once, so ``runbook resume`` works right after a crash. A lease held by a live process,
or by a process of another host, is respected until it expires.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest

from runbook_engine import Engine
from runbook_engine.errors import ExecutionClaimed
from runbook_engine.leases import owner_process_gone
from runbook_engine.settings import Settings
from runbook_engine.status import Status
from tests.runbook_processes import CRASH_RUNBOOKS, Workspace, parameters

HOST = socket.gethostname()
EXIT_USAGE = 2


def owner(pid: int, host: str = HOST) -> str:
    return f"{host}:{pid}:0123abcd"


def zombie_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_owner_process_gone_tells_dead_from_live_and_unknown() -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    assert owner_process_gone(owner(finished.pid))
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert not owner_process_gone(owner(sleeper.pid))
        # Another host's process cannot be checked from here: alive until its lease ends.
        assert not owner_process_gone(owner(finished.pid, "elsewhere.invalid"))
        assert not owner_process_gone(owner(os.getpid()))
        assert not owner_process_gone("not an owner string")
        assert not owner_process_gone(f"{HOST}:notapid:0123abcd")
        # Killed but not yet reaped by its parent (us): a zombie runs nothing.
        sleeper.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while zombie_state(sleeper.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert zombie_state(sleeper.pid) == "Z"
        assert owner_process_gone(owner(sleeper.pid))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert owner_process_gone(owner(sleeper.pid))


SHORT = """
schemaVersion: '0.3'
mainSteps:
  - {name: only, action: aws:sleep, inputs: {Duration: PT0S}}
"""


def claimed_by(tmp_path: Path, holder: str, lease_seconds: float) -> tuple[str, str]:
    """An execution whose lease ``holder`` took (as a process that then died would leave it)."""
    document = tmp_path / "short.yaml"
    document.write_text(SHORT)
    state = f"sqlite:///{tmp_path / 'state.db'}"

    async def main() -> str:
        async with Engine(state) as engine:
            execution_id = await engine.start(str(document))
            assert await engine.store.claim(execution_id, holder, lease_seconds) is not None
            return execution_id

    return state, anyio.run(main)


def resume(state: str, execution_id: str) -> Status:
    async def main() -> Status:
        async with Engine(state, settings=Settings(poll_interval=0.05)) as engine:
            return (await engine.resume(execution_id)).status

    return anyio.run(main)


def test_the_lease_of_a_dead_process_is_taken_over_at_once(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    state, execution_id = claimed_by(tmp_path, owner(gone.pid), lease_seconds=3600)
    assert resume(state, execution_id) == Status.SUCCESS


def test_a_live_lease_is_respected_until_it_expires(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        state, execution_id = claimed_by(tmp_path, owner(sleeper.pid), lease_seconds=3600)
        with pytest.raises(ExecutionClaimed, match="being run by another process"):
            resume(state, execution_id)
    finally:
        sleeper.kill()
        sleeper.wait()
    # Now the holder is dead: the same lease is no obstacle any more.
    assert resume(state, execution_id) == Status.SUCCESS


def test_a_lease_from_another_host_blocks_until_it_expires(tmp_path: Path) -> None:
    lease = 1.0
    state, execution_id = claimed_by(tmp_path, owner(1, "elsewhere.invalid"), lease)
    started = time.monotonic()
    with pytest.raises(ExecutionClaimed, match="being run by another process"):
        resume(state, execution_id)
    time.sleep(max(0.0, lease + 0.1 - (time.monotonic() - started)))
    assert resume(state, execution_id) == Status.SUCCESS


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def test_two_resumes_race_and_exactly_one_runs_the_execution(workspace: Workspace) -> None:
    go = workspace.root / "go"
    killed = workspace.cli(
        "run",
        str(CRASH_RUNBOOKS / "crash-race.yaml"),
        *parameters({"Effects": str(workspace.effects), "Go": str(go)}),
        # create, InProgress, `before` written ahead, `before` Success with `hold` written
        # ahead: the resume makes hold's second attempt (its first never began)
        kill_after=4,
    )
    assert killed.killed
    crashed = workspace.snapshot()
    assert crashed.top.owner is not None  # the dead process's lease is still there
    execution_id = crashed.top.execution_id
    racers = [workspace.start("resume", execution_id) for _ in range(2)]
    try:
        # The winner holds on in step `hold` until `go` exists: the loser meets its lease.
        finished: dict[int, tuple[int, str]] = {}
        deadline = time.monotonic() + 60
        while not finished and time.monotonic() < deadline:
            for index, racer in enumerate(racers):
                if racer.poll() is not None:
                    _, stderr = racer.communicate()
                    finished[index] = (racer.returncode, stderr)
            time.sleep(0.05)
        assert finished, "neither resume ended"
        [(loser, (code, stderr))] = finished.items()
        assert code == EXIT_USAGE, stderr
        assert "being run by another process" in stderr
        go.touch()
        winner = racers[1 - loser]
        _, stderr = winner.communicate(timeout=60)
        assert winner.returncode == 0, stderr
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    done = workspace.snapshot()
    assert done.top.status == Status.SUCCESS
    assert done.top.owner is None  # released
    assert workspace.effect_counts() == Counter({"before": 1, "hold": 1, "after": 1})
