"""The bundled RestartWebServer runbook over SSH hosts chosen by tag, with rate control.

Several inventory entries point at the one test sshd; the "web server" is a directory of
start markers, so every restart leaves a trace the test counts.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import yaml

from tests.services.sshd import SshServer
from tests.test_cli_executions import Cli


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_inventory(path: Path, sshd: SshServer, broken: tuple[str, ...] = ()) -> str:
    hosts = {"web-1": "web", "web-2": "web", "web-3": "web", "web-4": "web", "db-1": "db"}
    port = closed_port()
    instances: list[dict[str, Any]] = []
    for name, role in hosts.items():
        extra = {"port": port} if name in broken else {}
        instances.append({**sshd.inventory_entry(name, **extra), "tags": {"Role": role}})
    path.write_text(yaml.safe_dump({"instances": instances}))
    return str(path)


def restart(cli: Cli, inventory: str, state: Path, code: int) -> Any:
    return cli.json(
        "run",
        "RestartWebServer",
        "--inventory",
        inventory,
        "--target-parameter-name",
        "InstanceId",
        "--targets",
        "Key=tag:Role,Values=web",
        "--max-concurrency",
        "2",
        "--max-errors",
        "1",
        "-p",
        "StopCommand=echo stopping",
        "-p",
        f"StartCommand=mkdir -p {state} && mktemp {state}/started.XXXXXX",
        "-p",
        f"CheckCommand=ls {state}/started.* > /dev/null && echo active",
        code=code,
    )


def test_restart_web_server_over_tagged_ssh_hosts(sshd: SshServer, tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'state.db'}", tmp_path)
    state = tmp_path / "web"
    shape = restart(cli, write_inventory(tmp_path / "inventory.yaml", sshd), state, code=0)
    assert shape["AutomationExecutionStatus"] == "Success"
    assert shape["ResolvedTargets"]["ParameterValues"] == ["web-1", "web-2", "web-3", "web-4"]
    assert [s["StepStatus"] for s in shape["StepExecutions"]] == ["Success"] * 4
    assert len(list(state.glob("started.*"))) == 4  # db-1 was not restarted

    children = cli.json("list", code=0)["AutomationExecutionMetadataList"]
    restarted = [
        c
        for c in children
        if c.get("ParentAutomationExecutionId") == shape["AutomationExecutionId"]
    ]
    assert len(restarted) == 4
    assert {c["AutomationExecutionStatus"] for c in restarted} == {"Success"}


def test_an_unreachable_host_fails_the_restart_but_the_others_run(
    sshd: SshServer, tmp_path: Path
) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'state.db'}", tmp_path)
    state = tmp_path / "web"
    inventory = write_inventory(tmp_path / "inventory.yaml", sshd, broken=("web-2",))
    shape = restart(cli, inventory, state, code=1)
    assert shape["AutomationExecutionStatus"] == "Failed"
    statuses = {s["StepName"]: s["StepStatus"] for s in shape["StepExecutions"]}
    assert statuses == {
        "web-1": "Success",
        "web-2": "Failed",
        "web-3": "Success",
        "web-4": "Success",
    }
    assert len(list(state.glob("started.*"))) == 3
