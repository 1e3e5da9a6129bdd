"""What the AWS-calling actions share: the check that a ``Service``/``Api`` pair names a
real AWS operation, idempotency tokens, and the property checks of the assert and wait
actions.

Service and operation names come from botocore's bundled models. The list of services
is read once; a service model is read only when a document names that service, and only
its operation names are kept, so validating hundreds of documents stays fast.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from runbook_engine.aws_names import (
    _fold,
    _operations,
    _service_model,
    _services,
    operation_name,
)
from runbook_engine.aws_names import service_model_name as service_model_name
from runbook_engine.aws_names import streams as streams
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import Input, contains_expression, field_
from runbook_engine.selectors import select

SERVICE_AND_API_NAMES = ("Service", "Api")
PROPERTY_CHECK_NAMES = ("Service", "Api", "PropertySelector", "DesiredValues")


def check_service_and_api(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    """``Service`` must be a boto3 client name and ``Api`` one of its operations.

    Only literal values are checked; the API parameters are passed on unchecked.
    """
    service, api = inputs.get("Service"), inputs.get("Api")
    if not isinstance(service, str) or contains_expression(service):
        return []
    model = _services().get(service.strip().lower())
    if model is None:
        return [
            Finding(
                ("Service",),
                f"unknown AWS service {service!r} (Service takes a boto3 "
                "client name such as ec2, ssm or rds)",
            )
        ]
    if not isinstance(api, str) or contains_expression(api):
        return []
    operations = _operations(model)
    if _fold(api.strip()) not in operations:
        message = f"service {service!r} has no operation {api!r}"
        close = difflib.get_close_matches(_fold(api.strip()), list(operations), n=1)
        if close:
            message += f"; did you mean {operations[close[0]]!r}?"
        return [Finding(("Api",), message)]
    return []


SERVICE_AND_API: Mapping[str, Input] = {
    "Service": field_("String", required=True, description="boto3 client name, e.g. ec2"),
    "Api": field_("String", required=True, description="operation name, e.g. DescribeInstances"),
}
"""The inputs every AWS-API action has; the other keys are the operation's parameters."""

PROPERTY_CHECK_INPUTS: Mapping[str, Input] = {
    **SERVICE_AND_API,
    "PropertySelector": field_("String", required=True, description="JSONPath into the response"),
    "DesiredValues": field_(
        "StringList",
        required=True,
        description="accepted values, compared as Python str() (True, 16)",
    ),
}
"""Inputs of aws:assertAwsResourceProperty and aws:waitForAwsResourceProperty."""


def check_property_selector(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    """A selector without the leading ``$`` works on AWS (real runbooks write ``Status``
    and ``Attributes.KmsMasterKeyId``): warn and read it from the root."""
    selector = inputs.get("PropertySelector")
    if isinstance(selector, str) and not contains_expression(selector):
        text = selector.strip()
        if not text.startswith("$"):
            return [
                Finding(
                    ("PropertySelector",),
                    f"PropertySelector should be a JSONPath starting with '$'; "
                    f"{text!r} is read as '$.{text}'",
                    severity="warning",
                )
            ]
    return []


# -- what the running actions share ---------------------------------------------------------


def request_parameters(inputs: Mapping[str, Any], own: Sequence[str]) -> dict[str, Any]:
    """The inputs that are the operation's request parameters (all but the action's own)."""
    return {key: value for key, value in inputs.items() if key not in own}


def idempotency_members(service: str, api: str) -> list[str]:
    """Request members botocore marks as idempotency tokens (``ClientToken``, ...).

    botocore fills a missing one with a random UUID, which would make a re-run create a
    second resource; the actions fill it with :func:`idempotency_token` instead."""
    model, operation = _services().get(service.strip().lower()), operation_name(service, api)
    if model is None or operation is None:
        return []
    shape = _service_model(model).operation_model(operation).input_shape
    if shape is None:
        return []
    members = shape.members.items()
    return [name for name, member in members if member.metadata.get("idempotencyToken")]


def idempotency_token(ctx: Any) -> str:
    """The same token for every run of one step execution (attempts and resumes alike),
    so AWS recognises a repeated create; fits every token pattern AWS uses (starts with
    a letter, letters/digits/hyphens, 39 characters)."""
    seed = f"{ctx.execution_id}:{ctx.step_execution_id}"
    return f"rb-{uuid.uuid5(uuid.NAMESPACE_URL, seed)}"


def python_text(value: Any) -> str:
    """A JSON value as Python's ``str()`` prints it, which is what DesiredValues are
    compared with (``True``, ``16``, ``running``; ssm-reference §4.2)."""
    return str(value)


def property_values(response: Any, selector: str) -> list[str] | None:
    """The selected property as text values (a list selection gives each element);
    None when the selector matches nothing."""
    found, value = select(response, selector)
    if not found:
        return None
    items = value if isinstance(value, list) else [value]
    return [python_text(item) for item in items]


def check_property(response: Any, inputs: Mapping[str, Any]) -> str | None:
    """Why the property is not (yet) as desired, or None when every selected value is one
    of ``DesiredValues``."""
    selector = str(inputs["PropertySelector"])
    desired = [str(item) for item in inputs.get("DesiredValues") or []]
    values = property_values(response, selector)
    if values is None:
        return f"PropertySelector {selector} matched nothing in the response"
    if values and all(value in desired for value in values):
        return None
    shown = values[0] if len(values) == 1 else values
    return f"{selector} is {shown!r}, not one of {desired}"
