"""aws:runCommand on SSM managed nodes the inventory does not list: SendCommand through the
AWS caller to the emulator over HTTP, the routing rule, and resume without a second command.

The emulator's Run Command is thin: a command is ``Success`` as soon as it is sent, every
invocation answers exit code 0 with no output, and ListCommandInvocations/CancelCommand
are missing. These tests check what it does implement (the request SSM received, the
command and invocation records, tag targets resolved by EC2); running, failing and
cancelled commands are in tests/test_ssm_command_states.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import boto3
import pytest
import yaml

from actions._ssm_command import run_through_ssm
from actions._ssm_route import STATE_KEY, SsmRoute
from runbook_engine import Engine, ExecutionView
from runbook_engine.aws import Boto3Caller
from runbook_engine.inventory import parse_inventory
from runbook_engine.plugin import ActionError
from runbook_engine.status import Status
from tests.action_context import FakeContext
from tests.aws_support import FAST_AWS, client, new_instance, settings

ROOT = Path(__file__).resolve().parent.parent


def runbook(tmp_path: Path, steps: list[dict[str, Any]]) -> str:
    path = tmp_path / "ssm.yaml"
    path.write_text(yaml.safe_dump({"schemaVersion": "0.3", "mainSteps": steps}))
    return str(path)


def run_command(**inputs: Any) -> dict[str, Any]:
    return {"name": "rc", "action": "aws:runCommand", "inputs": inputs}


def execute(
    tmp_path: Path, document: str, inventory: dict[str, Any] | None = None, **parameters: Any
) -> ExecutionView:
    async def main() -> ExecutionView:
        async with Engine(
            f"sqlite:///{tmp_path / 'state.db'}",
            settings=settings(),
            inventory=parse_inventory(inventory or {}),
        ) as engine:
            return await engine.run(document, parameters or None)

    return anyio.run(main)


def commands_on(instance_id: str) -> list[dict[str, Any]]:
    answer = client("ssm").list_commands(InstanceId=instance_id)
    commands: list[dict[str, Any]] = answer["Commands"]
    return commands


def all_command_ids() -> set[str]:
    return {c["CommandId"] for c in client("ssm").list_commands()["Commands"]}


@pytest.mark.usefixtures("aws_env")
def test_an_instance_not_in_the_inventory_runs_through_send_command(tmp_path: Path) -> None:
    instance_id = new_instance()
    steps = [
        run_command(
            DocumentName="AWS-RunShellScript",
            InstanceIds=[instance_id],
            Comment="disk usage",
            TimeoutSeconds=600,
            Parameters={"commands": ["df -h", "uptime"], "executionTimeout": "60"},
        )
    ]
    view = execute(tmp_path, runbook(tmp_path, steps))
    step = view.step("rc")
    assert step.status == Status.SUCCESS, step.failure_message
    (sent,) = commands_on(instance_id)
    assert step.outputs["CommandId"] == sent["CommandId"]
    assert sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["Comment"] == "disk usage"
    assert sent["TimeoutSeconds"] == 600
    assert sent["Parameters"] == {"commands": ["df -h", "uptime"], "executionTimeout": ["60"]}
    assert step.outputs["Status"] == "Success"
    assert step.outputs["ResponseCode"] == 0
    assert step.outputs["Output"] == ""  # the emulator's invocations print nothing
    (record,) = step.response["CommandInvocations"]
    assert record["InstanceId"] == instance_id and record["Status"] == "Success"
    assert record["CommandPlugins"][0]["Name"] == "aws:runShellScript"
    assert step.response["RunOn"] == "AWS SSM"


@pytest.mark.usefixtures("aws_env")
def test_tag_targets_the_inventory_does_not_match_are_passed_to_send_command(
    tmp_path: Path,
) -> None:
    tagged = new_instance()
    client("ec2").create_tags(Resources=[tagged], Tags=[{"Key": "Stage", "Value": "canary-7"}])
    inventory = {"instances": [{"id": "here", "local": {}, "tags": {"Stage": "prod"}}]}
    targets = [{"Key": "tag:Stage", "Values": ["canary-7"]}]
    steps = [run_command(DocumentName="AWS-RunShellScript", Targets=targets,
                         Parameters={"commands": "echo hi"})]  # fmt: skip
    view = execute(tmp_path, runbook(tmp_path, steps), inventory)
    step = view.step("rc")
    assert step.status == Status.SUCCESS, step.failure_message
    (sent,) = commands_on(tagged)
    assert sent["Targets"] == targets
    assert sent["Parameters"] == {"commands": ["echo hi"]}
    assert [r["InstanceId"] for r in step.response["CommandInvocations"]] == [tagged]
    assert "match no instance in the inventory" in step.logs


@pytest.mark.usefixtures("aws_env")
def test_tag_targets_the_inventory_matches_stay_local(tmp_path: Path) -> None:
    marker = tmp_path / "ran-here"
    inventory = {"instances": [{"id": "here", "local": {}, "tags": {"Stage": "prod"}}]}
    before = all_command_ids()
    steps = [run_command(DocumentName="AWS-RunShellScript",
                         Targets=[{"Key": "tag:Stage", "Values": ["prod"]}],
                         Parameters={"commands": [f"touch {marker}"]})]  # fmt: skip
    view = execute(tmp_path, runbook(tmp_path, steps), inventory)
    assert view.step("rc").status == Status.SUCCESS, view.step("rc").failure_message
    assert marker.exists()
    assert all_command_ids() == before
    assert "RunOn" not in view.step("rc").response


@pytest.mark.usefixtures("aws_env")
def test_a_step_mixing_inventory_and_ssm_nodes_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran-here"
    instance_id = new_instance()
    steps = [run_command(DocumentName="AWS-RunShellScript", InstanceIds=["here", instance_id],
                         Parameters={"commands": [f"touch {marker}"]})]  # fmt: skip
    view = execute(tmp_path, runbook(tmp_path, steps), {"instances": [{"id": "here", "local": {}}]})
    step = view.step("rc")
    assert step.status == Status.FAILED
    assert step.failure_stage == "PreVerification"
    assert (
        f"InstanceIds mix instances of the inventory (here) with ids it does not list "
        f"({instance_id}), which would go to AWS SSM (SendCommand)" in (step.failure_message or "")
    )
    assert "split them into two aws:runCommand steps" in (step.failure_message or "")
    assert not marker.exists()
    assert commands_on(instance_id) == []


def test_ids_not_in_the_inventory_without_aws_configured_are_not_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    steps = [run_command(DocumentName="AWS-RunShellScript", InstanceIds=["i-0123456789abcdef0"],
                         Parameters={"commands": ["true"]})]  # fmt: skip
    view = execute(tmp_path, runbook(tmp_path, steps))
    message = view.step("rc").failure_message or ""
    assert "Instance ids not in the inventory (<inventory>): i-0123456789abcdef0" in message
    assert "AWS is not configured" in message and "not sent to SSM" in message


@pytest.mark.usefixtures("aws_env")
def test_ssm_errors_come_through_the_caller_with_the_reason_for_ssm(tmp_path: Path) -> None:
    """A request SSM's model rejects (a NotificationConfig member it lacks) fails
    InputValidation before anything is sent, and says why SSM was asked at all."""
    before = all_command_ids()
    steps = [run_command(DocumentName="AWS-RunShellScript", InstanceIds=["i-0123456789abcdef0"],
                         NotificationConfig={"NotificationArn": "arn:x", "Bogus": "1"},
                         Parameters={"commands": ["true"]})]  # fmt: skip
    view = execute(tmp_path, runbook(tmp_path, steps))
    step = view.step("rc")
    assert step.status == Status.FAILED
    assert step.failure_stage == "InputValidation"
    message = step.failure_message or ""
    assert (
        "aws:runCommand on AWS SSM (i-0123456789abcdef0 not in the inventory (<inventory>)): "
        "ssm.SendCommand: invalid parameters" in message
    ), message
    assert "Bogus" in message
    assert all_command_ids() == before


# -- resume: never a second command ----------------------------------------------------------


def context(state: dict[str, Any], region: str = "us-east-1") -> tuple[FakeContext, Boto3Caller]:
    caller = Boto3Caller(replace(FAST_AWS, region=region))
    return FakeContext(state=state, aws=caller, region=region), caller


def route_to(instance_id: str) -> SsmRoute:
    return SsmRoute(instance_ids=(instance_id,), reason=f"{instance_id} not in the inventory")


INPUTS = {"DocumentName": "AWS-RunShellScript", "Comment": "resume test",
          "Parameters": {"commands": ["true"]}}  # fmt: skip


@pytest.mark.usefixtures("aws_env")
def test_a_resumed_step_with_a_command_id_only_polls() -> None:
    instance_id = new_instance()
    first = client("ssm").send_command(InstanceIds=[instance_id], **INPUTS)["Command"]
    route = route_to(instance_id)
    state = {"route": route.as_state(), "sending": "2020-01-01T00:00:00+00:00",
             "CommandId": first["CommandId"]}  # fmt: skip
    ctx, caller = context({STATE_KEY: state})
    try:
        result = anyio.run(run_through_ssm, {**INPUTS, "InstanceIds": [instance_id]}, ctx, route)
    finally:
        caller.close()
    assert result.outputs["CommandId"] == first["CommandId"]
    assert [c["CommandId"] for c in commands_on(instance_id)] == [first["CommandId"]]
    assert ctx.checkpoints == []  # nothing to record again


@pytest.mark.usefixtures("aws_env")
def test_a_step_interrupted_after_sending_adopts_its_command() -> None:
    """The engine died after SendCommand but before recording the id: the command sent
    since the 'sending' mark with the same document, nodes and comment is the step's.

    In its own region, since the emulator lists every instance of the region as a node
    of every command sent by InstanceIds."""
    region = "eu-west-3"
    ssm = boto3.client("ssm", region_name=region)
    instance_id = boto3.client("ec2", region_name=region).run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]
    ssm.send_command(InstanceIds=[instance_id], **{**INPUTS, "Comment": "another"})
    sent = ssm.send_command(InstanceIds=[instance_id], **INPUTS)["Command"]
    route = route_to(instance_id)
    sending = sent["RequestedDateTime"].isoformat()
    ctx, caller = context({STATE_KEY: {"route": route.as_state(), "sending": sending}}, region)
    try:
        result = anyio.run(run_through_ssm, {**INPUTS, "InstanceIds": [instance_id]}, ctx, route)
    finally:
        caller.close()
    assert result.outputs["CommandId"] == sent["CommandId"]
    assert len(ssm.list_commands(InstanceId=instance_id)["Commands"]) == 2  # none sent here
    assert ctx.checkpoints[-1][STATE_KEY]["CommandId"] == sent["CommandId"]


@pytest.mark.usefixtures("aws_env")
def test_a_step_interrupted_before_its_command_is_found_fails_and_sends_nothing() -> None:
    instance_id = new_instance()
    route = route_to(instance_id)
    ctx, caller = context(
        {STATE_KEY: {"route": route.as_state(), "sending": "2020-01-01T00:00:00+00:00"}}
    )
    try:
        with pytest.raises(ActionError, match=r"interrupted while sending .* not sent twice"):
            anyio.run(run_through_ssm, {**INPUTS, "InstanceIds": [instance_id]}, ctx, route)
    finally:
        caller.close()
    assert commands_on(instance_id) == []
