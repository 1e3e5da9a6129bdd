"""The daemon's SSM Automation API, driven by real clients: boto3 and the aws CLI.

One ``runbook serve`` process (SQLite) serves the whole module; its documents directory
holds small runbooks, and the bundled ``approval-gate`` resolves by name too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.services.daemon import (
    ALICE,
    BOB,
    LIMITED,
    VIEWER,
    DaemonProcess,
    send,
    signed_request,
    wait_for,
)

QUICK = """\
schemaVersion: '0.3'
parameters:
  Word: {type: String, default: hi}
mainSteps:
  - name: say
    action: aws:runShellScript
    inputs:
      Commands: ['echo {{ Word }}']
outputs: [say.Output]
"""
TWO_STEPS = """\
schemaVersion: '0.3'
mainSteps:
  - name: first
    action: aws:runShellScript
    inputs: {Commands: ['echo first']}
  - name: second
    action: aws:runShellScript
    inputs: {Commands: ['echo second']}
"""
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("api")
    documents = root / "documents"
    documents.mkdir()
    (documents / "quick-echo.yaml").write_text(QUICK)
    (documents / "two-steps.yaml").write_text(TWO_STEPS)
    process = DaemonProcess(
        root,
        {
            "state": f"sqlite:///{root / 'state.db'}",
            "documents": [str(documents)],
            "workers": 2,
            "max_request_bytes": MAX_BODY,
        },
    )
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def status_of(client: Any, execution_id: str) -> str:
    execution = client.get_automation_execution(AutomationExecutionId=execution_id)
    return str(execution["AutomationExecution"]["AutomationExecutionStatus"])


def wait_status(client: Any, execution_id: str, *wanted: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        execution = client.get_automation_execution(AutomationExecutionId=execution_id)
        shape: dict[str, Any] = execution["AutomationExecution"]
        return shape if shape["AutomationExecutionStatus"] in wanted else None

    result: dict[str, Any] = wait_for(reached, what=f"{execution_id} to become {wanted}")
    return result


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


# -- start, get, approve ------------------------------------------------------------------


def test_an_approval_counts_the_principal_that_signed_the_signal(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    alice, bob = daemon.client(ALICE), daemon.client(BOB)
    marker = tmp_path / "approved.txt"
    started = alice.start_automation_execution(
        DocumentName="approval-gate",
        Parameters={"Approver": ["alice"], "Marker": [str(marker)]},
    )
    execution_id = started["AutomationExecutionId"]
    waiting = wait_status(alice, execution_id, "Waiting")
    assert waiting["ExecutedBy"] == "arn:aws:iam::000000000000:user/alice"
    assert isinstance(waiting["ExecutionStartTime"], datetime)
    assert waiting["Parameters"]["Approver"] == ["alice"]

    with pytest.raises(ClientError) as refused:
        bob.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Approve")
    assert error_code(refused) == "InvalidAutomationSignalException"
    assert "bob" in refused.value.response["Error"]["Message"]

    alice.send_automation_signal(
        AutomationExecutionId=execution_id, SignalType="Approve", Payload={"Comment": ["go"]}
    )
    done = wait_status(alice, execution_id, "Success", "Failed")
    assert done["AutomationExecutionStatus"] == "Success"
    assert done["Outputs"]["askForApproval.ApprovalStatus"] == ["Approved"]
    assert [s["StepName"] for s in done["StepExecutions"]] == ["askForApproval", "makeTheChange"]
    assert "user/alice" in marker.read_text()
    assert done["ExecutionEndTime"] >= done["ExecutionStartTime"]


def test_a_rejection_ends_the_gate_on_its_failure_path(daemon: DaemonProcess) -> None:
    alice = daemon.client(ALICE)
    execution_id = alice.start_automation_execution(
        DocumentName="approval-gate", Parameters={"Approver": ["alice"]}
    )["AutomationExecutionId"]
    wait_status(alice, execution_id, "Waiting")
    alice.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Reject")
    done = wait_status(alice, execution_id, "Success", "Failed")
    names = [s["StepName"] for s in done["StepExecutions"]]
    assert names == ["askForApproval", "recordRejection"]
    assert done["StepExecutions"][0]["StepStatus"] == "Failed"


def test_stop_cancels_a_waiting_execution_and_then_refuses_a_second_stop(
    daemon: DaemonProcess,
) -> None:
    alice = daemon.client(ALICE)
    execution_id = alice.start_automation_execution(
        DocumentName="approval-gate", Parameters={"Approver": ["alice"]}
    )["AutomationExecutionId"]
    wait_status(alice, execution_id, "Waiting")
    assert alice.stop_automation_execution(AutomationExecutionId=execution_id, Type="Cancel")
    done = wait_status(alice, execution_id, "Cancelled", "Failed", "Success")
    assert done["AutomationExecutionStatus"] == "Cancelled"
    with pytest.raises(ClientError) as again:
        alice.stop_automation_execution(AutomationExecutionId=execution_id)
    assert error_code(again) == "InvalidAutomationStatusUpdateException"


def test_interactive_mode_runs_the_steps_it_is_told_to_then_completes(
    daemon: DaemonProcess,
) -> None:
    alice = daemon.client(ALICE)
    execution_id = alice.start_automation_execution(DocumentName="two-steps", Mode="Interactive")[
        "AutomationExecutionId"
    ]
    wait_status(alice, execution_id, "Waiting")
    with pytest.raises(ClientError) as wrong:
        alice.send_automation_signal(
            AutomationExecutionId=execution_id,
            SignalType="StartStep",
            Payload={"StepName": ["second"]},
        )
    assert error_code(wrong) == "InvalidAutomationSignalException"
    alice.send_automation_signal(
        AutomationExecutionId=execution_id, SignalType="StartStep", Payload={"StepName": ["first"]}
    )

    def first_done() -> bool:
        steps = alice.describe_automation_step_executions(AutomationExecutionId=execution_id)
        return [s["StepStatus"] for s in steps["StepExecutions"]] == ["Success"]

    wait_for(first_done, what="the first step")
    alice.stop_automation_execution(AutomationExecutionId=execution_id, Type="Complete")
    done = wait_status(alice, execution_id, "Success", "Failed", "Cancelled")
    assert done["AutomationExecutionStatus"] == "Success"
    assert [s["StepName"] for s in done["StepExecutions"]] == ["first"]


# -- idempotency ----------------------------------------------------------------------------


def test_a_retried_start_with_the_same_client_token_returns_the_first_execution(
    daemon: DaemonProcess,
) -> None:
    alice = daemon.client(ALICE)
    token = str(uuid.uuid4())
    arguments = {"DocumentName": "quick-echo", "Parameters": {"Word": ["once"]}}
    first = alice.start_automation_execution(ClientToken=token, **arguments)
    again = alice.start_automation_execution(ClientToken=token.upper(), **arguments)
    assert again["AutomationExecutionId"] == first["AutomationExecutionId"]
    with pytest.raises(ClientError) as mismatch:
        alice.start_automation_execution(
            ClientToken=token, DocumentName="quick-echo", Parameters={"Word": ["twice"]}
        )
    assert error_code(mismatch) == "IdempotentParameterMismatch"


def test_concurrent_retries_with_one_client_token_start_one_execution(
    daemon: DaemonProcess,
) -> None:
    token = str(uuid.uuid4())
    clients = [daemon.client(ALICE) for _ in range(6)]

    def start(client: Any) -> str:
        result = client.start_automation_execution(
            DocumentName="quick-echo", ClientToken=token, Tags=[{"Key": "race", "Value": token}]
        )
        return str(result["AutomationExecutionId"])

    with ThreadPoolExecutor(len(clients)) as pool:
        ids = set(pool.map(start, clients))
    assert len(ids) == 1
    listed = clients[0].describe_automation_executions(
        Filters=[{"Key": "TagKey", "Values": ["race"]}]
    )["AutomationExecutionMetadataList"]
    assert [m["AutomationExecutionId"] for m in listed] == list(ids)


# -- describe, filters, pagination ----------------------------------------------------------


def test_paginators_walk_every_execution_and_step_once(daemon: DaemonProcess) -> None:
    alice = daemon.client(ALICE)
    tag = uuid.uuid4().hex
    ids = [
        alice.start_automation_execution(
            DocumentName="quick-echo",
            Parameters={"Word": [f"w{n}"]},
            Tags=[{"Key": f"batch-{tag}", "Value": "x"}],
        )["AutomationExecutionId"]
        for n in range(5)
    ]
    for execution_id in ids:
        wait_status(alice, execution_id, "Success")
    paginator = alice.get_paginator("describe_automation_executions")
    pages = list(
        paginator.paginate(
            Filters=[{"Key": "TagKey", "Values": [f"batch-{tag}"]}],
            PaginationConfig={"PageSize": 2},
        )
    )
    assert [len(p["AutomationExecutionMetadataList"]) for p in pages] == [2, 2, 1]
    seen = [m["AutomationExecutionId"] for p in pages for m in p["AutomationExecutionMetadataList"]]
    assert seen == list(reversed(ids))  # newest first
    first = pages[0]["AutomationExecutionMetadataList"][0]
    assert first["AutomationExecutionStatus"] == "Success"
    assert first["Outputs"]["say.Output"] == ["w4\n"]
    assert isinstance(first["ExecutionStartTime"], datetime)

    statuses = alice.describe_automation_executions(
        Filters=[
            {"Key": "ExecutionId", "Values": ids[:3]},
            {"Key": "ExecutionStatus", "Values": ["Success", "Failed"]},
            {"Key": "DocumentNamePrefix", "Values": ["quick"]},
        ]
    )["AutomationExecutionMetadataList"]
    assert {m["AutomationExecutionId"] for m in statuses} == set(ids[:3])
    none = alice.describe_automation_executions(
        Filters=[
            {"Key": "ExecutionId", "Values": ids[:3]},
            {"Key": "StartTimeBefore", "Values": ["2001-01-01T00:00:00Z"]},
        ]
    )["AutomationExecutionMetadataList"]
    assert none == []
    steps = alice.get_paginator("describe_automation_step_executions").paginate(
        AutomationExecutionId=ids[0], ReverseOrder=True, PaginationConfig={"PageSize": 1}
    )
    names = [s["StepName"] for page in steps for s in page["StepExecutions"]]
    assert names == ["say"]


def test_step_filters_and_reverse_order(daemon: DaemonProcess) -> None:
    alice = daemon.client(ALICE)
    execution_id = alice.start_automation_execution(DocumentName="two-steps")[
        "AutomationExecutionId"
    ]
    wait_status(alice, execution_id, "Success")
    forward = alice.describe_automation_step_executions(AutomationExecutionId=execution_id)
    assert [s["StepName"] for s in forward["StepExecutions"]] == ["first", "second"]
    backward = alice.describe_automation_step_executions(
        AutomationExecutionId=execution_id, ReverseOrder=True
    )
    assert [s["StepName"] for s in backward["StepExecutions"]] == ["second", "first"]
    only = alice.describe_automation_step_executions(
        AutomationExecutionId=execution_id,
        Filters=[
            {"Key": "StepName", "Values": ["second"]},
            {"Key": "StepExecutionStatus", "Values": ["Success"]},
        ],
    )
    assert [s["StepName"] for s in only["StepExecutions"]] == ["second"]
    with pytest.raises(ClientError) as bad:
        alice.describe_automation_step_executions(
            AutomationExecutionId=execution_id,
            Filters=[{"Key": "StepExecutionStatus", "Values": ["Sleeping"]}],
        )
    assert error_code(bad) == "InvalidFilterValue"


def test_invalid_filters_and_tokens_get_their_own_error_codes(daemon: DaemonProcess) -> None:
    alice = daemon.client(ALICE)
    with pytest.raises(ClientError) as bad_value:
        alice.describe_automation_executions(
            Filters=[{"Key": "ExecutionStatus", "Values": ["Sleeping"]}]
        )
    assert error_code(bad_value) == "InvalidFilterValue"
    with pytest.raises(ClientError) as bad_time:
        alice.describe_automation_executions(
            Filters=[{"Key": "StartTimeAfter", "Values": ["yesterday"]}]
        )
    assert error_code(bad_time) == "InvalidFilterValue"
    with pytest.raises(ClientError) as bad_token:
        alice.describe_automation_executions(NextToken="not-a-token")
    assert error_code(bad_token) == "InvalidNextToken"
    body = json.dumps({"Filters": [{"Key": "Colour", "Values": ["red"]}]}).encode()
    status, answer = send(signed_request(daemon.url, "DescribeAutomationExecutions", body))
    assert (status, answer["__type"]) == (400, "InvalidFilterKey")


# -- errors of the operations ---------------------------------------------------------------


def test_engine_errors_come_back_with_ssm_codes(daemon: DaemonProcess) -> None:
    alice = daemon.client(ALICE)
    cases = [
        (lambda: alice.start_automation_execution(DocumentName="No-Such-Runbook"),
         "AutomationDefinitionNotFoundException"),
        (lambda: alice.start_automation_execution(DocumentName="../../etc/passwd"),
         "AutomationDefinitionNotFoundException"),
        (lambda: alice.start_automation_execution(DocumentName="quick-echo", DocumentVersion="7"),
         "AutomationDefinitionVersionNotFoundException"),
        (lambda: alice.start_automation_execution(
            DocumentName="quick-echo", Parameters={"Nope": ["x"]}),
         "InvalidAutomationExecutionParametersException"),
        (lambda: alice.get_automation_execution(AutomationExecutionId=str(uuid.uuid4())),
         "AutomationExecutionNotFoundException"),
        (lambda: alice.send_automation_signal(
            AutomationExecutionId=str(uuid.uuid4()), SignalType="Approve"),
         "AutomationExecutionNotFoundException"),
    ]  # fmt: skip
    for call, code in cases:
        with pytest.raises(ClientError) as failure:
            call()
        assert error_code(failure) == code
        assert failure.value.response["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize(
    ("target", "body", "code", "status"),
    [
        ("StartAutomationExecution", b'{"DocumentName": ', "ValidationException", 400),
        ("StartAutomationExecution", b"[1, 2]", "ValidationException", 400),
        ("StartAutomationExecution", b'{"DocumentName": 5}', "ValidationException", 400),
        ("StartAutomationExecution", b'{"DocumentName": "quick-echo", "Colour": "red"}',
         "ValidationException", 400),
        ("StartAutomationExecution", b'{"DocumentName": "quick echo"}', "ValidationException", 400),
        ("StartAutomationExecution", b'{"DocumentName": "quick-echo", "Mode": "Fast"}',
         "ValidationException", 400),
        ("StartAutomationExecution", b"{}", "ValidationException", 400),
        ("DescribeAutomationExecutions", b'{"MaxResults": 51}', "ValidationException", 400),
        ("DescribeAutomationExecutions", b'{"MaxResults": true}', "ValidationException", 400),
        ("DescribeAutomationExecutions", b"[" * 20000 + b"]" * 20000, "ValidationException", 400),
        ("GetAutomationExecution", b'{"AutomationExecutionId": "short"}', "ValidationException",
         400),
        ("CreateOpsItem", b"{}", "UnknownOperationException", 400),
        ("NoSuchThing", b"{}", "UnknownOperationException", 400),
        ("StartAutomationExecution", b'{"DocumentName": "' + b"x" * MAX_BODY + b'"}',
         "ValidationException", 413),
    ],
)  # fmt: skip
def test_malformed_requests_are_refused_cleanly(
    daemon: DaemonProcess, target: str, body: bytes, code: str, status: int
) -> None:
    answer_status, answer = send(signed_request(daemon.url, target, body))
    assert (answer_status, answer["__type"]) == (status, code)
    assert answer["message"]
    healthy, _ = daemon.get("/healthz")
    assert healthy == 200


def test_policies_limit_operations_and_documents(daemon: DaemonProcess) -> None:
    viewer, limited = daemon.client(VIEWER), daemon.client(LIMITED)
    with pytest.raises(ClientError) as denied:
        viewer.start_automation_execution(DocumentName="quick-echo")
    assert error_code(denied) == "AccessDeniedException"
    assert viewer.describe_automation_executions(MaxResults=1)["AutomationExecutionMetadataList"]
    with pytest.raises(ClientError) as other_document:
        limited.start_automation_execution(
            DocumentName="approval-gate", Parameters={"Approver": ["x"]}
        )
    assert error_code(other_document) == "AccessDeniedException"
    allowed = limited.start_automation_execution(DocumentName="quick-echo")
    wait_status(limited, allowed["AutomationExecutionId"], "Success")
    listed = limited.describe_automation_executions()["AutomationExecutionMetadataList"]
    assert listed and all(m["DocumentName"].startswith("quick-") for m in listed)

    alice = daemon.client(ALICE)
    gate = alice.start_automation_execution(
        DocumentName="approval-gate", Parameters={"Approver": ["limited"]}
    )["AutomationExecutionId"]
    wait_status(alice, gate, "Waiting")
    with pytest.raises(ClientError) as signal_elsewhere:
        limited.send_automation_signal(AutomationExecutionId=gate, SignalType="Approve")
    assert error_code(signal_elsewhere) == "AccessDeniedException"
    still = alice.get_automation_execution(AutomationExecutionId=gate)["AutomationExecution"]
    assert still["AutomationExecutionStatus"] == "Waiting"


# -- observability --------------------------------------------------------------------------


def test_health_metrics_and_structured_logs(daemon: DaemonProcess) -> None:
    alice = daemon.client(ALICE)
    execution_id = alice.start_automation_execution(DocumentName="quick-echo")[
        "AutomationExecutionId"
    ]
    wait_status(alice, execution_id, "Success")
    status, body = daemon.get("/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, text = daemon.get("/metrics")
    assert status == 200
    success = [
        line
        for line in text.splitlines()
        if line.startswith('runbook_executions{status="Success"}')
    ]
    assert success and float(success[0].split()[-1]) >= 1
    assert (
        'runbook_step_duration_seconds_count{action="aws:runShellScript",status="Success"}' in text
    )
    assert "runbook_queue_depth" in text
    assert 'runbook_api_requests_total{code="OK",operation="StartAutomationExecution"}' in text
    steps = [e for e in daemon.events("step") if e["execution_id"] == execution_id]
    assert steps and all(e["step_execution_id"] for e in steps)
    assert steps[-1]["status"] == "Success"


# -- the aws CLI ----------------------------------------------------------------------------


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
        capture_output=True, text=True, env=environment, timeout=60,
    )  # fmt: skip
    if result.returncode != 0:
        return {"exit": result.returncode, "stderr": result.stderr}
    return json.loads(result.stdout) if result.stdout.strip() else {}


def test_the_aws_cli_starts_lists_signals_and_stops(daemon: DaemonProcess) -> None:
    started = aws(
        daemon, "start-automation-execution", "--document-name", "approval-gate",
        "--parameters", "Approver=alice",
    )  # fmt: skip
    execution_id = started["AutomationExecutionId"]
    alice = daemon.client(ALICE)
    wait_status(alice, execution_id, "Waiting")
    shown = aws(daemon, "get-automation-execution", "--automation-execution-id", execution_id)
    assert shown["AutomationExecution"]["AutomationExecutionStatus"] == "Waiting"
    page = aws(daemon, "describe-automation-executions", "--max-items", "1")
    assert len(page["AutomationExecutionMetadataList"]) == 1 and page["NextToken"]
    assert aws(
        daemon, "send-automation-signal", "--automation-execution-id", execution_id,
        "--signal-type", "Approve",
    ) == {}  # fmt: skip
    wait_status(alice, execution_id, "Success")
    other = aws(
        daemon, "start-automation-execution", "--document-name", "approval-gate",
        "--parameters", "Approver=alice",
    )["AutomationExecutionId"]  # fmt: skip
    wait_status(alice, other, "Waiting")
    assert aws(daemon, "stop-automation-execution", "--automation-execution-id", other) == {}
    wait_status(alice, other, "Cancelled")
    refused = aws(daemon, "get-automation-execution", "--automation-execution-id", "x" * 36)
    assert refused["exit"] != 0 and "AutomationExecutionNotFoundException" in refused["stderr"]
