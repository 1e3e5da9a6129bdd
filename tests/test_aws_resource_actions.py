"""aws:createStack, aws:deleteStack, aws:invokeLambdaFunction and aws:executeStateMachine
through the real engine, against the AWS emulator over HTTP.

Lambda here uses the emulator's "simple" backend (the payload echoed, or a queued result):
what is tested is this side of the wire, the request, the payload decoding, outputs and
selectors. Real function code, function errors and logs: tests/test_aws_lambda_runtime.py.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest

from runbook_engine import Engine
from runbook_engine.status import Status
from tests.aws_support import client, run, settings, write
from tests.services.moto import MotoServer

pytestmark = pytest.mark.usefixtures("aws_env")

QUEUE = '{"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "%s"}}}}'
BROKEN = '{"Resources": {"Bad": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": 7, "Nope": {"Fn::GetAtt": ["Missing", "Arn"]}}}}}'


@pytest.fixture
def state(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


STACK = """
schemaVersion: '0.3'
parameters:
  StackName: {type: String}
  Template: {type: String}
mainSteps:
  - name: create
    action: aws:createStack
    inputs:
      StackName: '{{ StackName }}'
      TemplateBody: '{{ Template }}'
      Tags: [{Key: made-by, Value: runbook}]
  - name: delete
    action: aws:deleteStack
    inputs:
      StackName: '{{ create.StackId }}'
outputs: [create.StackId, create.StackStatus]
"""


def test_create_and_delete_a_stack(tmp_path: Path, state: str) -> None:
    name, queue = unique("stack-"), unique("q")
    document = write(tmp_path, "stack.yaml", STACK)
    view = run(state, document, {"StackName": name, "Template": QUEUE % queue})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    created = view.step("create").outputs
    assert created["StackStatus"] == "CREATE_COMPLETE"
    assert created["StackId"].startswith("arn:aws:cloudformation:")
    assert view.step("create").state == {"StackId": created["StackId"]}  # the checkpoint
    stack = client("cloudformation").describe_stacks(StackName=created["StackId"])["Stacks"][0]
    assert stack["StackStatus"] == "DELETE_COMPLETE"
    assert {"Key": "made-by", "Value": "runbook"} in stack["Tags"]


def test_a_stack_that_fails_to_create_fails_the_step_with_its_reason(
    tmp_path: Path, state: str
) -> None:
    name = unique("broken-")
    view = run(state, write(tmp_path, "stack.yaml", STACK), {"StackName": name, "Template": BROKEN})
    step = view.step("create")
    assert view.status == Status.FAILED
    assert step.status == Status.FAILED
    assert "Step create failed: " in (step.failure_message or "")
    assert [s.step_name for s in view.steps] == ["create"]


def test_an_existing_stack_name_fails_with_the_service_error(tmp_path: Path, state: str) -> None:
    name = unique("taken-")
    client("cloudformation").create_stack(StackName=name, TemplateBody=QUEUE % unique("q"))
    view = run(state, write(tmp_path, "s.yaml", STACK), {"StackName": name, "Template": QUEUE % "x"})
    step = view.step("create")
    assert step.status == Status.FAILED
    assert "AlreadyExistsException" in (step.failure_message or "")
    assert step.failure_details == {"ErrorCode": ["AlreadyExistsException"]}


def test_deleting_a_stack_that_does_not_exist_succeeds(tmp_path: Path, state: str) -> None:
    document = write(
        tmp_path,
        "del.yaml",
        "schemaVersion: '0.3'\nmainSteps:\n"
        "  - {name: delete, action: aws:deleteStack, inputs: {StackName: never-was}}\n",
    )
    assert run(state, document).status == Status.SUCCESS


def test_a_resumed_create_stack_step_waits_for_its_stack_instead_of_making_another(
    tmp_path: Path, state: str
) -> None:
    """The process dies right after the stack was created (the checkpoint is on disk);
    another engine resumes the execution: one stack, step Success."""
    name, queue = unique("resume-"), unique("q")
    document = write(tmp_path, "stack.yaml", STACK)

    async def crash() -> str:
        async with Engine(state, settings=settings()) as engine:
            execution_id = await engine.start(document, {"StackName": name, "Template": QUEUE % queue})
            checkpointed = anyio.Event()

            def listen(record: Any) -> None:
                if record.step_name == "create" and "StackId" in record.state:
                    checkpointed.set()

            engine.listener = listen
            async with anyio.create_task_group() as group:
                group.start_soon(engine.wait, execution_id)
                await checkpointed.wait()
                group.cancel_scope.cancel()  # the process "dies" here
            return execution_id

    execution_id = anyio.run(crash)

    async def resume() -> Any:
        async with Engine(state, settings=settings()) as engine:
            from runbook_engine.store import open_store

            store = open_store(state)  # the dead process's lease: expire it
            record = await store.get_execution(execution_id)
            await store.release(execution_id, record.owner or "")
            await store.close()
            return await engine.resume(execution_id)

    view = anyio.run(resume)
    assert view.status == Status.SUCCESS, view.execution.failure_message
    creates = [s for s in view.steps if s.step_name == "create"]
    assert len(creates) == 1 and creates[0].attempt == 1
    stacks = client("cloudformation").list_stacks()["StackSummaries"]
    assert len([s for s in stacks if s["StackName"] == name]) == 1


# -- Lambda ---------------------------------------------------------------------------------


def make_function() -> str:
    name = unique("fn-")
    role = client("iam").create_role(RoleName=unique("role-"), AssumeRolePolicyDocument="{}")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", "def handle(event, context):\n    return event\n")
    client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="handler.handle",
        Code={"ZipFile": archive.getvalue()},
    )
    return name


LAMBDA = """
schemaVersion: '0.3'
parameters:
  Function: {type: String}
