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
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


def _spawn(
    argv: Sequence[str],
    stdin: bytes | None,
    cwd: str | None,
    env: Mapping[str, str] | None,
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            list(argv),
            stdin=PIPE if stdin is not None else DEVNULL,
            stdout=PIPE,
            stderr=PIPE,
            cwd=cwd,
            env=dict(env) if env is not None else None,
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
    process = _spawn(argv, stdin, cwd, env)
    waiter = anyio.CapacityLimiter(1)
    finished = False
    try:
        out, err, timed_out = await anyio.to_thread.run_sync(
            _communicate, process, stdin, time_limit, abandon_on_cancel=True, limiter=waiter
        )
        finished = True
    finally:
        if not finished:  # cancelled: the waiting thread returns once the group is dead
            _kill_group(process.pid)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(process.wait, limiter=waiter)
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
