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

import asyncio
import math
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


# How a child is waited for. On asyncio with pidfds (Linux 5.3+), on the event loop
# itself: the two pipes and a pidfd of the child are watched by the loop's selector, so
# no thread is involved and a child costs a few loop turns (a worker thread per child
# took a thread hand-off and a wake-up of the loop through its self-pipe, about 0.3 ms
# of a 1 ms shell step). Elsewhere (other backends, input to send on stdin), in worker
# threads, one blocked ``communicate`` each: far cheaper than asyncio's subprocess
# transports and child watcher (about 1 ms a step against 5). Each thread wait gets a
# limiter of its own, so a fan-out is not capped by anyio's default of 40 threads: the
# number of children is bounded by rate control instead.
_READ_SIZE = 65536


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
        if stdin is None and _loop_can_watch():
            out, err, timed_out = await _watch_on_loop(process, time_limit)
        else:
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


def _loop_can_watch() -> bool:
    """On asyncio (no running asyncio loop means another backend), with pidfds."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _watch_on_loop(
    process: subprocess.Popen[bytes], time_limit: float | None
) -> tuple[bytes, bytes, bool]:
    """``_communicate`` on the asyncio loop: read both pipes to their end, then wait for
    the child's exit through a pidfd; past ``time_limit`` the group is killed first."""
    assert process.stdout is not None and process.stderr is not None
    loop = asyncio.get_running_loop()
    out_fd, err_fd = process.stdout.fileno(), process.stderr.fileno()
    streams = {out_fd: bytearray(), err_fd: bytearray()}
    open_streams = set(streams)
    ended: asyncio.Future[None] = loop.create_future()

    def readable(fd: int) -> None:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return
        if data:
            streams[fd] += data
            return
        loop.remove_reader(fd)
        open_streams.discard(fd)
        if not open_streams and not ended.done():
            ended.set_result(None)

    for fd in streams:
        os.set_blocking(fd, False)
        loop.add_reader(fd, readable, fd)
    timed_out = False
    try:
        # shielded: a time limit cancels the wait, not the future waited for
        with anyio.move_on_after(math.inf if time_limit is None else time_limit) as limit:
            await asyncio.shield(ended)
        if limit.cancelled_caught:
            timed_out = True
            _kill_group(process.pid)
            await asyncio.shield(ended)  # the group is dead: the pipes end now
        await _exited(loop, process)
    finally:
        for fd in open_streams:
            loop.remove_reader(fd)
        process.stdout.close()
        process.stderr.close()
    return bytes(streams[out_fd]), bytes(streams[err_fd]), timed_out


async def _exited(loop: asyncio.AbstractEventLoop, process: subprocess.Popen[bytes]) -> None:
    """Wait for the child's exit on the loop (its pidfd turns readable), then reap it."""
    if process.poll() is not None:
        return
    pidfd = os.pidfd_open(process.pid)  # not reaped yet, so the pid is still this child
    try:
        exited: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(pidfd, readable)
        try:
            await exited
        finally:
            loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)
    process.wait()  # it has exited: this only reaps it
