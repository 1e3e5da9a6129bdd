"""Run Command through the daemon, driven by real clients (boto3 and the aws CLI):
SendCommand, ListCommands, ListCommandInvocations, GetCommandInvocation, CancelCommand.

One ``runbook serve`` process (SQLite) serves the module. Its inventory has two local
instances tagged ``Role: web``, one tagged ``Role: db``, and one SSH instance on the
session's real sshd; its documents directory holds two small Command documents.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError, WaiterError

from tests.services.daemon import ALICE, LIMITED, VIEWER, DaemonProcess, wait_for
from tests.services.sshd import SshServer

TWO_STEPS = """\
schemaVersion: '2.2'
description: Two steps.
parameters:
  Word: {type: String, default: hi, allowedPattern: '^[a-z]+$'}
mainSteps:
  - action: aws:runShellScript
    name: first
    inputs: {runCommand: ['echo first {{ Word }}']}
  - action: aws:runShellScript
    name: second
    inputs: {runCommand: ['echo second >&2', 'exit 4']}
"""
QUICK = """\
schemaVersion: '2.2'
description: Say hello.
mainSteps:
  - action: aws:runShellScript
    name: hello
    inputs: {runCommand: ['echo quick hello']}
"""
FAST = {"Delay": 1, "MaxAttempts": 60}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, sshd: SshServer) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("commands")
    documents = root / "documents"
    documents.mkdir()
    (documents / "two-steps.yaml").write_text(TWO_STEPS)
    (documents / "quick-hello.yaml").write_text(QUICK)
    inventory = {
        "instances": [
            {"id": "web-1", "tags": {"Role": "web", "Name": "first web"}, "local": {}},
            {"id": "web-2", "tags": {"Role": "web"}, "local": {}},
            {"id": "db-1", "tags": {"Role": "db"}, "local": {}},
            {**sshd.inventory_entry("ssh-1"), "tags": {"Role": "remote"}},
        ],
        "groups": {"databases": ["db-1"]},
    }
    (root / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    process = DaemonProcess(
        root,
        {
            "state": f"sqlite:///{root / 'state.db'}",
            "documents": [str(documents)],
            "inventory": str(root / "inventory.yaml"),
        },
    )
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def send(client: Any, commands: list[str], **request: Any) -> str:
    if "Targets" not in request:
        request.setdefault("InstanceIds", ["web-1"])
    request.setdefault("DocumentName", "AWS-RunShellScript")
    command = client.send_command(Parameters={"commands": commands}, **request)["Command"]
    uuid.UUID(command["CommandId"])
    assert command["Status"] in ("Pending", "InProgress")
    return str(command["CommandId"])


def finished(client: Any, command_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def look() -> dict[str, Any] | None:
        command: dict[str, Any] = client.list_commands(CommandId=command_id)["Commands"][0]
        return command if command["Status"] not in ("Pending", "InProgress", "Cancelling") else None

    result: dict[str, Any] = wait_for(look, timeout, f"command {command_id} to finish")
    return result


def code_of(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


# -- sending and reading ------------------------------------------------------------------


def test_a_command_runs_on_instances_and_the_waiter_sees_it_succeed(daemon: DaemonProcess) -> None:
    client = daemon.client()
    command_id = send(
        client,
        ["echo hello from $AWS_SSM_INSTANCE_ID", "echo careful >&2"],
        InstanceIds=["web-1", "web-2"],
        Comment="greeting",
        TimeoutSeconds=60,
    )
    for instance in ("web-1", "web-2"):
        client.get_waiter("command_executed").wait(
            CommandId=command_id, InstanceId=instance, WaiterConfig=FAST
        )
    shown = client.get_command_invocation(CommandId=command_id, InstanceId="web-2")
    assert shown["Status"] == shown["StatusDetails"] == "Success"
    assert shown["ResponseCode"] == 0
    assert shown["StandardOutputContent"] == "hello from web-2\n"
    assert shown["StandardErrorContent"] == "careful\n"
    assert (shown["PluginName"], shown["Comment"]) == ("runShellScript", "greeting")
    start = datetime.fromisoformat(shown["ExecutionStartDateTime"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(shown["ExecutionEndDateTime"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - start) < timedelta(minutes=1) and start <= end
    command = finished(client, command_id)
    assert (command["Status"], command["StatusDetails"]) == ("Success", "Success")
    assert (command["TargetCount"], command["CompletedCount"], command["ErrorCount"]) == (2, 2, 0)
    assert command["InstanceIds"] == ["web-1", "web-2"] and command["TimeoutSeconds"] == 60
    assert isinstance(command["RequestedDateTime"], datetime)  # epoch seconds on the wire
    names = {
        i["InstanceId"]: i["InstanceName"]
        for i in client.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    }
    assert names == {"web-1": "first web", "web-2": "web-2"}


def test_a_failing_script_fails_the_waiter_and_keeps_its_exit_code(daemon: DaemonProcess) -> None:
    client = daemon.client()
    command_id = send(client, ["echo about to fail", "echo broken >&2", "exit 3"])
    with pytest.raises(WaiterError, match="Failed"):
        client.get_waiter("command_executed").wait(
            CommandId=command_id, InstanceId="web-1", WaiterConfig=FAST
        )
    shown = client.get_command_invocation(CommandId=command_id, InstanceId="web-1")
    assert (shown["Status"], shown["ResponseCode"]) == ("Failed", 3)
    assert shown["StandardOutputContent"] == "about to fail\n"
    assert "broken" in shown["StandardErrorContent"]
    command = finished(client, command_id)
    assert (command["Status"], command["ErrorCount"]) == ("Failed", 1)


def test_targets_by_tag_and_resource_group(daemon: DaemonProcess) -> None:
    client = daemon.client()
    by_tag = send(client, ["hostname >/dev/null"], Targets=[{"Key": "tag:Role", "Values": ["web"]}])
    by_group = send(
        client, ["true"], Targets=[{"Key": "resource-groups:Name", "Values": ["databases"]}]
    )
    assert finished(client, by_tag)["TargetCount"] == 2
    assert finished(client, by_group)["TargetCount"] == 1
    listed = client.list_command_invocations(CommandId=by_group)["CommandInvocations"]
    assert [i["InstanceId"] for i in listed] == ["db-1"]
    nobody = send(client, ["true"], Targets=[{"Key": "tag:Role", "Values": ["nobody"]}])
    command = finished(client, nobody)
    assert (command["Status"], command["StatusDetails"], command["TargetCount"]) == (
        "Failed",
        "No Instances In Tag",
        0,
    )


def test_output_is_truncated_as_ssm_does_but_kept_whole(daemon: DaemonProcess) -> None:
    client = daemon.client()
    script = "head -c 30000 /dev/zero | tr '\\0' o; head -c 9000 /dev/zero | tr '\\0' e >&2"
    command_id = send(client, [script])
    finished(client, command_id)
    shown = client.get_command_invocation(CommandId=command_id, InstanceId="web-1")
    assert shown["StandardOutputContent"] == "o" * 24_000
    assert shown["StandardErrorContent"] == "e" * 8_000
    detailed = client.list_command_invocations(CommandId=command_id, Details=True)
    plugins = detailed["CommandInvocations"][0]["CommandPlugins"]
    assert [p["Name"] for p in plugins] == ["runShellScript"]
    assert len(plugins[0]["Output"]) <= 2500 and plugins[0]["Output"].startswith("ooo")
    assert isinstance(plugins[0]["ResponseStartDateTime"], datetime)
    plain = client.list_command_invocations(CommandId=command_id)
    assert plain["CommandInvocations"][0]["CommandPlugins"] == []


def test_a_document_with_two_steps_and_its_plugin_names(daemon: DaemonProcess) -> None:
    client = daemon.client()
    command = client.send_command(
        DocumentName="two-steps", InstanceIds=["db-1"], Parameters={"Word": ["there"]}
    )["Command"]
    command_id = command["CommandId"]
    assert finished(client, command_id)["Status"] == "Failed"
    first = client.get_command_invocation(
        CommandId=command_id, InstanceId="db-1", PluginName="first"
    )
    assert (first["Status"], first["ResponseCode"]) == ("Success", 0)
    assert first["StandardOutputContent"].startswith("first there")
    second = client.get_command_invocation(
        CommandId=command_id, InstanceId="db-1", PluginName="second"
    )
    assert (second["Status"], second["ResponseCode"]) == ("Failed", 4)
    with pytest.raises(ClientError) as error:
        client.get_command_invocation(CommandId=command_id, InstanceId="db-1", PluginName="third")
    assert code_of(error) == "InvalidPluginName"


def test_a_command_document_created_through_the_api_runs(daemon: DaemonProcess) -> None:
    client = daemon.client()
    name = f"stored-{uuid.uuid4().hex[:8]}"
    client.create_document(
        Name=name,
        Content=json.dumps(
            {
                "schemaVersion": "2.2",
                "description": "stored",
                "mainSteps": [
                    {"action": "aws:runShellScript", "name": "say",
                     "inputs": {"runCommand": ["echo stored document"]}}
                ],
            }
        ),
        DocumentType="Command",
    )  # fmt: skip
    command_id = client.send_command(DocumentName=name, InstanceIds=["web-1"])["Command"][
        "CommandId"
    ]
    assert finished(client, command_id)["Status"] == "Success"
    shown = client.get_command_invocation(CommandId=command_id, InstanceId="web-1")
    assert shown["StandardOutputContent"] == "stored document\n"


def test_parameter_store_references_are_read_before_delivery(daemon: DaemonProcess) -> None:
    client = daemon.client()
    name = f"/commands/{uuid.uuid4().hex[:8]}/greeting"
    client.put_parameter(Name=name, Value="from the store", Type="String")
    command_id = send(client, ["echo {{ssm:" + name + "}}"])
    assert finished(client, command_id)["Status"] == "Success"
    shown = client.get_command_invocation(CommandId=command_id, InstanceId="web-1")
    assert shown["StandardOutputContent"] == "from the store\n"
    client.put_parameter(Name=name + "-secret", Value="hush", Type="SecureString")
    for missing in (name + "-absent", name + "-secret"):
        with pytest.raises(ClientError) as error:
            send(client, ["echo {{ ssm:" + missing + " }}"])
        assert code_of(error) == "InvalidParameters"


# -- listings -------------------------------------------------------------------------------


def test_list_paginators_filters_and_tokens(daemon: DaemonProcess) -> None:
    client = daemon.client()
    before = datetime.now(UTC)
    ids = [send(client, [f"echo {n}"], InstanceIds=["db-1"]) for n in range(3)]
    for command_id in ids:
        finished(client, command_id)
    pages = client.get_paginator("list_commands").paginate(
        InstanceId="db-1",
        Filters=[{"key": "InvokedAfter", "value": before.isoformat()}],
        PaginationConfig={"PageSize": 1},
    )
    seen = [c["CommandId"] for page in pages for c in page["Commands"]]
    assert seen == list(reversed(ids))  # newest first, one per page
    invocations = client.get_paginator("list_command_invocations").paginate(
        InstanceId="db-1",
        Filters=[{"key": "InvokedAfter", "value": before.isoformat()}],
        PaginationConfig={"PageSize": 2},
    )
    listed = [i["CommandId"] for page in invocations for i in page["CommandInvocations"]]
    assert listed == list(reversed(ids))
    complete = client.list_commands(
        Filters=[
            {"key": "ExecutionStage", "value": "Complete"},
            {"key": "Status", "value": "Success"},
            {"key": "DocumentName", "value": "AWS-RunShellScript"},
        ]
    )["Commands"]
    assert set(ids) <= {c["CommandId"] for c in complete}
    assert all(c["Status"] == "Success" for c in complete)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        client.list_commands(Filters=[{"key": "InvokedAfter", "value": future}])["Commands"] == []
    )
    with pytest.raises(ClientError) as error:
        client.list_commands(Filters=[{"key": "Colour", "value": "blue"}])
    assert code_of(error) == "InvalidFilterKey"
    with pytest.raises(ClientError) as error:
        client.list_commands(NextToken="not-a-token")
    assert code_of(error) == "InvalidNextToken"


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"InstanceIds": ["web-9"]}, "InvalidInstanceId"),
        ({"InstanceIds": ["web-1", "web-1"]}, "DuplicateInstanceId"),
        ({"DocumentName": "No-Such-Document"}, "InvalidDocument"),
        ({"DocumentName": "hello-world"}, "InvalidDocument"),  # an Automation runbook
        ({"DocumentVersion": "7"}, "InvalidDocumentVersion"),
        ({"Parameters": {"commands": ["true"], "colour": ["blue"]}}, "InvalidParameters"),
        ({"Parameters": {}}, "InvalidParameters"),  # commands is required
        ({"MaxConcurrency": "0"}, "ValidationException"),
    ],
)
def test_send_command_refuses_what_aws_refuses(
    daemon: DaemonProcess, request_: dict[str, Any], code: str
) -> None:
    request = {
        "DocumentName": "AWS-RunShellScript",
        "InstanceIds": ["web-1"],
        "Parameters": {"commands": ["true"]},
        **request_,
    }
    with pytest.raises(ClientError) as error:
        daemon.client().send_command(**request)
    assert code_of(error) == code


def test_unknown_commands_and_invocations_give_the_aws_errors(daemon: DaemonProcess) -> None:
    client = daemon.client()
    unknown = str(uuid.uuid4())
    with pytest.raises(ClientError) as error:
        client.get_command_invocation(CommandId=unknown, InstanceId="web-1")
    assert code_of(error) == "InvocationDoesNotExist"
    command_id = send(client, ["true"])
    with pytest.raises(ClientError) as error:
        client.get_command_invocation(CommandId=command_id, InstanceId="web-2")
    assert code_of(error) == "InvocationDoesNotExist"
    for call in (client.list_commands, client.list_command_invocations):
        with pytest.raises(ClientError) as error:
            call(CommandId=unknown)
        assert code_of(error) == "InvalidCommandId"
    with pytest.raises(ClientError) as error:
        client.cancel_command(CommandId=unknown)
    assert code_of(error) == "InvalidCommandId"
    with pytest.raises(ClientError) as error:
        client.cancel_command(CommandId=command_id, InstanceIds=["db-1"])
    assert code_of(error) == "InvalidInstanceId"


def test_the_policy_governs_operations_and_documents(daemon: DaemonProcess) -> None:
    with pytest.raises(ClientError) as error:
        daemon.client(VIEWER).send_command(
            DocumentName="AWS-RunShellScript",
            InstanceIds=["web-1"],
            Parameters={"commands": ["true"]},
        )
    assert code_of(error) == "AccessDeniedException"
    limited = daemon.client(LIMITED)
    with pytest.raises(ClientError) as error:
        limited.send_command(
            DocumentName="AWS-RunShellScript",
            InstanceIds=["web-1"],
            Parameters={"commands": ["true"]},
        )
    assert code_of(error) == "AccessDeniedException"
    theirs = limited.send_command(DocumentName="quick-hello", InstanceIds=["web-1"])["Command"]
    assert finished(limited, theirs["CommandId"])["Status"] == "Success"
    others = send(daemon.client(ALICE), ["true"])
    finished(daemon.client(), others)
    with pytest.raises(ClientError) as error:
        limited.get_command_invocation(CommandId=others, InstanceId="web-1")
    assert code_of(error) == "AccessDeniedException"
    visible = {c["CommandId"] for c in limited.list_commands()["Commands"]}
    assert theirs["CommandId"] in visible and others not in visible


# -- cancellation ---------------------------------------------------------------------------


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_kills_the_running_script_and_cancels_the_rest(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    client = daemon.client()
    marker = tmp_path / "pid"
    command_id = send(
        client,
        [f"echo $$ > {marker}.$AWS_SSM_INSTANCE_ID", "exec sleep 120"],
        Targets=[{"Key": "tag:Role", "Values": ["web"]}],
        MaxConcurrency="1",
    )
    pid_file = wait_for(
        lambda: next((p for p in tmp_path.glob("pid.*") if p.read_text().strip()), None),
        20,
        "the first script to start",
    )
    pid = int(pid_file.read_text())
    assert alive(pid)
    assert client.cancel_command(CommandId=command_id)["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(WaiterError, match="Cancelled"):
        client.get_waiter("command_executed").wait(
            CommandId=command_id, InstanceId=pid_file.suffix[1:], WaiterConfig=FAST
        )
    command = finished(client, command_id)
    assert command["Status"] == "Cancelled"
    statuses = {
        i["InstanceId"]: (i["Status"], i["StatusDetails"])
        for i in client.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    }
    assert statuses == {"web-1": ("Cancelled", "Cancelled"), "web-2": ("Cancelled", "Cancelled")}
    wait_for(lambda: not alive(pid), 10, "the cancelled script to die")
    assert len(list(tmp_path.glob("pid.*"))) == 1  # the second never started


def test_cancelling_one_instance_leaves_the_others_running(daemon: DaemonProcess) -> None:
    client = daemon.client()
    command_id = send(
        client,
        ['if [ "$AWS_SSM_INSTANCE_ID" = web-1 ]; then sleep 120; fi', "echo survived"],
        InstanceIds=["web-1", "web-2"],
        MaxErrors="1",
    )

    def first_running() -> bool:
        shown = client.list_command_invocations(CommandId=command_id, InstanceId="web-1")
        return bool(shown["CommandInvocations"][0]["Status"] == "InProgress")

    wait_for(first_running, 20, "web-1 to start")
    client.cancel_command(CommandId=command_id, InstanceIds=["web-1"])
    command = finished(client, command_id)
    stopped = client.get_command_invocation(CommandId=command_id, InstanceId="web-1")
    kept = client.get_command_invocation(CommandId=command_id, InstanceId="web-2")
    assert stopped["Status"] == "Cancelled"
    assert (kept["Status"], kept["StandardOutputContent"]) == ("Success", "survived\n")
    assert command["Status"] == "Cancelled"  # every invocation succeeded or was cancelled


# -- SSH and the aws CLI --------------------------------------------------------------------


def test_an_ssh_instance_runs_and_its_cancelled_command_dies_there(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    client = daemon.client()
    command_id = send(client, ["echo over ssh on $AWS_SSM_INSTANCE_ID"], InstanceIds=["ssh-1"])
    client.get_waiter("command_executed").wait(
        CommandId=command_id, InstanceId="ssh-1", WaiterConfig=FAST
    )
    shown = client.get_command_invocation(CommandId=command_id, InstanceId="ssh-1")
    assert shown["StandardOutputContent"] == "over ssh on ssh-1\n"
    marker = tmp_path / "remote-pid"  # the sshd is on this machine: its files are ours
    long = send(client, [f"echo $$ > {marker}", "exec sleep 120"], InstanceIds=["ssh-1"])
    wait_for(lambda: marker.exists() and marker.read_text().strip(), 20, "the remote sleep")
    pid = int(marker.read_text())
    assert alive(pid)
    client.cancel_command(CommandId=long)
    assert finished(client, long)["Status"] == "Cancelled"
    wait_for(lambda: not alive(pid), 20, "the remote sleep to be killed")


def aws(daemon: DaemonProcess, *args: str) -> Any:
    executable = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if executable is None:
        pytest.fail("the aws CLI is not installed (pip install awscli: the test extra)")
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ALICE[0],
        "AWS_SECRET_ACCESS_KEY": ALICE[1],
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    environment.pop("AWS_PROFILE", None)
    result = subprocess.run(
        [executable, "ssm", *args, "--endpoint-url", daemon.url, "--region", "us-east-1",
         "--output", "json"],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip
    if result.returncode != 0:
        return {"exit": result.returncode, "stderr": result.stderr}
    return json.loads(result.stdout) if result.stdout.strip() else {}


def test_the_aws_cli_sends_waits_and_reads(daemon: DaemonProcess) -> None:
    sent = aws(
        daemon, "send-command", "--document-name", "AWS-RunShellScript",
        "--targets", "Key=tag:Role,Values=db", "--comment", "from the cli",
        "--parameters", 'commands=["echo cli says hi"]',
    )  # fmt: skip
    command_id = sent["Command"]["CommandId"]
    assert sent["Command"]["Comment"] == "from the cli"
    waited = aws(
        daemon, "wait", "command-executed", "--command-id", command_id, "--instance-id", "db-1"
    )
    assert waited == {}
    shown = aws(
        daemon, "get-command-invocation", "--command-id", command_id, "--instance-id", "db-1"
    )
    assert (shown["Status"], shown["StandardOutputContent"]) == ("Success", "cli says hi\n")
    listed = aws(daemon, "list-command-invocations", "--command-id", command_id, "--details")
    assert listed["CommandInvocations"][0]["CommandPlugins"][0]["Output"] == "cli says hi\n"
    refused = aws(
        daemon, "send-command", "--document-name", "AWS-RunShellScript", "--instance-ids", "nope-1",
        "--parameters", 'commands=["true"]',
    )  # fmt: skip
    assert refused["exit"] != 0 and "InvalidInstanceId" in refused["stderr"]
