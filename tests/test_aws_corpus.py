"""Public runbooks from the corpus, unmodified, against the AWS emulator over HTTP: AWS's
own documentation sample, AWS Solutions' and AWS Labs' runbooks, a chaos-engineering one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runbook_engine.status import Status
from tests.aws_support import client, new_instance, run

pytestmark = pytest.mark.usefixtures("aws_env")


@pytest.fixture
def state(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def role(name: str) -> str:
    iam = client("iam")
    try:
        arn: str = iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return arn


def test_enable_key_rotation_runs_as_its_assume_role(corpus: Path, state: str) -> None:
    """aws-solutions: executeAwsApi (kms EnableKeyRotation), then assert KeyRotationEnabled
    is 'True', all through assumeRole."""
    key = client("kms").create_key()["KeyMetadata"]["KeyId"]
    document = corpus / "automation/aws-solutions__automated-security-response-on-aws/EnableKeyRotation.yaml"
    view = run(state, str(document), {"KeyId": key, "AutomationAssumeRole": role("asr-remediation")})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert client("kms").get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True
    assert view.execution.outputs["EnableKeyRotation.EnableKeyRotationResponse"] == {}


def test_the_user_guides_api_sample_launches_and_checks_an_instance(
    corpus: Path, state: str
) -> None:
    """awsdocs: DescribeImages with a name filter, RunInstances, waitFor and assert."""
    document = corpus / "automation/awsdocs__aws-systems-manager-user-guide/automation-action-outputs-inputs__block1.yaml"
    view = run(state, str(document), {"ImageName": "Windows_Server-2016-English-Full-Base*"})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    instance = view.execution.outputs["launchOneInstance.InstanceId"]
    described = client("ec2").describe_instances(InstanceIds=[instance])
    found: dict[str, Any] = described["Reservations"][0]["Instances"][0]
    assert found["State"]["Name"] == "running"
    assert found["ImageId"] == view.step("getImageId").outputs["ImageId"]
    assert [s.step_name for s in view.steps] == [
        "getImageId",
        "launchOneInstance",
        "waitUntilInstanceStateRunning",
        "assertInstanceStateRunning",
    ]


def test_the_chaos_reboot_runbook(corpus: Path, state: str) -> None:
    document = corpus / "automation/adhorn__chaos-ssm-documents/reboot-instance-api.yaml"
    parameters = {
        "InstanceId": new_instance(),
        "TagName": "chaos",
        "TagValue": "yes",
        "AutomationAssumeRole": role("chaos"),
    }
    view = run(state, str(document), parameters)
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert [s.status for s in view.steps] == [Status.SUCCESS] * 3


def test_the_chaos_reboot_runbook_stops_on_a_stopped_instance(corpus: Path, state: str) -> None:
    instance = new_instance()
    client("ec2").stop_instances(InstanceIds=[instance])
    document = corpus / "automation/adhorn__chaos-ssm-documents/reboot-instance-api.yaml"
    parameters = {"InstanceId": instance, "TagName": "a", "TagValue": "b", "AutomationAssumeRole": role("chaos")}
    view = run(state, str(document), parameters)
    assert view.status == Status.FAILED
    assert [s.step_name for s in view.steps] == ["AssertRunning"]
    assert "is 'stopped', not one of ['running']" in (view.step("AssertRunning").failure_message or "")


def test_aws_labs_delete_cloudformation_stack(corpus: Path, state: str) -> None:
    cloudformation = client("cloudformation")
    stack_id = cloudformation.create_stack(
        StackName="to-delete",
        TemplateBody='{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}',
    )["StackId"]
    document = corpus / "automation/awslabs__aws-systems-manager/aws-DeleteCloudFormation.json"
    view = run(state, str(document), {"StackNameOrId": "to-delete"})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    status = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
    assert status == "DELETE_COMPLETE"
