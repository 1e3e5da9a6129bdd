"""Real ``runbook`` processes for the crash tests: start them, kill them, read what they left.

Every command runs the console script of the test interpreter's environment as its own
OS process, against a SQLite file of its own workspace. ``kill_after`` sets
``RUNBOOK_KILL_AFTER_WRITES`` (runbook_engine.testing): the process SIGKILLs itself
right after that many committed store writes. Side effects are lines that the test
runbooks' shell steps append to the workspace's ``effects`` file, one per run of a
command, so counting lines counts side effects.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import anyio

from runbook_engine.engine import Engine
from runbook_engine.errors import StoreError
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.status import Status
from runbook_engine.store import open_store
from runbook_engine.testing import KILL_AFTER_WRITES_ENV

RUNBOOK = Path(sys.executable).parent / "runbook"  # the installed console script
CRASH_RUNBOOKS = Path(__file__).parent / "fixtures" / "crash"
KILLED = -9  # Popen.returncode of a process that died of SIGKILL
SHELL = "aws:runShellScript"  # the one non-idempotent action the crash runbooks use
COMMAND_TIMEOUT = 60.0


@dataclass(frozen=True)
class Finished:
    """A ``runbook`` process that has ended: its exit code (-9: killed) and output."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == KILLED


@dataclass(frozen=True)
class StepState:
    """One step execution as the store holds it, in comparable form."""

    execution: str  # document name of the execution it belongs to
    key: str  # step name, ":<iterator value>" inside a loop: the name of its side effect
    action: str
    status: Status
    attempt: int
    parked: bool
    step_execution_id: str
    failure_message: str | None
    start_time: datetime | None
    end_time: datetime | None

    @property
    def in_flight(self) -> bool:
        """Running an action when its process died (not parked on a timer, signal or child)."""
        return not self.status.terminal and not self.parked


@dataclass(frozen=True)
class Snapshot:
    """Executions and step executions of a workspace's store, top-level execution first."""

    executions: tuple[ExecutionRecord, ...]
    steps: tuple[StepState, ...]
    taken: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def top(self) -> ExecutionRecord:
        return self.executions[0]

    @property
    def signature(self) -> tuple[object, ...]:
        """What distinguishes one kill point from another: every status there is."""
        return (
            tuple((e.document_name, e.status) for e in self.executions),
            tuple((s.execution, s.key, s.status, s.attempt, s.parked) for s in self.steps),
        )

    def outcome(self) -> tuple[object, ...]:
        """What an uninterrupted run and a crashed-and-resumed one must agree on."""
        return (
            tuple(
                (e.document_name, e.status, e.failure_message, dict(e.outputs))
                for e in self.executions
            ),
            tuple((s.execution, s.key, s.status) for s in self.steps),
        )

    def step(self, key: str) -> StepState:
        [state] = [s for s in self.steps if s.key == key]
        return state


class Workspace:
    """A directory with a state database and an effects file, and the commands run on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.state = f"sqlite:///{root / 'state.db'}"
        self.effects = root / "effects"
        self.commands: list[Finished] = []

    def environment(self, kill_after: int | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
        env["XDG_STATE_HOME"] = str(self.root / "xdg-state")
        env["XDG_CONFIG_HOME"] = str(self.root / "xdg-config")
        if kill_after is not None:
            env[KILL_AFTER_WRITES_ENV] = str(kill_after)
        return env

    def argv(self, args: Sequence[str]) -> list[str]:
        return [str(RUNBOOK), *args, "--state", self.state]

    def cli(self, *args: str, kill_after: int | None = None) -> Finished:
        """Run one command to its end (or its death) and keep what it printed."""
        result = subprocess.run(
            self.argv(args),
            env=self.environment(kill_after),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        done = Finished(tuple(args), result.returncode, result.stdout, result.stderr)
        self.commands.append(done)
        return done

    def cli_noting_start(self, *args: str) -> tuple[Finished, datetime]:
        """Run a command that shows progress; also return when it printed its first line
        (``Execution ID of NAME``), that is when it had started up and read the store."""
        process = self.start(*args)
        assert process.stderr is not None
        first = process.stderr.readline()
        ready = datetime.now(UTC)
        stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
        done = Finished(tuple(args), process.returncode, stdout, first + stderr)
        self.commands.append(done)
        return done, ready

    def start(self, *args: str, **popen: object) -> subprocess.Popen[str]:
        """Start a command without waiting (for tests that kill it at a moment of their own)."""
        return subprocess.Popen(  # type: ignore[call-overload]
            self.argv(args),
            env=self.environment(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **popen,
        )

    def approve(self, execution_id: str) -> None:
        """Send an Approve signal as the OS user (through the library: no process needed)."""
        anyio.run(self._approve, execution_id)

    async def _approve(self, execution_id: str) -> None:
        async with Engine(self.state) as engine:
            await engine.signal(execution_id, "Approve")

    def effect_counts(self) -> Counter[str]:
        if not self.effects.exists():
            return Counter()
        return Counter(self.effects.read_text().split())

    def snapshot(self) -> Snapshot:
        return anyio.run(self._snapshot)

    async def _snapshot(self) -> Snapshot:
        store = open_store(self.state)
        try:
            everything = await store.list_executions(limit=1000)
            top = [e for e in everything if e.parent_execution_id is None]
            children = [e for e in everything if e.parent_execution_id is not None]
            executions = [*top, *reversed(children)]  # oldest child first
            steps: list[StepState] = []
            for execution in executions:
                records = await store.get_steps(execution.execution_id)
                steps += [step_state(execution, r) for r in records]
        finally:
            await store.close()
        return Snapshot(tuple(executions), tuple(steps))

    def wait_for(
        self, condition: str, test: Callable[[Snapshot], bool], timeout: float = 30.0
    ) -> Snapshot:
        """Poll the store (every 0.1 s) until ``test(snapshot)`` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.root / "state.db").exists():
                try:
                    snapshot = self.snapshot()
                except StoreError:  # the process is still creating its tables
                    snapshot = None
                if snapshot is not None and snapshot.executions and test(snapshot):
                    return snapshot
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {condition}")


def step_state(execution: ExecutionRecord, record: StepRecord) -> StepState:
    key = record.step_name
    if record.loop is not None:
        key += f":{record.loop.iterator_value}"
    return StepState(
        execution=execution.document_name,
        key=key,
        action=record.action,
        status=record.status,
        attempt=record.attempt,
        parked=bool(record.wake_at or record.waiting_for or record.child_execution_id),
        step_execution_id=record.step_execution_id,
        failure_message=record.failure_message,
        start_time=record.start_time,
        end_time=record.end_time,
    )


def parameters(values: Mapping[str, str]) -> list[str]:
    return [arg for name, value in values.items() for arg in ("-p", f"{name}={value}")]


def announced_retry(finished: Finished, state: StepState) -> bool:
    """Did this process say, in its progress lines, that it retried an interrupted attempt?"""
    wanted = f"{state.key.split(':')[0]} ({state.action}) attempt {state.attempt + 1} after: "
    return any(
        line.startswith(wanted) and "interrupted" in line for line in finished.stderr.splitlines()
    )
