"""aws:executeStateMachine: start a Step Functions execution and wait for its end.

Succeeds only when the execution ends ``SUCCEEDED``; outputs are the execution's
description (ssm-reference §4.14). When the step is cancelled or times out while the
execution runs, the execution is stopped (StopExecution), shielded from the
cancellation that caused it.

Starting twice is avoided as for aws:createStack: without a ``name`` input the
execution is named after the execution and step, and Step Functions refuses a second
execution of that name (the step then adopts the first one); once started, the step
parks itself for an instant with the execution's ARN in its durable state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from actions.aws_common import idempotency_token
from runbook_engine.aws_surface import AwsCaller, AwsError
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import ActionContext, ActionError, ActionResult, SimpleAction, Suspend

OUTPUT_NAMES = (
    "executionArn",
    "input",
    "name",
    "output",
    "startDate",
    "stateMachineArn",
    "status",
    "stopDate",
)

SCHEMA = ActionSchema(
    inputs={
        "stateMachineArn": field_("String", required=True),
        "name": field_("String", description="name of the execution"),
        "input": field_("String", description="JSON text given to the execution"),
    },
    outputs=dict.fromkeys(OUTPUT_NAMES, ValueType.STRING),
)


def _execution_arn(state_machine_arn: str, name: str) -> str:
    head, _, machine = state_machine_arn.partition(":stateMachine:")
    return f"{head}:execution:{machine}:{name}"


async def _start(inputs: Mapping[str, Any], ctx: ActionContext) -> str:
    machine = str(inputs["stateMachineArn"])
    derived = not inputs.get("name")
    name = idempotency_token(ctx) if derived else str(inputs["name"])
    request = {"stateMachineArn": machine, "name": name}
    if inputs.get("input") is not None:
        request["input"] = str(inputs["input"])
    try:
        answer = await ctx.aws.call("stepfunctions", "StartExecution", request)
    except AwsError as exc:
        if exc.code == "ExecutionAlreadyExists" and derived:
            return _execution_arn(machine, name)  # this step started it before
        raise
    return str(answer["executionArn"])


async def _stop(aws: AwsCaller, arn: str) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(30):
        try:
            await aws.call(
                "stepfunctions",
                "StopExecution",
                {"executionArn": arn, "cause": "the runbook step was cancelled or timed out"},
            )
        except ActionError:
            pass  # it may have ended meanwhile; the step is over either way


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult | Suspend:
    arn = ctx.state.get("executionArn")
    if not arn:
        arn = await _start(inputs, ctx)
        return Suspend(status="InProgress", wake_at=ctx.now(), state={"executionArn": arn})
    aws = ctx.aws
    try:
        while True:
            described = await aws.call("stepfunctions", "DescribeExecution", {"executionArn": arn})
            if described.get("status") != "RUNNING":
                break
            await anyio.sleep(aws.poll_delay())
    except anyio.get_cancelled_exc_class():
        await _stop(aws, str(arn))
        raise
    outputs = {name: str(described[name]) for name in OUTPUT_NAMES if name in described}
    if described.get("status") != "SUCCEEDED":
        why = ": ".join(str(described[k]) for k in ("error", "cause") if described.get(k))
        raise ActionError(
            f"state machine execution {described.get('name')} ended {described.get('status')}"
            + (f": {why}" if why else ""),
            outputs=outputs,
        )
    return ActionResult(outputs=outputs, response=described)


# Re-running an interrupted attempt finds the execution it started (see above).
ACTION = SimpleAction("aws:executeStateMachine", SCHEMA, run, idempotent=True)
