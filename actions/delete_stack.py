"""aws:deleteStack: delete a CloudFormation stack and wait until it is gone.

A stack that does not exist (or is already ``DELETE_COMPLETE``) counts as deleted, as
CloudFormation itself treats it; ``DELETE_FAILED`` fails the step with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions._cloudformation import describe_stack, wait_until_settled
from actions.aws_common import idempotency_token
from runbook_engine.aws_surface import AwsError
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.plugin import ActionContext, ActionError, ActionResult, SimpleAction

SCHEMA = ActionSchema(
    inputs={
        "StackName": field_("String", required=True, description="stack name or stack ID"),
        "ClientRequestToken": field_("String"),
        "RetainResources": field_("StringList", description="only for stacks in DELETE_FAILED"),
        "RoleARN": field_("String"),
    },
)


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    name = str(inputs["StackName"])
    try:
        stack = await describe_stack(ctx.aws, name)
    except AwsError as exc:
        if exc.code == "ValidationError" and "does not exist" in exc.service_message:
            ctx.log.info("stack %s does not exist: nothing to delete", name)
            return ActionResult()
        raise
    stack_id = str(stack.get("StackId") or name)
    if stack.get("StackStatus") != "DELETE_COMPLETE":
        request = dict(inputs, StackName=stack_id)
        request.setdefault("ClientRequestToken", idempotency_token(ctx))
        await ctx.aws.call("cloudformation", "DeleteStack", request)
        stack = await wait_until_settled(ctx.aws, stack_id)
    status = str(stack.get("StackStatus", ""))
    if status != "DELETE_COMPLETE":
        reason = stack.get("StackStatusReason") or "no reason given"
        raise ActionError(f"stack {name} ended {status}: {reason}")
    return ActionResult(response=stack)


# CloudFormation treats deleting a stack that is already gone as success.
ACTION = SimpleAction("aws:deleteStack", SCHEMA, run, idempotent=True)