mainSteps:
  - name: invoke
    action: aws:invokeLambdaFunction
    inputs:
      FunctionName: '{{ Function }}'
      InputPayload: {instance: i-123, retry: true}
    outputs:
      - {Name: Instance, Selector: $.Payload.instance, Type: String}
      - {Name: Retry, Selector: $.retry, Type: Boolean}
"""


def test_invoke_lambda_sends_the_payload_and_decodes_the_answer(
    tmp_path: Path, state: str
) -> None:
    view = run(state, write(tmp_path, "l.yaml", LAMBDA), {"Function": make_function()})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    outputs = view.step("invoke").outputs
    assert outputs["StatusCode"] == 200
    assert json.loads(outputs["Payload"]) == {"instance": "i-123", "retry": True}
    assert outputs["Instance"] == "i-123"
    assert outputs["Retry"] is True  # a selector missing at the root reads the Payload


def test_a_queued_answer_is_the_payload(tmp_path: Path, state: str, moto_server: MotoServer) -> None:
    function = make_function()
    moto_server.queue_lambda_result('{"instance": "i-queued", "retry": false}')
    view = run(state, write(tmp_path, "l.yaml", LAMBDA), {"Function": function})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert view.step("invoke").outputs["Instance"] == "i-queued"
    assert view.step("invoke").outputs["Retry"] is False


# -- Step Functions -------------------------------------------------------------------------

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": True}, "End": True}}}
FAIL = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Oops", "Cause": "on purpose"}}}
SLOW = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}


def make_state_machine(definition: dict[str, Any]) -> str:
    role = client("iam").create_role(RoleName=unique("sfn-"), AssumeRolePolicyDocument="{}")
    answer = client("stepfunctions").create_state_machine(
        name=unique("sm-"), definition=json.dumps(definition), roleArn=role["Role"]["Arn"]
    )
    arn: str = answer["stateMachineArn"]
    return arn


SFN = """
schemaVersion: '0.3'
parameters:
  Machine: {type: String}
mainSteps:
  - name: execute
    action: aws:executeStateMachine
    timeoutSeconds: %d
    inputs:
      stateMachineArn: '{{ Machine }}'
      input: '{"from": "runbook"}'
"""


def test_execute_state_machine_waits_for_success(tmp_path: Path, state: str) -> None:
    machine = make_state_machine(PASS)
    view = run(state, write(tmp_path, "sfn.yaml", SFN % 60), {"Machine": machine})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    outputs = view.step("execute").outputs
    assert outputs["status"] == "SUCCEEDED"
    assert json.loads(outputs["output"]) == {"ok": True}
    assert outputs["stateMachineArn"] == machine
    assert outputs["name"].startswith("rb-")  # named after the execution and step


def test_a_failed_state_machine_execution_fails_the_step(tmp_path: Path, state: str) -> None:
    view = run(state, write(tmp_path, "sfn.yaml", SFN % 60), {"Machine": make_state_machine(FAIL)})
    step = view.step("execute")
    assert step.status == Status.FAILED
    assert "ended FAILED: Oops: on purpose" in (step.failure_message or "")
    assert step.outputs["status"] == "FAILED"


def _executions(machine: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client("stepfunctions").list_executions(stateMachineArn=machine)[
        "executions"
    ]
    return found


def test_a_timed_out_step_stops_its_state_machine_execution(tmp_path: Path, state: str) -> None:
    machine = make_state_machine(SLOW)
    view = run(state, write(tmp_path, "sfn.yaml", SFN % 1), {"Machine": machine})
    assert view.step("execute").status == Status.TIMED_OUT
    assert [e["status"] for e in _executions(machine)] == ["ABORTED"]


def test_a_cancelled_step_stops_its_state_machine_execution(tmp_path: Path, state: str) -> None:
    machine = make_state_machine(SLOW)

    async def main() -> Status:
        async with Engine(state, settings=settings()) as engine:
            execution_id = await engine.start(write(tmp_path, "s.yaml", SFN % 600), {"Machine": machine})
            polling = anyio.Event()

            def listen(record: Any) -> None:
                if "executionArn" in record.state:
                    polling.set()

            engine.listener = listen
            async with anyio.create_task_group() as group:
                group.start_soon(engine.wait, execution_id)
                await polling.wait()
                await anyio.sleep(0.3)
                await engine.stop(execution_id)
            return (await engine.get(execution_id)).status

    assert anyio.run(main) == Status.CANCELLED
    assert [e["status"] for e in _executions(machine)] == ["ABORTED"]


def test_starting_again_from_the_same_step_adopts_the_first_execution(state: str) -> None:
    """Two runs of one step execution (a resume) start one state machine execution."""
    from actions.execute_state_machine import run as execute
    from runbook_engine.aws import Boto3Caller
    from tests.action_context import FakeContext

    machine = make_state_machine(PASS)

    async def main() -> list[str]:
        caller = Boto3Caller(settings().aws)
        arns = []
        for _ in range(2):
            ctx = FakeContext(step_execution_id="same-step", aws=caller)
            parked = await execute({"stateMachineArn": machine}, ctx)
            arns.append(parked.state["executionArn"])  # type: ignore[union-attr]
        caller.close()
        return arns

    first, second = anyio.run(main)
    assert first == second
    assert len(_executions(machine)) == 1
