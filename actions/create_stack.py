"""aws:createStack: create a CloudFormation stack and wait for a terminal create status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions.aws_common import NO_AWS_BACKEND
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import SimpleAction

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

ACTION = SimpleAction("aws:createStack", SCHEMA, None, runnable_reason=NO_AWS_BACKEND)
