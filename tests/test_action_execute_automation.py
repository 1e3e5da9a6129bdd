"""aws:executeAutomation: start one child, park, finish with the child's outcome."""

from __future__ import annotations

from typing import Any

import pytest

from actions.execute_automation import ACTION, SCHEMA, runtime_parameters
from runbook_engine.inputs import normalize_inputs
from runbook_engine.plugin import ActionError, ActionResult, ChildStatus, Suspend
from tests.action_context import FakeContext

pytestmark = pytest.mark.anyio

INPUTS: dict[str, Any] = {
    "DocumentName": "Child-Runbook",
    "DocumentVersion": 2,
    "RuntimeParameters": {"InstanceIds": ["i-1", "i-2"], "Retries": 3, "DryRun": True},
    "MaxConcurrency": 10,
    "MaxErrors": "10%",
}


async def run(ctx: FakeContext, inputs: dict[str, Any] = INPUTS) -> ActionResult | Suspend:
    assert SCHEMA.check(inputs, static=False) == []
    return await ACTION.run(normalize_inputs(SCHEMA, inputs), ctx)


async def test_first_run_starts_the_child_and_parks() -> None:
    ctx = FakeContext()
    outcome = await run(ctx)
    assert isinstance(outcome, Suspend)
    assert outcome.status == "InProgress"
    assert outcome.child_execution_id == "child-1"
    assert outcome.state["child"] == "child-1"
    [request] = ctx.started
    assert request.document_name == "Child-Runbook"
    assert request.document_version == "2"
    assert request.parameters == {
        "InstanceIds": ["i-1", "i-2"], "Retries": ["3"], "DryRun": ["true"]
    }
    assert (request.max_concurrency, request.max_errors) == ("10", "10%")


async def test_a_resumed_step_never_starts_a_second_child() -> None:
    ctx = FakeContext()
    first = await run(ctx)
    assert isinstance(first, Suspend)
    ctx.state = first.state
    again = await run(ctx)
    assert isinstance(again, Suspend) and again.child_execution_id == "child-1"
    assert len(ctx.started) == 1


async def test_a_new_attempt_starts_a_new_child() -> None:
    ctx = FakeContext()
    first = await run(ctx)
    assert isinstance(first, Suspend)
    ctx.children["child-1"] = ChildStatus("child-1", "Failed", {}, "boom")
    ctx.state, ctx.attempt = first.state, 2
    second = await run(ctx)
    assert isinstance(second, Suspend) and second.child_execution_id == "child-2"


async def test_child_success_gives_its_outputs() -> None:
    ctx = FakeContext(state={"child": "child-7", "attempt": 1})
    ctx.children["child-7"] = ChildStatus(
        "child-7", "Success", {"make.ImageId": ["ami-1"], "tag.Keys": ["a", "b"]}, None
    )
    outcome = await run(ctx)
    assert isinstance(outcome, ActionResult)
    assert outcome.outputs == {
        "Output": ["ami-1", "a", "b"], "ExecutionId": "child-7", "Status": "Success"
    }
    assert ctx.started == []


async def test_child_failure_fails_the_step_with_its_message() -> None:
    ctx = FakeContext(state={"child": "child-7", "attempt": 1})
    ctx.children["child-7"] = ChildStatus("child-7", "TimedOut", {}, "Step wait timed out")
    with pytest.raises(ActionError) as caught:
        await run(ctx)
    assert caught.value.message == "child automation child-7 ended TimedOut: Step wait timed out"
    assert caught.value.outputs == {"Output": [], "ExecutionId": "child-7", "Status": "TimedOut"}


async def test_target_locations_elsewhere_are_refused_before_starting() -> None:
    ctx = FakeContext(account_id="111111111111", region="us-east-1")
    here = {**INPUTS, "TargetLocations": [{"Accounts": ["111111111111"], "Regions": ["us-east-1"],
                                           "ExecutionRoleName": "Remediate"}]}
    assert isinstance(await run(ctx, here), Suspend)
    away = {**INPUTS, "TargetLocations": [{"Accounts": ["222222222222"], "Regions": ["eu-west-1"]}]}
    with pytest.raises(ActionError, match="names Region eu-west-1, account 222222222222; this"):
        await run(FakeContext(account_id="111111111111"), away)


def test_runtime_parameters_become_lists_of_strings() -> None:
    assert runtime_parameters(
        {"a": "x", "b": 2, "c": False, "d": ["y", 3], "e": {"k": 1}, "f": [{"k": 1}], "g": None}
    ) == {
        "a": ["x"], "b": ["2"], "c": ["false"], "d": ["y", "3"], "e": ['{"k":1}'],
        "f": ['{"k":1}'], "g": [],
    }


def test_static_checks() -> None:
    def messages(inputs: dict[str, Any]) -> list[str]:
        return [f.message for f in SCHEMA.check(inputs, static=True)]

    assert messages({"DocumentName": "D", "Targets": [{"Key": "ParameterValues",
                                                       "Values": ["a"]}]}) == [
        "Targets needs TargetParameterName"
    ]
    assert messages({"DocumentName": "D", "MaxConcurrency": "0"}) == [
        "MaxConcurrency must be a number from 1 or a percentage such as 10%, not '0'"
    ]
    assert messages({"DocumentName": "D", "MaxErrors": "101%"}) == [
        "MaxErrors must be a number or a percentage such as 10%, not '101%'"
    ]
    assert messages({"DocumentName": "D", "MaxErrors": 0, "MaxConcurrency": "{{ c }}"}) == []
    assert messages({"DocumentName": "D", "Targets": [], "TargetMaps": [],
                     "TargetParameterName": "p"}) == [
        "at most one of Targets, TargetMaps may be given"
    ]
