"""aws:invokeLambdaFunction running real function code.

The emulator runs each invocation in a container on the test Docker engine, from the
Python runtime image built in tests/services/lambda_runtime.py: the handler below is
imported and called with the event and a context, as AWS does. What moto reports differs
from AWS in one place: every function error is ``Handled`` (AWS says ``Unhandled`` for an
uncaught exception); the tests assert what the emulator says.
"""

from __future__ import annotations

import base64
import io
import json
import os
import uuid
import zipfile
from pathlib import Path

import pytest

from runbook_engine.status import Status
from tests.aws_support import client, run, write
from tests.services.docker import DockerEngine
from tests.services.lambda_runtime import (
    CONTENT_LABEL,
    PythonRuntime,
    build_python_runtime,
    content_hash,
)
from tests.services.moto import MotoServer

pytestmark = pytest.mark.usefixtures("lambda_aws_env")

HANDLER = """
import logging
import os
import time

logger = logging.getLogger()


def total(event, context):
    print("adding", len(event["numbers"]), "numbers for", event["order"])
    logger.warning("order %s has %d lines", event["order"], len(event["numbers"]))
    return {
        "order": event["order"],
        "total": sum(int(n) for n in event["numbers"]),
        "function": context.function_name,
        "memory": context.memory_limit_in_mb,
        "request": context.aws_request_id,
        "time_left": context.get_remaining_time_in_millis(),
        "variable": os.environ.get("GREETING"),
    }


def broken(event, context):
    print("looking up order", event["order"])
    raise LookupError(f"order {event['order']} is not in the ledger")


def slow(event, context):
    print("waiting on order", event["order"], flush=True)
    time.sleep(60)
    return {"late": True}

"""

INVOKE = """
schemaVersion: '0.3'
parameters:
  Function: {type: String}
  LogType: {type: String, default: None}
mainSteps:
  - name: invoke
    action: aws:invokeLambdaFunction
    inputs:
      FunctionName: '{{ Function }}'
      LogType: '{{ LogType }}'
      InputPayload:
        order: A-7
        numbers: [19, 23]
    outputs:
      - {Name: Total, Selector: $.Payload.total, Type: Integer}
      - {Name: Order, Selector: $.Payload.order, Type: String}
"""


@pytest.fixture
def state(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def code(text: str = HANDLER) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("orders.py", text)
    return archive.getvalue()


def make_function(handler: str, runtime: str, timeout: int = 30, **extra: object) -> str:
    name = f"orders-{uuid.uuid4().hex[:10]}"
    role = client("iam").create_role(RoleName=f"role-{name}", AssumeRolePolicyDocument="{}")
    client("lambda").create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=role["Role"]["Arn"],
        Handler=f"orders.{handler}",
        Code={"ZipFile": code()},
        Timeout=timeout,
        MemorySize=256,
        **extra,
    )
    return name


@pytest.fixture
def runtime(lambda_runtime: PythonRuntime) -> str:
    """The Runtime name the image answers to (python3.11 with this interpreter)."""
    return lambda_runtime.runtime


def test_the_handler_computes_its_answer_from_the_payload(
    tmp_path: Path, state: str, runtime: str
) -> None:
    function = make_function("total", runtime, Environment={"Variables": {"GREETING": "hello"}})
    view = run(state, write(tmp_path, "i.yaml", INVOKE), {"Function": function})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    outputs = view.step("invoke").outputs
    assert outputs["StatusCode"] == 200
    answer = json.loads(outputs["Payload"])
    assert answer["total"] == 42 and answer["order"] == "A-7"
    assert answer["function"] == function
    assert answer["memory"] == 256
    assert answer["variable"] == "hello"
    assert 0 < answer["time_left"] <= 30_000
    assert uuid.UUID(answer["request"])
    assert outputs["Total"] == 42  # custom outputs select from the decoded Payload
    assert outputs["Order"] == "A-7"
    assert "LogResult" not in outputs  # only asked for with LogType Tail


def test_log_type_tail_returns_the_handler_log(tmp_path: Path, state: str, runtime: str) -> None:
    function = make_function("total", runtime)
    document = write(tmp_path, "i.yaml", INVOKE)
    view = run(state, document, {"Function": function, "LogType": "Tail"})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    outputs = view.step("invoke").outputs
    log = base64.b64decode(outputs["LogResult"]).decode()
    assert "adding 2 numbers for A-7" in log
    assert "order A-7 has 2 lines" in log  # the logging module's record, as in AWS
    request = json.loads(outputs["Payload"])["request"]
    assert f"START RequestId: {request}" in log and f"END RequestId: {request}" in log
    assert '"total": 42' not in log  # the answer is the Payload, not part of the log


def test_an_exception_in_the_handler_fails_the_step(
    tmp_path: Path, state: str, runtime: str
) -> None:
    function = make_function("broken", runtime)
    document = write(tmp_path, "i.yaml", INVOKE)
    view = run(state, document, {"Function": function, "LogType": "Tail"})
    step = view.step("invoke")
    assert view.status == Status.FAILED
    assert step.status == Status.FAILED
    assert step.outputs["FunctionError"] == "Handled"  # moto's word for every function error
    assert step.outputs["StatusCode"] == 200
    assert "order A-7 is not in the ledger" in (step.failure_message or "")
    assert f"function {function} failed (Handled)" in (step.failure_message or "")
    error = json.loads(step.outputs["Payload"])
    assert error["errorType"] == "LookupError"
    assert error["errorMessage"] == "order A-7 is not in the ledger"
    assert any("/var/task/orders.py" in frame for frame in error["stackTrace"])
    log = base64.b64decode(step.outputs["LogResult"]).decode()
    assert "looking up order A-7" in log
    assert "[ERROR] LookupError: order A-7 is not in the ledger" in log


