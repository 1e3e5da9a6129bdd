"""Run a local child process that dies with the step: timeout and cancellation kill its
whole process group.

The scheduler wraps ``run()`` in a timeout/cancel scope; a child that outlived it would
keep changing the machine after the step was recorded as finished. So every child
starts in a session of its own (``setsid``), and when the wait is cut short, by our own
``time_limit`` or by cancellation from outside, the whole group gets ``SIGKILL`` and is
reaped before the cancellation goes on.

A child that ends normally is not touched further unless ``kill_leftovers`` asks for
it: a shell step may start a daemon on purpose (``nohup server >log 2>&1 &``), as
Run Command allows. A background process that keeps the output pipes open makes the
step wait for it, as on AWS, until a timeout ends it.

A child started while a step runs (``running_step``) carries the step execution's id in
its environment (``RUNBOOK_STEP_EXECUTION_ID``), and so does all it starts. If this
process dies (``kill -9``, a crash), its children live on in their own sessions; the
resume of the interrupted step finds them by that mark and kills them
(:func:`kill_marked`) before it retries the step or records it as interrupted, so an
old attempt never runs beside a new one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL, PIPE

import anyio
import anyio.to_thread

from runbook_engine.plugin import ActionError, FailureStage


@dataclass(frozen=True)
class ProcessOutcome:
    exit_code: int | None  # None when the process was killed because of ``time_limit``
    stdout: bytes
    stderr: bytes

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None

    @property
    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")


# Waiting for children happens in worker threads (one blocked ``communicate`` each): far
# cheaper here than asyncio's subprocess transports and child watcher (about 1 ms a step
# against 5). Each wait gets a limiter of its own, so a fan-out is not capped by anyio's
# default of 40 threads: the number of children is bounded by rate control instead.
# The child is started in that worker thread too: the parent waits for the child's
# ``exec`` (and, after it, for the GIL), which in the event loop's thread held up every
# other task; a local fan-out of 100 at once ran 3 to 4 times faster this way.


STEP_MARK = "RUNBOOK_STEP_EXECUTION_ID"
_running_step: ContextVar[str | None] = ContextVar("running_step", default=None)


@contextmanager
def running_step(step_execution_id: str) -> Iterator[None]:
    """Children started inside (in this task, the tasks it starts and their worker
    threads) carry the step execution's id in their environment."""
    token = _running_step.set(step_execution_id)
    try:
        yield
    finally:
        _running_step.reset(token)


def kill_marked(step_execution_id: str, proc: Path = Path("/proc")) -> int:
    """SIGKILL every process of this machine that carries the step execution's mark,
    with its process group; how many were found. Blocking (reads ``/proc``)."""
    mark = f"{STEP_MARK}={step_execution_id}".encode() + b"\0"
    found = 0
    for entry in proc.glob("[0-9]*"):
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            marked = mark in (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or another user's
            continue
        if not marked:
            continue
        found += 1
        try:
            group = os.getpgid(pid)
            if group > 1 and group != os.getpgrp():
                os.killpg(group, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return found


class _Child:
    """The process a worker thread starts, for the event loop to kill if it must."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.started = threading.Event()  # set once the start succeeded or failed

    def start_and_communicate(
        self,
        argv: Sequence[str],
        stdin: bytes | None,
        cwd: str | None,
        env: Mapping[str, str] | None,
        time_limit: float | None,
    ) -> tuple[bytes, bytes, bool]:
        try:
            self.process = process = _spawn(argv, stdin, cwd, env)
        finally:
            self.started.set()
        return _communicate(process, stdin, time_limit)

    def kill_and_reap(self) -> None:
        """Kill the group (once the start is over) and wait for the leader to end."""
        self.started.wait()
        if self.process is not None:
            _kill_group(self.process.pid)
            self.process.wait()


def _spawn(
    argv: Sequence[str],
    stdin: bytes | None,
    cwd: str | None,
    env: Mapping[str, str] | None,
) -> subprocess.Popen[bytes]:
    step = _running_step.get()
    environment = None if env is None else dict(env)
    if step is not None:
        environment = {**(os.environ if env is None else env), STEP_MARK: step}
    try:
        return subprocess.Popen(
            list(argv),
            stdin=PIPE if stdin is not None else DEVNULL,
            stdout=PIPE,
            stderr=PIPE,
            cwd=cwd,
            env=environment,
            start_new_session=True,
        )
    except OSError as exc:
        raise ActionError(
            f"cannot start {argv[0]}: {exc.strerror or exc}", stage=FailureStage.PRE_VERIFICATION
        ) from exc


def _communicate(
    process: subprocess.Popen[bytes], stdin: bytes | None, time_limit: float | None
) -> tuple[bytes, bytes, bool]:
    """All output, and whether the time limit ran out (the group is killed then)."""
    try:
        out, err = process.communicate(stdin, timeout=time_limit)
        return out or b"", err or b"", False
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        out, err = process.communicate()
        return out or b"", err or b"", True


async def run_in_process_group(
    argv: Sequence[str],
    *,
    stdin: bytes | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    time_limit: float | None = None,
    kill_leftovers: bool = False,
) -> ProcessOutcome:
    """Run ``argv`` to completion, collecting all of stdout and stderr.

    ``time_limit`` (seconds) kills the group and returns an outcome with ``exit_code=None``;
    cancellation from outside kills the group and re-raises. A program that cannot be
    started is an :class:`ActionError`.
    """
    child = _Child()
    finished = False
    try:
        out, err, timed_out = await anyio.to_thread.run_sync(
            child.start_and_communicate,
            argv,
            stdin,
            cwd,
            env,
            time_limit,
            abandon_on_cancel=True,
            limiter=anyio.CapacityLimiter(1),
        )
        finished = True
    finally:
        if not finished:  # cancelled: the waiting thread returns once the group is dead
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(
                    child.kill_and_reap, limiter=anyio.CapacityLimiter(1)
                )
    process = child.process
    assert process is not None
    if kill_leftovers:
        _kill_group(process.pid)
    if timed_out:
        return ProcessOutcome(None, out, err)
    return ProcessOutcome(process.returncode, out, err)


def _kill_group(pid: int) -> None:
    # The group id is the leader's pid (start_new_session); members outlive the leader.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
