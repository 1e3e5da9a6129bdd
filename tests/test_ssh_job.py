"""SSH jobs written by the remote shell itself (runbook_engine/targets/ssh_job.py)."""

from __future__ import annotations

import anyio
import pytest

from runbook_engine.inventory import Instance, parse_inventory
from runbook_engine.targets import TargetPool
from runbook_engine.targets.ssh import SshTarget
from runbook_engine.targets.ssh_job import fits, payload, wrapper
from tests.services.sshd import SshServer

pytestmark = pytest.mark.anyio

AWKWARD = "".join(chr(c) for c in range(1, 128)) + "é€\U0001f680'\"\\$`!\n\n"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # asyncssh runs on asyncio only


def ssh_instance(entry: dict[str, object]) -> Instance:
    return parse_inventory({"instances": [entry]}).instances[0]


def left_over(path: str) -> str:
    job = path.removesuffix("_script.sh")
    return f'for f in {path} {job}.in {job}.pid {job}.cancelled; do [ -e "$f" ] && echo "$f"; done'


async def test_every_character_and_value_arrives_verbatim_and_nothing_is_left(
    sshd: SshServer,
) -> None:
    pool = TargetPool()
    target = pool.target(ssh_instance(sshd.inventory_entry("web-1")))
    script = f': <<"END"\n{AWKWARD}END\necho "$0"\ncat "$0" >&2\nprintf %s "$V"\ncat\n'
    result = await target.run(script, env={"V": AWKWARD}, stdin=b"in'put\x01\xff\n")
    assert result.exit_code == 0, result.stderr
    path, value = result.stdout.split("\n", 1)
    assert result.stderr == script  # the script file holds exactly the script
    assert value == AWKWARD + "in'put\x01\ufffd\n"  # (\xff is not UTF-8 on the way back)
    assert path.endswith("_script.sh")
    assert (await target.run(left_over(path))).stdout == ""
    await pool.close()


async def test_a_nul_byte_takes_the_tar_path(sshd: SshServer) -> None:
    assert not fits("true", b"a\0b") and fits("true", b"ab")
    pool = TargetPool()
    target = pool.target(ssh_instance(sshd.inventory_entry("web-1")))
    result = await target.run("wc -c", stdin=b"a\0b")
    assert (result.exit_code, result.stdout.strip()) == (0, "3")
    await pool.close()


async def test_a_timed_out_job_is_killed_and_its_files_removed(sshd: SshServer) -> None:
    pool = TargetPool()
    target = pool.target(ssh_instance(sshd.inventory_entry("web-1")))
    result = await target.run('echo "$0"\nsleep 30\necho after\n', time_limit=1.5)
    assert result.timed_out
    path = result.stdout.strip()
    await anyio.sleep(0.2)
    assert (await target.run(left_over(path))).stdout == ""
    await pool.close()


async def test_an_unwritable_job_root_is_a_target_error(sshd: SshServer) -> None:
    pool = TargetPool()
    target = pool.target(ssh_instance(sshd.inventory_entry("web-1")))
    assert isinstance(target, SshTarget)
    job = "/nonexistent-dir/runbook-x"
    errors: list[bytes] = []
    data = payload(job, ("sh",), "true", None, None)
    code = await target._exec(wrapper(job, ("sh",), None, False), data, [], errors)
    assert code == 254
    assert b"cannot unpack the job's files" in b"".join(errors)
    await pool.close()
