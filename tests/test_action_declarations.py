"""What the AWS-facing and control-flow actions declare (outputs, timeouts, cancel rules,
idempotency), what running them says, and how real runbooks fare against their schemas."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest

from actions.aws_common import operation_name
from runbook_engine.model import ValueType
from runbook_engine.plugin import ActionError, FailureStage
from runbook_engine.registry import default_registry
from runbook_engine.validation import validate_file, validate_text
from tests.test_action_schemas import OUR_ACTIONS

ACTIONS = default_registry()


# --- declared behaviour: outputs, timeouts, cancel rules, idempotency, running -----------


def test_predefined_outputs_and_their_types() -> None:
    outputs = {name: dict(ACTIONS[name].schema.outputs) for name in OUR_ACTIONS}
    assert outputs["aws:changeInstanceState"] == {"InstanceStates": ValueType.STRING_LIST}
    assert outputs["aws:copyImage"] == outputs["aws:createImage"] == {
        "ImageId": ValueType.STRING, "ImageState": ValueType.STRING}
    assert outputs["aws:createStack"] == dict.fromkeys(
        ("StackId", "StackStatus", "StackStatusReason"), ValueType.STRING)
    assert outputs["aws:executeStateMachine"] == dict.fromkeys(
        ("executionArn", "input", "name", "output", "startDate", "stateMachineArn", "status",
         "stopDate"), ValueType.STRING)
    assert outputs["aws:invokeLambdaFunction"] == {
        "StatusCode": ValueType.INTEGER, "FunctionError": ValueType.STRING,
        "LogResult": ValueType.STRING, "Payload": ValueType.STRING}
    assert outputs["aws:invokeWebhook"] == {
        "Response": ValueType.STRING, "ResponseCode": ValueType.INTEGER}
    assert outputs["aws:loop"] == {
        "CurrentIteration": ValueType.INTEGER, "CurrentIteratorValue": ValueType.STRING}
    assert outputs["aws:runCommand"] == {
        "CommandId": ValueType.STRING, "Status": ValueType.STRING,
        "ResponseCode": ValueType.INTEGER, "Output": ValueType.STRING}
    assert outputs["aws:runInstances"] == {
        "InstanceIds": ValueType.STRING_LIST, "InstanceStates": ValueType.STRING_LIST}
    no_outputs = {"aws:assertAwsResourceProperty", "aws:branch", "aws:createTags",
                  "aws:deleteImage", "aws:deleteStack", "aws:executeAwsApi",
                  "aws:waitForAwsResourceProperty"}
    assert {name for name, declared in outputs.items() if not declared} == no_outputs


def test_timeouts() -> None:
    defaults = {n: ACTIONS[n].schema.default_timeout for n in OUR_ACTIONS}
    assert {n: t for n, t in defaults.items() if t is not None} == {
        "aws:changeInstanceState": 3600, "aws:waitForAwsResourceProperty": 3600}
    # The 25 s (executeAwsApi) and 300 s (invokeLambdaFunction) limits bound one call; real
    # runbooks give those steps up to 3600 s, so no step maximum is declared.
    assert all(ACTIONS[n].schema.max_timeout is None for n in OUR_ACTIONS)


def test_cancel_rules() -> None:
    not_cancel_targets = {n for n in OUR_ACTIONS if not ACTIONS[n].schema.cancel_target_allowed}
    assert not_cancel_targets == {
        "aws:copyImage", "aws:createImage", "aws:createStack", "aws:createTags",
        "aws:runInstances"}
    assert {n for n in OUR_ACTIONS if not ACTIONS[n].schema.on_cancel_allowed} == {"aws:loop"}


def test_idempotent_actions() -> None:
    assert {n for n in OUR_ACTIONS if ACTIONS[n].idempotent} == {
        "aws:assertAwsResourceProperty", "aws:waitForAwsResourceProperty",
        "aws:changeInstanceState", "aws:createTags", "aws:deleteStack", "aws:branch", "aws:loop"}


@pytest.mark.parametrize("action", OUR_ACTIONS)
def test_running_says_why_it_cannot_run_here(action: str) -> None:
    engine_run = action in ("aws:branch", "aws:loop")
    reason = ("executed by the engine" if engine_run
              else "needs the AWS backend, which is not configured in this version")
    with pytest.raises(ActionError) as caught:
        asyncio.run(ACTIONS[action].run({}, None))  # type: ignore[arg-type]
    assert caught.value.message == f"{action} cannot run here: {reason}"
    assert caught.value.stage is FailureStage.PRE_VERIFICATION


@pytest.mark.parametrize(
    ("service", "api", "operation"),
    [("ec2", "DescribeInstances", "DescribeInstances"), ("SQS", "get_queue_url", "GetQueueUrl"),
     ("s3", "listBuckets", "ListBuckets"), ("ec2", "LaunchRocket", None),
     ("nosuchservice", "DescribeInstances", None)],
)
def test_operation_name_gives_the_pascal_case_operation(
    service: str, api: str, operation: str | None
) -> None:
    assert operation_name(service, api) == operation


# --- whole documents ----------------------------------------------------------------------

BRANCH_RUNBOOK = """\
schemaVersion: '0.3'
parameters:
  OS:
    type: String
mainSteps:
  - name: choose
    action: aws:branch
    inputs:
      Choices:
        - NextStep: done
          Variable: '{{ OS }}'
          NumericEquals: linux
  - name: done
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: DescribeInstancez
"""


def test_errors_in_a_document_are_located() -> None:
    report = validate_text(BRANCH_RUNBOOK, "choose.yaml")
    assert [d.format() for d in report.errors] == [
        "choose.yaml:12:26: error: step choose: NumericEquals needs a number, not 'linux'",
        "choose.yaml:17:12: error: step done: service 'ec2' has no operation "
        "'DescribeInstancez'; did you mean 'DescribeInstances'?",
    ]


NOT_YET_REGISTERED = ("aws:approve", "aws:pause", "aws:executeScript", "aws:executeAutomation",
                      "aws:updateVariable", "aws:runShellScript")


def test_corpus_runbooks_pass_these_schemas(corpus: Path) -> None:
    with (corpus / "EXPECTED_INVALID.tsv").open() as table:
        expected = {row["path"]: row["expected_error"]
                    for row in csv.DictReader(table, delimiter="\t")}
    problems: list[str] = []
    seen_expected: set[str] = set()
    files = sorted(p for p in (corpus / "automation").rglob("*") if p.is_file())
    assert len(files) > 300
    for path in files:
        relative = path.relative_to(corpus).as_posix()
        for diagnostic in validate_file(path).errors:
            if any(diagnostic.message == f"unknown action {a}" for a in NOT_YET_REGISTERED):
                continue
            if relative in expected and expected[relative] in diagnostic.message:
                seen_expected.add(relative)
                continue
            problems.append(diagnostic.format())
    assert problems == []
    assert "automation/aws-solutions__automated-security-response-on-aws/tstest-runbook.yaml" \
        in seen_expected
