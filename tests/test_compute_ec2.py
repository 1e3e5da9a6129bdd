"""The EC2-shaped actions on EC2, through the engine and the AWS caller against the
emulator over HTTP: the golden-image workflow's shape, the states waited for, and a
repeated launch that returns the first one's instances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from runbook_engine.status import Status
from tests.aws_support import client, new_instance, run, settings

pytestmark = pytest.mark.usefixtures("aws_env")
BASE_AMI = "ami-12345678"


@pytest.fixture
def state(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def runbook(tmp_path: Path, steps: list[dict[str, Any]], parameters: Any = None) -> str:
    path = tmp_path / "ec2.yaml"
    document = {"schemaVersion": "0.3", "parameters": parameters or {}, "mainSteps": steps}
    path.write_text(yaml.safe_dump(document))
    return str(path)


def instance_state(instance_id: str) -> str:
    answer = client("ec2").describe_instances(InstanceIds=[instance_id])
    return str(answer["Reservations"][0]["Instances"][0]["State"]["Name"])


GOLDEN_EC2 = [
    {"name": "launch", "action": "aws:runInstances",
     "inputs": {"ImageId": "{{ BaseImageId }}", "InstanceType": "t3.micro",
                "MinInstanceCount": 1, "MaxInstanceCount": 1}},
    {"name": "tag", "action": "aws:createTags",
     "inputs": {"ResourceIds": "{{ launch.InstanceIds }}",
                "Tags": [{"Key": "Purpose", "Value": "golden-build"}]}},
    {"name": "createImage", "action": "aws:createImage",
     "inputs": {"InstanceId": "{{ launch.InstanceIds }}", "ImageName": "{{ ImageName }}",
                "NoReboot": True}},
    {"name": "copyImage", "action": "aws:copyImage",
     "inputs": {"SourceRegion": "us-east-1", "SourceImageId": "{{ createImage.ImageId }}",
                "ImageName": "{{ ImageName }}-copy"}},
    {"name": "terminate", "action": "aws:changeInstanceState",
     "inputs": {"InstanceIds": "{{ launch.InstanceIds }}", "DesiredState": "terminated"}},
    {"name": "deleteCopy", "action": "aws:deleteImage",
     "inputs": {"ImageId": "{{ copyImage.ImageId }}"}},
]  # fmt: skip


def test_golden_image_shape_on_ec2(state: str, tmp_path: Path) -> None:
    """The golden-image runbook's EC2 steps (the emulator has no machines to run the
    configure commands on): launch, tag, image, copy, terminate, delete the copy."""
    parameters = {"BaseImageId": {"type": "String"}, "ImageName": {"type": "String"}}
    document = runbook(tmp_path, GOLDEN_EC2, parameters)
    view = run(state, document, {"BaseImageId": BASE_AMI, "ImageName": "golden-ec2"})
    assert view.status == Status.SUCCESS, view.failure_message
    (instance_id,) = view.step("launch").outputs["InstanceIds"]
    assert instance_id.startswith("i-")
    assert view.step("launch").outputs["InstanceStates"] == ["running"]
    ec2 = client("ec2")
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
    instance = described["Instances"][0]
    assert instance["InstanceType"] == "t3.micro"
    assert {"Key": "Purpose", "Value": "golden-build"} in instance["Tags"]
    assert instance_state(instance_id) == "terminated"
    image_id = view.step("createImage").outputs["ImageId"]
    assert view.step("createImage").outputs["ImageState"] == "available"
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["Name"] == "golden-ec2"
    copy_id = view.step("copyImage").outputs["ImageId"]
    assert copy_id != image_id
    assert ec2.describe_images(Filters=[{"Name": "image-id", "Values": [copy_id]}])["Images"] == []


def test_stop_then_check_state_only_then_start(state: str, tmp_path: Path) -> None:
    instance_id = new_instance(BASE_AMI)
    steps = [
        {"name": "stop", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": [instance_id], "DesiredState": "stopped", "Force": True}},
        {"name": "check", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": [instance_id], "DesiredState": "stopped",
                    "CheckStateOnly": True}},
        {"name": "start", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": [instance_id], "DesiredState": "running"}},
    ]  # fmt: skip
    view = run(state, runbook(tmp_path, steps))
    assert view.status == Status.SUCCESS, view.failure_message
    assert view.step("check").outputs["InstanceStates"] == ["stopped"]
    assert instance_state(instance_id) == "running"


def test_check_state_only_changes_nothing(state: str, tmp_path: Path) -> None:
    """Waiting for 'stopped' on a running instance times out and leaves it running."""
    instance_id = new_instance(BASE_AMI)
    steps = [
        {"name": "check", "action": "aws:changeInstanceState", "timeoutSeconds": 1,
         "inputs": {"InstanceIds": [instance_id], "DesiredState": "stopped",
                    "CheckStateOnly": True}},
    ]  # fmt: skip
    view = run(state, runbook(tmp_path, steps))
    assert view.step("check").status == Status.TIMED_OUT
    assert instance_state(instance_id) == "running"


def test_instance_entering_terminated_fails_the_wait(state: str, tmp_path: Path) -> None:
    instance_id = new_instance(BASE_AMI)
    client("ec2").terminate_instances(InstanceIds=[instance_id])
    steps = [
        {"name": "wait", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": [instance_id], "DesiredState": "running",
                    "CheckStateOnly": True}},
    ]  # fmt: skip
    view = run(state, runbook(tmp_path, steps))
    assert view.status == Status.FAILED
    message = view.step("wait").failure_message or ""
    assert f"Instance {instance_id} entered unexpected state terminated" in message


def test_running_the_launch_step_again_creates_no_second_instance() -> None:
    """Two runs of one step execution (a retry or a resume before the checkpoint) send
    the same ClientToken; a resume after the checkpoint launches nothing at all."""
    from actions.run_instances import run as run_instances
    from runbook_engine.aws import Boto3Caller
    from tests.action_context import FakeContext

    inputs = {"ImageId": BASE_AMI, "MinInstanceCount": 1, "MaxInstanceCount": 1}

    async def main() -> tuple[list[Any], list[Any], FakeContext]:
        caller = Boto3Caller(settings().aws)
        outputs = []
        contexts = []
        for _ in range(2):
            ctx = FakeContext(step_execution_id="launch-step", aws=caller)
            result = await run_instances(inputs, ctx)
            outputs.append(result.outputs["InstanceIds"])
            contexts.append(ctx)
        resumed = FakeContext(
            step_execution_id="other", aws=caller, state=contexts[0].checkpoints[-1]
        )
        again = await run_instances(inputs, resumed)
        caller.close()
        return outputs, again.outputs["InstanceIds"], resumed

    outputs, after_checkpoint, resumed = anyio.run(main)
    assert outputs[0] == outputs[1]
    assert after_checkpoint == outputs[0]
    assert resumed.checkpoints == []
    token = client("ec2").describe_instances(InstanceIds=outputs[0])
    assert len(token["Reservations"][0]["Instances"]) == 1


def test_ami_like_image_name_is_a_clear_error(state: str, tmp_path: Path) -> None:
    steps = [
        {"name": "bad", "action": "aws:runInstances", "inputs": {"ImageId": "ami-web"}},
    ]
    view = run(state, runbook(tmp_path, steps))
    assert view.status == Status.FAILED
    assert "docker:ami-web" in (view.step("bad").failure_message or "")
