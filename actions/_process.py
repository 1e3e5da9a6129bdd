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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from subprocess import DEVNULL, PIPE

import anyio
from anyio.abc import ByteReceiveStream

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
    try:
        process = await anyio.open_process(
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
    out: list[bytes] = []
    err: list[bytes] = []
    finished = False
    try:
        with anyio.move_on_after(time_limit) as deadline:
            async with anyio.create_task_group() as group:
                assert process.stdout is not None and process.stderr is not None
                group.start_soon(_drain, process.stdout, out)
                group.start_soon(_drain, process.stderr, err)
                if stdin is not None and process.stdin is not None:
                    try:
                        await process.stdin.send(stdin)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        pass  # the child exited without reading all of it
                    await process.stdin.aclose()
                await process.wait()
                if kill_leftovers:
                    _kill_group(process.pid)
        finished = not deadline.cancelled_caught
    finally:
        with anyio.CancelScope(shield=True):
            if not finished:
                _kill_group(process.pid)
            await process.wait()
            await process.aclose()
    if not finished:  # only the time limit reaches here; cancellation re-raised above
        return ProcessOutcome(None, b"".join(out), b"".join(err))
    return ProcessOutcome(process.returncode, b"".join(out), b"".join(err))


async def _drain(stream: ByteReceiveStream, chunks: list[bytes]) -> None:
    try:
        async for chunk in stream:
            chunks.append(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


def _kill_group(pid: int) -> None:
    # The group id is the leader's pid (start_new_session); members outlive the leader.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
