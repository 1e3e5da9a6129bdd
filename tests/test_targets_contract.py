"""One contract for every target kind: local processes, a real sshd, a real Docker engine."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from runbook_engine.inventory import DockerSpec, Instance, LocalSpec
from runbook_engine.targets import KILLED_EXIT_CODE, Target, TargetPool
from tests.services.docker import DockerEngine
from tests.services.sshd import SshServer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # asyncssh runs on asyncio only

KINDS = ["local", "ssh", "docker"]


@pytest.fixture(params=KINDS)
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    pool = TargetPool()
    kind = request.param
    if kind == "local":
        instance = Instance("here", LocalSpec())
    elif kind == "ssh":
        server: SshServer = request.getfixturevalue("sshd")
        from runbook_engine.inventory import parse_inventory

        instance = parse_inventory({"instances": [server.inventory_entry("web-1")]}).instances[0]
    else:
        engine: DockerEngine = request.getfixturevalue("docker_engine")
        name = request.getfixturevalue("container")()
        instance = Instance("box-1", DockerSpec(container=name, url=engine.url))
    yield pool.target(instance)
    await pool.close()


def scratch() -> str:
    return f"/tmp/rbtest-{uuid.uuid4().hex[:12]}"


def liveness(folder: str) -> str:
    """Shell that prints alive/gone for the pid in FOLDER/pid (a zombie is gone: it was
    killed and waits for init to reap it), lists the folder, then removes it."""
    return (
        f'p=$(cat {folder}/pid); s=$(cut -d" " -f3 /proc/$p/stat 2>/dev/null); '
        'if [ -n "$s" ] && [ "$s" != Z ]; then echo alive; else echo gone; fi; '
        f"ls {folder}; rm -rf {folder}"
    )


async def test_stdout_stderr_and_exit_code(target: Target) -> None:
    result = await target.run("echo out\necho err >&2\nexit 3\n")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.timed_out
    assert (await target.run("true")).exit_code == 0


async def test_the_last_command_decides_the_exit_code(target: Target) -> None:
    result = await target.run("false\necho still here\n")
    assert (result.exit_code, result.stdout) == (0, "still here\n")


async def test_environment_values_arrive_verbatim(target: Target) -> None:
    tricky = 'it\'s "quoted" $HOME `id` ; rm -rf / \n second line'
    result = await target.run(
        'printf "%s|%s" "$GREETING" "$OTHER"', env={"GREETING": tricky, "OTHER": "x"}
    )
    assert result.stdout == f"{tricky}|x"


async def test_working_directory(target: Target) -> None:
    result = await target.run("pwd", cwd="/tmp")
    assert result.stdout.strip() == "/tmp"
    missing = await target.run("echo should not run", cwd="/no/such/dir")
    assert missing.exit_code == 1
    assert "/no/such/dir does not exist" in missing.stderr
    assert missing.stdout == ""


async def test_stdin_reaches_the_script(target: Target) -> None:
    result = await target.run("cat; echo", stdin=b"hello\nworld")
    assert result.stdout == "hello\nworld\n"


async def test_large_output_is_kept_whole(target: Target) -> None:
    result = await target.run(
        "i=0; while [ $i -lt 4000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 4000 and lines[-1].startswith("line-3999-")


async def test_killed_by_a_signal_reports_128_plus_the_signal(target: Target) -> None:
    result = await target.run("echo before\nkill -9 $$\necho after\n")
    assert result.exit_code == 137
    assert result.stdout == "before\n"


async def test_timeout_kills_the_script_and_its_children_and_keeps_output(target: Target) -> None:
    folder = scratch()
    script = f"mkdir -p {folder}\necho started\nsleep 30 &\necho $! > {folder}/pid\nwait\ntouch {folder}/after\n"
    result = await target.run(script, time_limit=1.5)
    assert result.timed_out and result.exit_code == KILLED_EXIT_CODE
    assert result.stdout == "started\n"
    check = await target.run(liveness(folder))
    assert check.stdout.splitlines()[0] == "gone"
    assert "after" not in check.stdout


async def test_cancellation_kills_the_remote_process(target: Target) -> None:
    folder = scratch()
    script = f"mkdir -p {folder}\necho $$ > {folder}/pid\nsleep 30\ntouch {folder}/after\n"
    with anyio.move_on_after(1.5) as scope:
        await target.run(script)
    assert scope.cancelled_caught
    check = await target.run(liveness(folder))
    assert check.stdout.splitlines()[0] == "gone"
    assert "after" not in check.stdout


async def test_copy_bytes_and_files(target: Target, tmp_path: Path) -> None:
    folder = scratch()
    await target.copy(b"payload \x00 bytes", f"{folder}/sub/data.bin")
    tool = tmp_path / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool ran\n")
    tool.chmod(0o755)
    await target.copy(tool, f"{folder}/tool.sh")
    result = await target.run(
        f"od -c {folder}/sub/data.bin | head -1; {folder}/tool.sh; rm -rf {folder}"
    )
    assert "p   a   y   l   o   a   d" in result.stdout
    assert "\\0" in result.stdout
    assert result.stdout.rstrip().endswith("tool ran")


async def test_many_commands_at_once_on_one_target(target: Target) -> None:
    results: dict[int, str] = {}

    async def one(n: int) -> None:
        results[n] = (await target.run(f"echo {n}")).stdout

    async with anyio.create_task_group() as group:
        for n in range(12):
            group.start_soon(one, n)
    assert results == {n: f"{n}\n" for n in range(12)}


async def test_platform_is_reported(target: Target) -> None:
    assert target.platform == "Linux"
