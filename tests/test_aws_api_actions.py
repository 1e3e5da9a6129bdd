"""aws:executeAwsApi, aws:assertAwsResourceProperty and aws:waitForAwsResourceProperty
through the real engine, against the AWS emulator over HTTP."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from runbook_engine import Engine
from runbook_engine.status import Status
from tests.aws_support import client, new_instance, run, settings, write

pytestmark = pytest.mark.usefixtures("aws_env")


@pytest.fixture
def state(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


DESCRIBE_AND_TAG = """
schemaVersion: '0.3'
parameters:
  InstanceId: {type: String}
mainSteps:
  - name: tag
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: CreateTags
      Resources: ['{{ InstanceId }}']
      Tags: [{Key: Owner, Value: runbook}]
  - name: describe
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: describe_instances          # snake_case, as some real runbooks write it
      InstanceIds: '{{ InstanceId }}'  # a scalar where the API takes a list
    outputs:
      - {Name: State, Selector: '$.Reservations[0].Instances[0].State.Name', Type: String}
      - {Name: Code, Selector: '$.Reservations[0].Instances[0].State.Code', Type: Integer}
      - {Name: Owner, Selector: "$.Reservations[0].Instances[0].Tags[?(@.Key == 'Owner')].Value", Type: StringList}
      - {Name: Launched, Selector: '$.Reservations[0].Instances[0].LaunchTime', Type: String}
outputs: [describe.State, describe.Owner]
"""


def test_execute_aws_api_tags_and_describes_an_instance(tmp_path: Path, state: str) -> None:
    instance = new_instance()
    view = run(state, write(tmp_path, "d.yaml", DESCRIBE_AND_TAG), {"InstanceId": instance})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    outputs = view.step("describe").outputs
    assert outputs["State"] == "running"
    assert outputs["Code"] == 16
    assert outputs["Owner"] == ["runbook"]
    assert outputs["Launched"][:4].isdigit() and "T" in outputs["Launched"]  # ISO-8601 text
    response = view.step("describe").response
    assert "ResponseMetadata" not in response
    tags = client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [instance]}])
    assert {"Key": "Owner", "Value": "runbook"} in [
        {"Key": t["Key"], "Value": t["Value"]} for t in tags["Tags"]
    ]


BAD_STEP = """
schemaVersion: '0.3'
parameters:
  Service: {type: String}
  Api: {type: String}
mainSteps:
  - name: call
    action: aws:executeAwsApi
    inputs:
      Service: '{{ Service }}'
      Api: '{{ Api }}'
      %s
"""


@pytest.mark.parametrize(
    ("service", "api", "extra", "message"),
    [
        ("ec3", "DescribeInstances", "", "unknown AWS service 'ec3'"),
        ("ec2", "DescribeInstancez", "", "has no operation 'DescribeInstancez'"),
        ("ec2", "DescribeInstances", "Bogus: 1", 'Unknown parameter in input: "Bogus"'),
        ("ec2", "DescribeInstances", "MaxResults: lots", "Invalid type for parameter MaxResults"),
        ("ec2", "CreateTags", "Tags: []", 'Missing required parameter in input: "Resources"'),
    ],
)
def test_bad_service_operation_or_parameters_fail_before_the_call(
    tmp_path: Path, state: str, service: str, api: str, extra: str, message: str
) -> None:
    document = write(tmp_path, "bad.yaml", BAD_STEP % extra)
    view = run(state, document, {"Service": service, "Api": api})
    step = view.step("call")
    assert view.status == Status.FAILED
    assert step.status == Status.FAILED
    assert message in (step.failure_message or "")
    assert step.failure_stage == "InputValidation"
    assert step.failure_type == "Verification"


def test_a_service_error_fails_the_step_with_its_code_and_message(
    tmp_path: Path, state: str
) -> None:
    document = write(
        tmp_path,
        "err.yaml",
        """
schemaVersion: '0.3'
mainSteps:
  - name: describe
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: DescribeInstances, InstanceIds: [i-0000000000000dead]}
""",
    )
    view = run(state, document)
    step = view.step("describe")
    assert step.status == Status.FAILED
    assert "ec2.DescribeInstances failed: InvalidInstanceID.NotFound" in (step.failure_message or "")
    assert step.failure_type == "Action"
    assert step.failure_details == {"ErrorCode": ["InvalidInstanceID.NotFound"]}
    assert step.outputs == {}


ASSERT = """
schemaVersion: '0.3'
parameters:
  InstanceId: {type: String}
  Desired: {type: StringList}
mainSteps:
  - name: check
    action: aws:assertAwsResourceProperty
    inputs:
      Service: ec2
      Api: DescribeInstances
      InstanceIds: ['{{ InstanceId }}']
      PropertySelector: $.Reservations[0].Instances[0].EbsOptimized
      DesiredValues: '{{ Desired }}'
