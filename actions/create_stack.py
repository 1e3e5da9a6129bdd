"""aws:createStack: create a CloudFormation stack and wait for a terminal create status.

Succeeds only on ``CREATE_COMPLETE`` (ssm-reference §4.7); any other end status fails
the step with the stack's status reason, outputs set.

Creating twice is avoided in two ways. ``ClientRequestToken`` (when the runbook leaves it
out) is derived from the execution and the step, so a repeated CreateStack is
recognised by CloudFormation as the same request. And once the stack exists, the step
parks itself for an instant with the StackId in its durable state: from then on a
resumed or re-invoked step only waits for that stack. Waiting polls in the step (see
aws:waitForAwsResourceProperty for why).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions._cloudformation import stack_outputs, wait_until_settled
from actions.aws_common import idempotency_token
from runbook_engine.aws_surface import AwsError
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import ActionContext, ActionError, ActionResult, SimpleAction, Suspend

CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
MAX_TEMPLATE_BODY_BYTES = 51200


def _items(value: Any) -> list[Any]:
    """The items of a list input; nothing for a whole ``{{ }}`` expression."""
    return list(value) if isinstance(value, list | tuple) else []


def _check_stack_inputs(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    findings: list[Finding] = []
    for index, capability in enumerate(_items(inputs.get("Capabilities"))):
        if not contains_expression(capability) and capability not in CAPABILITIES:
            findings.append(Finding(("Capabilities", index),
                                    f"unknown capability {capability!r} "
                                    f"(known: {', '.join(CAPABILITIES)})"))
    for index, parameter in enumerate(_items(inputs.get("Parameters"))):
        if isinstance(parameter, Mapping) and "ParameterKey" not in parameter:
            findings.append(Finding(("Parameters", index), "a stack parameter needs ParameterKey"))
    for index, tag in enumerate(_items(inputs.get("Tags"))):
        if isinstance(tag, Mapping) and "Key" not in tag:
            findings.append(Finding(("Tags", index), "a tag needs a Key"))
    body = inputs.get("TemplateBody")
    if isinstance(body, str) and len(body.encode()) > MAX_TEMPLATE_BODY_BYTES:
        findings.append(Finding(("TemplateBody",),
                                f"TemplateBody is over {MAX_TEMPLATE_BODY_BYTES} bytes; "
                                "put the template in S3 and use TemplateURL"))
    return findings


SCHEMA = ActionSchema(
    inputs={
        "StackName": field_("String", required=True),
        "TemplateBody": field_("String"),
        "TemplateURL": field_("String"),
        "Parameters": field_("MapList", description="[{ParameterKey, ParameterValue}]"),
        "Capabilities": field_("StringList"),
        "ClientRequestToken": field_("String", description="set it when maxAttempts > 1"),
        "DisableRollback": field_("Boolean"),
        "OnFailure": field_("String", allowed=("DO_NOTHING", "ROLLBACK", "DELETE")),
        "NotificationARNs": field_("StringList", max_items=5),
        "ResourceTypes": field_("StringList"),
        "RoleARN": field_("String"),
        "StackPolicyBody": field_("String"),
        "StackPolicyURL": field_("String"),
        "Tags": field_("MapList", max_items=10, description="[{Key, Value}]"),
        "TimeoutInMinutes": field_("Integer", minimum=1),
    },
    exactly_one_of=(("TemplateBody", "TemplateURL"),),
    at_most_one_of=(("DisableRollback", "OnFailure"), ("StackPolicyBody", "StackPolicyURL")),
    validators=(_check_stack_inputs,),
    outputs={
        "StackId": ValueType.STRING,
        "StackStatus": ValueType.STRING,
        "StackStatusReason": ValueType.STRING,
    },
    cancel_target_allowed=False,
)



async def _created_by_this_step(ctx: ActionContext, name: str, token: str) -> str | None:
    """The StackId of an existing stack named ``name`` if this step's token created it."""
    answer = await ctx.aws.call("cloudformation", "DescribeStackEvents", {"StackName": name})
    for event in answer.get("StackEvents") or []:
        if event.get("ClientRequestToken") == token:
            return str(event["StackId"])
    return None


async def _create(inputs: Mapping[str, Any], ctx: ActionContext) -> str:
    request = dict(inputs)
    request.setdefault("ClientRequestToken", idempotency_token(ctx))
    try:
        answer = await ctx.aws.call("cloudformation", "CreateStack", request)
    except AwsError as exc:
        if exc.code != "AlreadyExistsException":
            raise
        name, token = str(request["StackName"]), str(request["ClientRequestToken"])
        stack_id = await _created_by_this_step(ctx, name, token)
        if stack_id is None:
            raise
        return stack_id
    return str(answer["StackId"])


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult | Suspend:
    stack_id = ctx.state.get("StackId")
    if not stack_id:
        stack_id = await _create(inputs, ctx)
        ctx.log.info("stack %s created: %s", inputs["StackName"], stack_id)
        return Suspend(status="InProgress", wake_at=ctx.now(), state={"StackId": stack_id})
    stack = await wait_until_settled(ctx.aws, str(stack_id))
    outputs = stack_outputs(stack)
    if outputs["StackStatus"] != "CREATE_COMPLETE":
        reason = outputs["StackStatusReason"] or "no reason given"
        raise ActionError(
            f"stack {inputs['StackName']} ended {outputs['StackStatus']}: {reason}",
            outputs=outputs,
        )
    return ActionResult(outputs=outputs, response=stack)


# Re-running an interrupted attempt repeats CreateStack with the same token, which
# CloudFormation answers with the stack it already made.
ACTION = SimpleAction("aws:createStack", SCHEMA, run, idempotent=True)
