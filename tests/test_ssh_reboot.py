"""Exit code 194 on SSH hosts: the inventory's reboot command takes the host down, the
engine waits for it to accept SSH again, reconnects and runs the plugin again, then the
rest of the Command document and of the runbook (ssm-reference §7.2). A real sshd per test
(tests/support/rebootable_sshd.py) whose "reboot" kills it and starts it again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from runbook_engine import Engine, ExecutionView
from runbook_engine.errors import TargetError
from runbook_engine.inventory import DEFAULT_REBOOT_COMMAND, SshSpec, parse_inventory
from runbook_engine.settings import Settings
from runbook_engine.status import Status
from tests.services.sshd import SshServer
from tests.support.rebootable_sshd import rebootable_sshd

ROOT = Path(__file__).resolve().parent.parent


def reboot_once_document(marker: Path, runs: Path) -> dict[str, Any]:
    """A Command document whose first plugin asks for a reboot the first time it runs."""
    return {
        "schemaVersion": "2.2",
        "description": "Install something that needs a reboot, then check it.",
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "install",
                "inputs": {
                    "runCommand": [
                        f"echo run >> {runs}",
                        f"if [ ! -f {marker} ]; then touch {marker}; echo before reboot; "
                        "exit 194; fi",
                        "echo after reboot",
                    ]
                },
            },
            {
                "action": "aws:runShellScript",
                "name": "check",
                "inputs": {"runCommand": ["echo checked"]},
            },
        ],
    }


def write_runbook(tmp_path: Path, *, step_timeout: int | None = None) -> tuple[str, Path]:
    """The runbook (a reboot-once command, then a local step) and its documents folder."""
    documents = tmp_path / "documents"
    documents.mkdir()
    document = reboot_once_document(tmp_path / "marker", tmp_path / "runs")
    (documents / "Install-WithReboot.yaml").write_text(yaml.safe_dump(document))
    command: dict[str, Any] = {
        "name": "rc",
        "action": "aws:runCommand",
        "inputs": {"DocumentName": "Install-WithReboot", "InstanceIds": ["web-1"]},
    }
    if step_timeout:
        command["timeoutSeconds"] = step_timeout
    after = {
        "name": "after",
        "action": "aws:runShellScript",
        "inputs": {"Commands": [f"echo done > {tmp_path / 'after'}"]},
    }
    path = tmp_path / "reboot.yaml"
    path.write_text(yaml.safe_dump({"schemaVersion": "0.3", "mainSteps": [command, after]}))
    return str(path), documents


def execute(
    tmp_path: Path, document: str, documents: Path, inventory: dict[str, Any]
) -> ExecutionView:
    async def main() -> ExecutionView:
        async with Engine(
            f"sqlite:///{tmp_path / 'state.db'}",
            settings=Settings(poll_interval=0.05, principal="tester"),
            inventory=parse_inventory(inventory),
            documents=(str(documents),),
        ) as engine:
            return await engine.run(document)

    return anyio.run(main)


def invocation(view: ExecutionView) -> dict[str, Any]:
    [found] = view.step("rc").response["CommandInvocations"]
    result: dict[str, Any] = found
    return result


def test_exit_194_reboots_the_host_and_runs_the_plugin_again(tmp_path: Path) -> None:
    document, documents = write_runbook(tmp_path)
    with rebootable_sshd(down_for=1.0) as server:
        pid_before = server.pid
        inventory = {"instances": [server.inventory_entry("web-1")]}
        view = execute(tmp_path, document, documents, inventory)
        assert server.reboots == 1
        assert server.pid != pid_before  # a new sshd: the engine had to reconnect
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert (tmp_path / "runs").read_text() == "run\nrun\n"  # the plugin ran twice
    found = invocation(view)
    assert (found["Status"], found["ResponseCode"]) == ("Success", 0)
    # As under the SSM agent, the output of the run before the reboot is kept.
    assert found["StandardOutputContent"] == "before reboot\nafter reboot\nchecked\n"
    install, check = found["CommandPlugins"]
    assert (install["Name"], install["Status"], install["ResponseCode"]) == (
        "install",
        "Success",
        0,
    )
    assert install["Output"] == "before reboot\nafter reboot\n"
    assert (check["Name"], check["Status"], check["Output"]) == ("check", "Success", "checked\n")
    assert view.step("after").status == Status.SUCCESS  # the runbook went on
    assert (tmp_path / "after").read_text() == "done\n"


@pytest.mark.parametrize(
    ("reboot_timeout", "step_timeout", "limit"),
    [(2, None, "2 s"), (None, 5, "")],  # the inventory's limit, or the step's (less a second)
)
def test_a_host_that_never_comes_back_fails_naming_it(
    tmp_path: Path, reboot_timeout: int | None, step_timeout: int | None, limit: str
) -> None:
    """Down for good: the invocation fails with the host's name and address, before the
    step's own timeout (when it is the shorter one) would cancel it without saying why."""
    document, documents = write_runbook(tmp_path, step_timeout=step_timeout)
    extra = {"reboot_timeout": reboot_timeout} if reboot_timeout else {}
    with rebootable_sshd(comes_back=False) as server:
        inventory = {"instances": [server.inventory_entry("web-1", **extra)]}
        view = execute(tmp_path, document, documents, inventory)
    assert view.status == Status.FAILED
    step = view.step("rc")
    assert step.status == Status.FAILED  # the reboot failed, before the step timed out
    message = step.failure_message or ""
    assert f"127.0.0.1:{server.port} did not come back within {limit}" in message, message
    assert "aws:runCommand failed on 1 of 1 instance(s): web-1: failed: root@" in message
    found = invocation(view)
    assert found["Status"] == "Failed"
    assert found["StandardOutputContent"] == "before reboot\n"  # kept
    # The host is gone: the plugin after the one that rebooted it is not attempted.
    assert [p["Status"] for p in found["CommandPlugins"]] == ["Failed", "Cancelled"]
    assert (tmp_path / "runs").read_text() == "run\n"


