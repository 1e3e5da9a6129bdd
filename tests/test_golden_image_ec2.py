"""runbooks/golden-image-ec2.yaml end to end against the emulator over HTTP: launch from a
base AMI, configure and test through Run Command (SendCommand), create and tag the AMI,
terminate the instance; and its dry run, which sends nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runbook_engine.status import Status
from tests.aws_support import client, run

pytestmark = pytest.mark.usefixtures("aws_env")
ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = str(ROOT / "runbooks" / "golden-image-ec2.yaml")
BASE_AMI = "ami-12345678"


@pytest.fixture
def instance_profile() -> str:
    name = "golden-build-ssm"
    iam = client("iam")
    if name not in {
        p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]
    }:
        iam.create_instance_profile(InstanceProfileName=name)
    return name


def test_the_golden_ami_is_built_tagged_and_the_instance_terminated(
    tmp_path: Path, instance_profile: str
) -> None:
    parameters = {
        "BaseImageId": BASE_AMI,
        "IamInstanceProfileName": instance_profile,
        "ImageName": "web-golden",
        "ConfigureCommands": ["yum install -y nginx", "systemctl enable nginx"],
        "TestCommands": ["nginx -t"],
    }
    view = run(f"sqlite:///{tmp_path / 'state.db'}", RUNBOOK, parameters)
    assert view.status == Status.SUCCESS, view.failure_message
    (instance_id,) = view.step("launch").outputs["InstanceIds"]
    image_id = view.execution.outputs["createImage.ImageId"]
    assert image_id == view.step("createImage").outputs["ImageId"]
    ec2, ssm = client("ec2"), client("ssm")
    (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    assert image["Name"].startswith("web-golden-")
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags == {"Name": "web-golden", "SourceAmi": BASE_AMI, "BuiltBy": view.execution_id}
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
    assert described["Instances"][0]["State"]["Name"] == "terminated"
    assert described["Instances"][0]["ImageId"] == BASE_AMI
    sent = {view.step(name).outputs["CommandId"]: name for name in ("configure", "test")}
    commands = {
        c["CommandId"]: c for c in ssm.list_commands()["Commands"] if c["CommandId"] in sent
    }
    assert len(commands) == 2
    by_step = {sent[i]: c for i, c in commands.items()}
    assert by_step["configure"]["Parameters"]["commands"] == parameters["ConfigureCommands"]
    assert by_step["test"]["Parameters"]["commands"] == ["nginx -t"]
    assert by_step["configure"]["Comment"] == f"golden AMI build from {BASE_AMI}"
    assert instance_id in by_step["test"]["InstanceIds"]
    assert "terminateAfterFailure" not in {s.step_name for s in view.steps}


def test_a_failed_launch_ends_the_build_without_an_image(tmp_path: Path) -> None:
    """No such instance profile: EC2 refuses the launch and the execution fails there."""
    parameters = {"BaseImageId": BASE_AMI, "IamInstanceProfileName": "no-such-profile"}
    images_before = len(client("ec2").describe_images(Owners=["self"])["Images"])
    view = run(f"sqlite:///{tmp_path / 'state.db'}", RUNBOOK, parameters)
    assert view.status == Status.FAILED
    assert view.step("launch").status == Status.FAILED
    assert len(client("ec2").describe_images(Owners=["self"])["Images"]) == images_before


def test_the_dry_run_classifies_run_command_and_sends_nothing(tmp_path: Path) -> None:
    commands_before = len(client("ssm").list_commands()["Commands"])
    answer = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "run", RUNBOOK, "--dry-run", "--output", "json",
         "--state", f"sqlite:///{tmp_path / 'state.db'}",
         "-p", f"BaseImageId={BASE_AMI}", "-p", "IamInstanceProfileName=p"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    steps = {s["StepName"]: s["Impact"] for s in json.loads(answer.stdout)["Steps"]}
    # AWS's execution preview table: Run Command steps are Undetermined.
    assert steps["configure"] == steps["test"] == "Undetermined"
    assert steps["launch"] == steps["createImage"] == steps["tagImage"] == "Mutating"
    assert steps["terminate"] == "Mutating"
    assert len(client("ssm").list_commands()["Commands"]) == commands_before
