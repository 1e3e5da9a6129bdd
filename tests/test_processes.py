"""run_in_process_group: the child's whole output, its exit code, and its group's end,
with many children waited for at once and no descriptor left behind."""

from __future__ import annotations

import os
import time

import anyio
import pytest

from runbook_engine.processes import run_in_process_group

BIG = 300_000  # several times a pipe's buffer, on both pipes at once


@pytest.mark.anyio
async def test_large_output_on_both_pipes_arrives_whole() -> None:
    script = f"head -c {BIG} /dev/zero | tr '\\0' o; head -c {BIG} /dev/zero | tr '\\0' e >&2"
    outcome = await run_in_process_group(["/bin/sh", "-c", script])
    assert outcome.exit_code == 0
    assert outcome.stdout == b"o" * BIG
    assert outcome.stderr == b"e" * BIG


@pytest.mark.anyio
async def test_exit_codes_and_input_on_stdin() -> None:
    failed = await run_in_process_group(["/bin/sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (failed.exit_code, failed.stdout, failed.stderr) == (7, b"out\n", b"err\n")
    echoed = await run_in_process_group(["/bin/cat"], stdin=b"fed on stdin")
    assert (echoed.exit_code, echoed.stdout) == (0, b"fed on stdin")


@pytest.mark.anyio
async def test_the_time_limit_kills_a_background_child_holding_the_pipes() -> None:
    started = time.monotonic()
    outcome = await run_in_process_group(
        ["/bin/sh", "-c", "sleep 30 & echo started; wait"], time_limit=0.5
    )
    assert outcome.timed_out
    assert outcome.stdout == b"started\n"
    assert time.monotonic() - started < 10


@pytest.mark.anyio
async def test_many_children_at_once_each_get_their_own_output() -> None:
    results: dict[int, bytes] = {}

    async def one(n: int) -> None:
        outcome = await run_in_process_group(["/bin/sh", "-c", f"echo {n}; sleep 0.05"])
        results[n] = outcome.stdout

    async with anyio.create_task_group() as group:
        for n in range(30):
            group.start_soon(one, n)
    assert results == {n: f"{n}\n".encode() for n in range(30)}


@pytest.mark.anyio
async def test_no_descriptor_is_left_open() -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        await run_in_process_group(["/bin/sh", "-c", "echo x"])
    with anyio.move_on_after(0.2):
        await run_in_process_group(["/bin/sh", "-c", "sleep 5"])
    # a cancelled wait's thread lets go of the pipes once it sees the killed group's EOF
    for _ in range(100):
        if len(os.listdir("/proc/self/fd")) <= before:
            break
        await anyio.sleep(0.05)
    assert len(os.listdir("/proc/self/fd")) <= before
