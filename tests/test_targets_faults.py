"""What goes wrong with real targets gives a clear error naming the instance."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from runbook_engine.inventory import DockerSpec, Instance, parse_inventory
from runbook_engine.targets import TargetPool, TargetUnavailable
from tests.services.docker import DockerEngine
from tests.services.sshd import SshServer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # asyncssh runs on asyncio only


def ssh_instance(entry: dict[str, object]) -> Instance:
    return parse_inventory({"instances": [entry]}).instances[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_host_names_the_instance_and_address(sshd: SshServer) -> None:
    port = closed_port()
    instance = ssh_instance(sshd.inventory_entry("web-9", port=port))
    pool = TargetPool()
    with pytest.raises(TargetUnavailable) as caught:
        await pool.target(instance).run("true")
    await pool.close()
    assert caught.value.instance_id == "web-9"
    assert str(caught.value).startswith(f"web-9: cannot connect to {sshd.user}@127.0.0.1:{port}")
    assert "refused" in str(caught.value).lower()


async def test_refused_key(sshd: SshServer) -> None:
    instance = ssh_instance(sshd.inventory_entry("web-1", identity_file=sshd.other_key))
    pool = TargetPool()
    with pytest.raises(TargetUnavailable, match=r"web-1: .*authentication refused for user"):
        await pool.target(instance).run("true")
    await pool.close()


async def test_unknown_host_key_is_refused_by_default(sshd: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    instance = ssh_instance(sshd.inventory_entry("web-1", known_hosts=str(empty)))
    pool = TargetPool()
    with pytest.raises(TargetUnavailable, match=r"host key of 127\.0\.0\.1:\d+ is not trusted"):
        await pool.target(instance).run("true")
    await pool.close()


async def test_skipping_host_key_checks_is_explicit_and_logged(
    sshd: SshServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    entry = sshd.inventory_entry("web-1", known_hosts=str(empty), verify_host_key=False)
    pool = TargetPool()
    with caplog.at_level(logging.WARNING, logger="runbook_engine.targets"):
        result = await pool.target(ssh_instance(entry)).run("echo in")
    await pool.close()
    assert result.stdout == "in\n"
    assert "web-1: the host key of" in caplog.text and "NOT verified" in caplog.text


async def test_one_connection_per_host_many_channels(sshd: SshServer) -> None:
    pool = TargetPool()
    entries = [sshd.inventory_entry(f"web-{n}") for n in range(5)]
    instances = parse_inventory({"instances": entries}).instances
    results: list[str] = []

    async def one(instance: Instance) -> None:
        results.append((await pool.target(instance).run("echo $SSH_CONNECTION")).stdout)

    async with anyio.create_task_group() as group:
        for instance in instances * 2:
            group.start_soon(one, instance)
    await pool.close()
    assert len(results) == 10
    assert len(set(results)) == 1  # the same client port: one TCP connection for all


async def test_lost_connection_mid_command_keeps_output_and_reconnects(sshd: SshServer) -> None:
    """The target is killed mid-run (its sshd session process dies)."""
    pool = TargetPool()
    target = pool.target(ssh_instance(sshd.inventory_entry("web-1")))
    script = (
        "echo before\nsleep 0.5\nkill -9 $(cut -d' ' -f4 /proc/$PPID/stat)\nsleep 5\necho after\n"
    )
    # $PPID is the wrapper shell; its parent is the sshd session process of this connection
    with pytest.raises(
        TargetUnavailable, match=r"web-1: .*(connection lost|disconnected)"
    ) as caught:
        await target.run(script)
    assert caught.value.partial is not None and caught.value.partial.stdout == "before\n"
    assert (await target.run("echo again")).stdout == "again\n"  # a new pooled connection
    await pool.close()


async def test_container_gone_mid_command(
    docker_engine: DockerEngine, container: Callable[..., str]
) -> None:
    name = container()
    pool = TargetPool()
    target = pool.target(Instance("box-1", DockerSpec(container=name, url=docker_engine.url)))

    async def remove_soon() -> None:
        await anyio.sleep(1.0)
        await anyio.to_thread.run_sync(docker_engine.remove, name)

    async with anyio.create_task_group() as group:
        group.start_soon(remove_soon)
        with pytest.raises(TargetUnavailable, match=f"box-1: container {name} ") as caught:
            await target.run("echo before\nsleep 20\necho after\n")
    assert caught.value.partial is not None and caught.value.partial.stdout == "before\n"
    with pytest.raises(TargetUnavailable, match=f"box-1: container {name} is gone"):
        await target.run("true")
    await pool.close()


async def test_stopped_container(
    docker_engine: DockerEngine, container: Callable[..., str]
) -> None:
    name = container()
    docker_engine.client.stop(name, timeout=1)
    pool = TargetPool()
    target = pool.target(Instance("box-2", DockerSpec(container=name, url=docker_engine.url)))
    with pytest.raises(TargetUnavailable, match=f"box-2: container {name} is not running"):
        await target.run("true")
    await pool.close()


async def test_container_restart_for_reboot(
    docker_engine: DockerEngine, container: Callable[..., str]
) -> None:
    name = container()
    pool = TargetPool()
    target = pool.target(Instance("box-3", DockerSpec(container=name, url=docker_engine.url)))
    before = docker_engine.client.inspect_container(name)["State"]["StartedAt"]
    await target.reboot(60)
    after = docker_engine.client.inspect_container(name)["State"]["StartedAt"]
    assert after != before
    assert (await target.run("echo back")).stdout == "back\n"
    await pool.close()