def test_a_failing_reboot_command_is_reported_with_what_it_said(
    sshd: SshServer, tmp_path: Path
) -> None:
    document, documents = write_runbook(tmp_path)
    refusing = "echo 'sudo: a password is required' >&2; exit 1"
    inventory = {"instances": [sshd.inventory_entry("web-1", reboot_command=refusing)]}
    view = execute(tmp_path, document, documents, inventory)
    message = view.step("rc").failure_message or ""
    assert "the reboot command" in message and "failed on" in message, message
    assert "(exit code 1): sudo: a password is required" in message
    assert (tmp_path / "runs").read_text() == "run\n"


def test_a_resumed_execution_does_not_run_a_finished_invocation_again(tmp_path: Path) -> None:
    """``runbook run`` killed (SIGKILL) right after the rebooted invocation was recorded,
    before the step ended: the resumed execution keeps that invocation as it was."""
    document, documents = write_runbook(tmp_path)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    with rebootable_sshd(down_for=0.5) as server:
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(yaml.safe_dump({"instances": [server.inventory_entry("web-1")]}))
        # Writes: execution, start, step write-ahead, instance list, invocation start,
        # invocation finished.
        crashed = run_cli(document, documents, inventory, state, kill_after=6)
        assert crashed.returncode == -9, crashed.stderr
        assert (tmp_path / "runs").read_text() == "run\nrun\n"
        assert not (tmp_path / "after").exists()
        view = anyio.run(resume_after_crash, state, inventory, documents)
        assert server.reboots == 1
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert (tmp_path / "runs").read_text() == "run\nrun\n"  # not a third time
    assert invocation(view)["StandardOutputContent"] == "before reboot\nafter reboot\nchecked\n"
    assert (tmp_path / "after").read_text() == "done\n"


def run_cli(
    document: str, documents: Path, inventory: Path, state: str, kill_after: int
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "runbook_engine", "run", document]
    command += ["--inventory", str(inventory), "--documents", str(documents), "--state", state]
    env = {**os.environ, "RUNBOOK_KILL_AFTER_WRITES": str(kill_after)}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


async def resume_after_crash(state: str, inventory: Path, documents: Path) -> ExecutionView:
    """Free the lease the killed process still holds, then resume here."""
    async with Engine(
        state,
        settings=Settings(poll_interval=0.05),
        inventory=inventory,
        documents=(str(documents),),
    ) as engine:
        [execution] = await engine.list()
        assert execution.owner is not None and execution.status == Status.IN_PROGRESS
        await engine.store.release(execution.execution_id, execution.owner)
        return await engine.resume(execution.execution_id)


# -- the inventory ---------------------------------------------------------------------------


def test_reboot_command_defaults_and_the_defaults_section() -> None:
    inventory = parse_inventory(
        {
            "defaults": {"ssh": {"user": "deploy", "reboot_command": "sudo -n systemctl reboot"}},
            "instances": [
                {"id": "a", "ssh": {"host": "10.0.0.1"}},
                {"id": "b", "ssh": {"host": "10.0.0.2", "user": "root", "reboot_command": "b"}},
            ],
        }
    )
    a, b = (inventory.get(i).connection for i in "ab")
    assert isinstance(a, SshSpec) and isinstance(b, SshSpec)
    assert (a.user, a.reboot_command) == ("deploy", "sudo -n systemctl reboot")
    assert (b.user, b.reboot_command) == ("root", "b")  # an instance's own fields win
    plain = parse_inventory({"instances": [{"id": "c", "ssh": {"host": "h"}}]}).get("c")
    assert isinstance(plain.connection, SshSpec)
    assert plain.connection.reboot_command == DEFAULT_REBOOT_COMMAND
    assert "sudo -n /sbin/reboot" in DEFAULT_REBOOT_COMMAND


@pytest.mark.parametrize(
    ("defaults", "complaint"),
    [
        ({"ssh": {"reboot_comand": "x"}}, "defaults.ssh: unknown key(s) reboot_comand"),
        ({"winrm": {}}, "defaults: unknown key(s) winrm"),
        ({"docker": "box"}, "defaults.docker: must be a map"),
    ],
)
def test_defaults_are_checked_like_instances(defaults: dict[str, Any], complaint: str) -> None:
    with pytest.raises(TargetError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        parse_inventory({"defaults": defaults, "instances": []})


def test_a_host_that_does_not_go_down_fails_naming_it(sshd: SshServer, tmp_path: Path) -> None:
    """A reboot command that succeeds but reboots nothing: the connection never drops."""
    document, documents = write_runbook(tmp_path)
    entry = sshd.inventory_entry("web-1", reboot_command="true", reboot_timeout=2)
    view = execute(tmp_path, document, documents, {"instances": [entry]})
    message = view.step("rc").failure_message or ""
    assert f"web-1: failed: {sshd.user}@127.0.0.1:{sshd.port} did not go down within 2 s" in (
        message
    ), message
    assert (tmp_path / "runs").read_text() == "run\n"