def test_a_handler_past_its_timeout_fails_the_step(
    tmp_path: Path, state: str, runtime: str
) -> None:
    function = make_function("slow", runtime, timeout=1)
    document = write(tmp_path, "i.yaml", INVOKE)
    view = run(state, document, {"Function": function, "LogType": "Tail"})
    step = view.step("invoke")
    assert step.status == Status.FAILED
    assert step.outputs["FunctionError"] == "Handled"
    assert "Task timed out after 1.00 seconds" in (step.failure_message or "")
    assert "late" not in step.outputs["Payload"]
    log = base64.b64decode(step.outputs["LogResult"]).decode()
    assert "waiting on order A-7" in log


EVENT = """
schemaVersion: '0.3'
parameters:
  Function: {type: String}
mainSteps:
  - name: invoke
    action: aws:invokeLambdaFunction
    inputs:
      FunctionName: '{{ Function }}'
      InvocationType: Event
      Payload: '{"order": "B-9", "numbers": [1, 2, 3]}'
"""


def test_an_event_invocation_is_accepted_and_the_code_runs(
    tmp_path: Path, state: str, runtime: str
) -> None:
    function = make_function("total", runtime)
    view = run(state, write(tmp_path, "e.yaml", EVENT), {"Function": function})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert view.step("invoke").outputs["StatusCode"] == 202
    group = f"/aws/lambda/{function}"
    events = client("logs").filter_log_events(logGroupName=group)["events"]
    assert "adding 3 numbers for B-9" in [event["message"] for event in events]


QUALIFIED = """
schemaVersion: '0.3'
parameters:
  Function: {type: String}
mainSteps:
  - name: invoke
    action: aws:invokeLambdaFunction
    inputs:
      FunctionName: '{{ Function }}'
      Qualifier: $LATEST
      InputPayload: {order: C-1, numbers: [5]}
"""


def test_the_qualifier_goes_with_the_invocation(
    tmp_path: Path, state: str, runtime: str, lambda_aws_env: MotoServer
) -> None:
    """Seen in the emulator's request log: moto's Invoke does not read the qualifier (it
    always runs $LATEST, hence this one), and rejects ``name:version`` names."""
    function = make_function("total", runtime)
    view = run(state, write(tmp_path, "q.yaml", QUALIFIED), {"Function": function})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert json.loads(view.step("invoke").outputs["Payload"])["total"] == 5
    requests = lambda_aws_env.log.read_text()
    assert f"/functions/{function}/invocations?Qualifier=$LATEST " in requests


def test_invoking_a_missing_function_fails_with_the_service_error(
    tmp_path: Path, state: str
) -> None:
    view = run(state, write(tmp_path, "i.yaml", INVOKE), {"Function": "no-such-function"})
    step = view.step("invoke")
    assert step.status == Status.FAILED
    assert "lambda.Invoke failed: ResourceNotFoundException" in (step.failure_message or "")
    assert step.failure_type == "Action"


STACK_THEN_INVOKE = """
schemaVersion: '0.3'
parameters:
  Role: {type: String}
  Runtime: {type: String}
mainSteps:
  - name: createStack
    action: aws:createStack
    inputs:
      StackName: 'Doubler{{ automation:EXECUTION_ID }}'
      Capabilities: [CAPABILITY_IAM]
      TemplateBody: |
        Resources:
          Doubler:
            Type: AWS::Lambda::Function
            Properties:
              FunctionName: 'doubler-{{ automation:EXECUTION_ID }}'
              Runtime: '{{ Runtime }}'
              Handler: index.handler
              Role: '{{ Role }}'
              Code:
                ZipFile: |
                  def handler(event, context):
                      return {"doubled": event["value"] * 2}
  - name: double
    action: aws:invokeLambdaFunction
    inputs:
      FunctionName: 'doubler-{{ automation:EXECUTION_ID }}'
      Payload: '{"value": 21}'
    outputs:
      - {Name: Doubled, Selector: $.Payload.doubled, Type: Integer}
  - name: deleteStack
    action: aws:deleteStack
    inputs:
      StackName: 'Doubler{{ automation:EXECUTION_ID }}'
outputs: [double.Doubled]
"""


def test_a_function_made_by_a_stack_in_the_runbook_runs_its_inline_code(
    tmp_path: Path, state: str, runtime: str
) -> None:
    """The pattern of AWS's own Lambda runbooks: create a stack holding the function,
    invoke it, delete the stack."""
    role = client("iam").create_role(
        RoleName=f"role-{uuid.uuid4().hex[:10]}", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    document = write(tmp_path, "s.yaml", STACK_THEN_INVOKE)
    view = run(state, document, {"Role": role, "Runtime": runtime})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert view.execution.outputs["double.Doubled"] == 42


# -- the runtime image ---------------------------------------------------------------------


def test_the_runtime_image_is_reused_while_its_content_is_unchanged(
    lambda_runtime: PythonRuntime, docker_engine: DockerEngine, tmp_path: Path
) -> None:
    again = build_python_runtime(docker_engine, tmp_path)
    assert again == PythonRuntime(lambda_runtime.runtime, lambda_runtime.image,
                                  lambda_runtime.content, built_in=None)  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # the image on the engine was enough
    labels = docker_engine.client.inspect_image(again.image)["Config"]["Labels"]
    assert labels[CONTENT_LABEL] == lambda_runtime.content


def test_the_content_hash_follows_the_files(tmp_path: Path) -> None:
    library = tmp_path / "lib.py"
    library.write_text("VALUE = 1\n")
    before = content_hash([library])
    assert content_hash([library]) == before
    os.utime(library, ns=(0, library.stat().st_mtime_ns + 1))
    assert content_hash([library]) != before
