"""Run Command across daemon restarts and daemons: finished invocations are in the state
database; a command in flight when its daemon dies is adopted by the next daemon, which
records the interrupted invocation ``Failed`` (not run twice) and runs the instances
that never started; a CancelCommand answered by another daemon on the same PostgreSQL
stops the command where it runs (``runbook_engine.daemon.command_runner``)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.services.daemon import Daemons, wait_for

LEASE_SECONDS = 2


def settings(root: Path, state: str | None = None) -> dict[str, Any]:
    inventory = root / "inventory.yaml"
    if not inventory.exists():
        inventory.write_text(
            yaml.safe_dump(
                {
                    "instances": [
                        {"id": "web-1", "tags": {"Role": "web"}, "local": {}},
                        {"id": "web-2", "tags": {"Role": "web"}, "local": {}},
                    ]
                }
            )
        )
    return {
        "state": state or f"sqlite:///{root / 'state.db'}",
        "inventory": str(inventory),
        "lease_seconds": LEASE_SECONDS,
        "shutdown_grace_seconds": 1,
    }


def finished(client: Any, command_id: str) -> dict[str, Any]:
    def look() -> dict[str, Any] | None:
        command: dict[str, Any] = client.list_commands(CommandId=command_id)["Commands"][0]
        return command if command["Status"] not in ("Pending", "InProgress", "Cancelling") else None

    result: dict[str, Any] = wait_for(look, 30, f"command {command_id} to finish")
    return result


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_finished_invocations_survive_a_restart(daemons: Daemons, tmp_path: Path) -> None:
    first = daemons.start("first", **settings(tmp_path))
    client = first.client()
    command_id = client.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=["web-1", "web-2"],
        Parameters={"commands": ["echo kept on $AWS_SSM_INSTANCE_ID"]},
    )["Command"]["CommandId"]
    assert finished(client, command_id)["Status"] == "Success"
    assert first.terminate() == 0
    second = daemons.start("second", **settings(tmp_path))
    again = second.client()
    shown = again.get_command_invocation(CommandId=command_id, InstanceId="web-2")
    assert (shown["Status"], shown["StandardOutputContent"]) == ("Success", "kept on web-2\n")
    assert again.list_commands(CommandId=command_id)["Commands"][0]["CompletedCount"] == 2


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_command_in_flight_is_resumed_by_the_next_daemon(
    daemons: Daemons, tmp_path: Path, how: str
) -> None:
    first = daemons.start("first", **settings(tmp_path))
    client = first.client()
    marker = tmp_path / "pid"
    command_id = client.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=["web-1", "web-2"],
        MaxConcurrency="1",
        MaxErrors="1",
        Parameters={
            "commands": [
                f"echo $$ > {marker}.$AWS_SSM_INSTANCE_ID",
                'if [ "$AWS_SSM_INSTANCE_ID" = web-1 ]; then exec sleep 30; fi',
                "echo ran on $AWS_SSM_INSTANCE_ID",
            ]
        },
    )["Command"]["CommandId"]
    started = tmp_path / "pid.web-1"
    wait_for(lambda: started.exists() and started.read_text().strip(), 20, "web-1 to start")
    pid = int(started.read_text())
    try:
        if how == "SIGKILL":
            first.kill()  # no chance to release anything: the lease runs out
        else:
            assert first.terminate() == 0
            assert not alive(pid)  # a stopping daemon kills what it runs
        second = daemons.start("second", **settings(tmp_path))
        again = second.client()
        command = finished(again, command_id)
        interrupted = again.get_command_invocation(CommandId=command_id, InstanceId="web-1")
        resumed = again.get_command_invocation(CommandId=command_id, InstanceId="web-2")
        assert interrupted["Status"] == "Failed"
        assert "interrupted" in interrupted["StandardErrorContent"]
        assert (resumed["Status"], resumed["StandardOutputContent"]) == (
            "Success",
            "ran on web-2\n",
        )
        assert (command["Status"], command["StatusDetails"]) == ("Failed", "Incomplete")
        assert (command["CompletedCount"], command["ErrorCount"]) == (2, 1)
        assert second.events("command_adopted")
    finally:
        if alive(pid):  # the script a killed daemon left behind (it was started here)
            os.kill(pid, signal.SIGKILL)


def test_another_daemon_on_postgresql_lists_and_cancels_a_command(
    daemons: Daemons, tmp_path: Path, fresh_postgres_url: str
) -> None:
    runner = daemons.start("runner", **settings(tmp_path, fresh_postgres_url))
    other = daemons.start("other", **settings(tmp_path, fresh_postgres_url))
    marker = tmp_path / "pid"
    command_id = runner.client().send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=["web-1"],
        Parameters={"commands": [f"echo $$ > {marker}", "exec sleep 60"]},
    )["Command"]["CommandId"]
    wait_for(lambda: marker.exists() and marker.read_text().strip(), 20, "the script to start")
    pid = int(marker.read_text())
    try:
        client = other.client()
        listed = client.list_command_invocations(CommandId=command_id)["CommandInvocations"]
        assert [(i["InstanceId"], i["Status"]) for i in listed] == [("web-1", "InProgress")]
        client.cancel_command(CommandId=command_id)
        assert client.list_commands(CommandId=command_id)["Commands"][0]["Status"] in (
            "Cancelling",
            "Cancelled",
        )
        command = finished(client, command_id)  # the runner reads the request as it renews
        assert command["Status"] == "Cancelled"
        shown = client.get_command_invocation(CommandId=command_id, InstanceId="web-1")
        assert shown["Status"] == "Cancelled"
        wait_for(lambda: not alive(pid), 10, "the script to be killed")
        assert not other.events("command_adopted")  # the runner kept its lease throughout
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