"""


@pytest.mark.parametrize(("desired", "status"), [(["False"], Status.SUCCESS), (["false"], Status.FAILED)])
def test_assert_compares_python_text_of_the_property(
    tmp_path: Path, state: str, desired: list[str], status: Status
) -> None:
    """Booleans compare as Python prints them: 'False', not 'false' (ssm-reference §4.2)."""
    document = write(tmp_path, "assert.yaml", ASSERT)
    view = run(state, document, {"InstanceId": new_instance(), "Desired": desired})
    step = view.step("check")
    assert step.status == status
    if status == Status.FAILED:
        assert "is 'False', not one of ['false']" in (step.failure_message or "")
        assert step.failure_type == "Verification"


WAIT = """
schemaVersion: '0.3'
parameters:
  InstanceId: {type: String}
  State: {type: String}
mainSteps:
  - name: wait
    action: aws:waitForAwsResourceProperty
    timeoutSeconds: %d
    inputs:
      Service: ec2
      Api: DescribeInstanceStatus
      IncludeAllInstances: 'true'
      InstanceIds: ['{{ InstanceId }}']
      PropertySelector: $.InstanceStatuses[0].InstanceState.Name
      DesiredValues: ['{{ State }}']
"""


def test_wait_polls_until_the_instance_reaches_the_state(tmp_path: Path, state: str) -> None:
    instance = new_instance()
    document = write(tmp_path, "wait.yaml", WAIT % 30)

    async def main() -> Status:
        async with Engine(state, settings=settings()) as engine:
            execution_id = await engine.start(document, {"InstanceId": instance, "State": "stopped"})
            async with anyio.create_task_group() as group:
                group.start_soon(engine.wait, execution_id)
                await anyio.sleep(0.5)  # several polls see 'running'
                client("ec2").stop_instances(InstanceIds=[instance])
            return (await engine.get(execution_id)).status

    assert anyio.run(main) == Status.SUCCESS


def test_wait_times_out_when_the_state_never_comes(tmp_path: Path, state: str) -> None:
    document = write(tmp_path, "wait.yaml", WAIT % 1)
    view = run(state, document, {"InstanceId": new_instance(), "State": "terminated"})
    assert view.status == Status.TIMED_OUT
    assert view.step("wait").status == Status.TIMED_OUT


def test_a_cancelled_wait_stops_at_once(tmp_path: Path, state: str) -> None:
    document = write(tmp_path, "wait.yaml", WAIT % 3600)

    async def main() -> tuple[Status, Status, float]:
        async with Engine(state, settings=settings()) as engine:
            execution_id = await engine.start(
                document, {"InstanceId": new_instance(), "State": "terminated"}
            )
            async with anyio.create_task_group() as group:
                group.start_soon(engine.wait, execution_id)
                await anyio.sleep(0.4)
                started = anyio.current_time()
                await engine.stop(execution_id)
            elapsed = anyio.current_time() - started
            view = await engine.get(execution_id)
            return view.status, view.step("wait").status, elapsed

    status, step_status, elapsed = anyio.run(main)
    assert (status, step_status) == (Status.CANCELLED, Status.CANCELLED)
    assert elapsed < 30  # not the hour of the step's timeout


def test_wait_fails_at_once_on_invalid_parameters(tmp_path: Path, state: str) -> None:
    document = write(tmp_path, "wait.yaml", (WAIT % 3600).replace("IncludeAllInstances", "Nope"))
    view = run(state, document, {"InstanceId": new_instance(), "State": "running"})
    step = view.step("wait")
    assert step.status == Status.FAILED
    assert 'Unknown parameter in input: "Nope"' in (step.failure_message or "")


def test_runbooks_that_never_call_aws_never_make_a_session(tmp_path: Path, state: str) -> None:
    document = write(
        tmp_path,
        "local.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n  - {name: nap, action: aws:sleep, inputs: {Duration: PT0S}}\n",
    )

    async def main() -> object:
        async with Engine(state, settings=settings()) as engine:
            await engine.run(document)
            return engine._aws

    assert anyio.run(main) is None


def test_idempotency_tokens_come_from_the_execution_and_step(tmp_path: Path, state: str) -> None:
    """RunInstances' ClientToken, left out by the runbook, is derived from the execution
    and the step execution, so a re-run of that step asks AWS for the same launch."""
    from actions.aws_common import idempotency_token

    document = write(
        tmp_path,
        "launch.yaml",
        """
schemaVersion: '0.3'
mainSteps:
  - name: launch
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: RunInstances, ImageId: ami-12345678, MinCount: 1, MaxCount: 1}
    outputs: [{Name: Id, Selector: '$.Instances[0].InstanceId'}]
""",
    )
    view = run(state, document)
    assert view.status == Status.SUCCESS, view.execution.failure_message
    step = view.step("launch")
    instance = step.outputs["Id"]
    described = client("ec2").describe_instances(InstanceIds=[instance])
    token = described["Reservations"][0]["Instances"][0]["ClientToken"]

    class Step:
        execution_id = view.execution_id
        step_execution_id = step.step_execution_id

    assert token == idempotency_token(Step())
    assert token.startswith("rb-")
