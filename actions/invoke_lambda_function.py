"""aws:invokeLambdaFunction: invoke a Lambda function and return its answer.

``InputPayload`` (a map) takes precedence over the legacy ``Payload`` (JSON text).
AWS bounds one invocation at 300 s; real runbooks give these steps timeoutSeconds of
600 and 1200, so that is a limit of the call, not a step maximum here.

Outputs: ``StatusCode``, ``FunctionError`` (when the function failed), ``LogResult``
and ``Payload`` (the function's answer as text). Custom selectors read
``{StatusCode, FunctionError, LogResult, Payload}`` with ``Payload`` decoded from JSON
(ssm-reference §3.6). A function error fails the step, outputs kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import ActionContext, ActionError, ActionResult, SimpleAction

INVOCATION_TIME_LIMIT = 300  # seconds per invocation (ssm-reference §2.4)
PASSED_AS_IS = ("FunctionName", "Qualifier", "InvocationType", "LogType", "ClientContext")


def _check_log_type(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    log_type = inputs.get("LogType")
    invocation = inputs.get("InvocationType", "RequestResponse")
    if contains_expression(log_type) or contains_expression(invocation):
        return []
    if log_type == "Tail" and invocation != "RequestResponse":
        return [Finding(("LogType",), f"LogType Tail needs InvocationType RequestResponse, "
                                      f"not {invocation!r}")]
    return []


SCHEMA = ActionSchema(
    inputs={
        "FunctionName": field_("String", required=True),
        "Qualifier": field_("String", description="version or alias"),
        "InvocationType": field_("String", allowed=("Event", "RequestResponse", "DryRun")),
        "LogType": field_("String", allowed=("None", "Tail")),
        "ClientContext": field_("String"),
        "InputPayload": field_("StringMap", description="the event given to the handler"),
        "Payload": field_("String", description="JSON text (legacy; InputPayload wins)"),
    },
    validators=(_check_log_type,),
    outputs={
        "StatusCode": ValueType.INTEGER,
        "FunctionError": ValueType.STRING,
        "LogResult": ValueType.STRING,
        "Payload": ValueType.STRING,
    },
)


def _decoded(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    request = {key: inputs[key] for key in PASSED_AS_IS if inputs.get(key) is not None}
    if inputs.get("InputPayload") is not None:
        request["Payload"] = json.dumps(inputs["InputPayload"])
    elif inputs.get("Payload") is not None:
        request["Payload"] = str(inputs["Payload"])
    answer = await ctx.aws.call(
        "lambda", "Invoke", request, read_timeout=INVOCATION_TIME_LIMIT + 10
    )
    payload = answer.get("Payload")
    outputs: dict[str, Any] = {"StatusCode": int(answer.get("StatusCode", 0))}
    for name in ("FunctionError", "LogResult"):
        if answer.get(name):
            outputs[name] = str(answer[name])
    if payload is not None:
        outputs["Payload"] = str(payload)
    response = {**outputs, "Payload": _decoded(str(payload)) if payload is not None else None}
    if outputs.get("FunctionError"):
        detail = str(payload or "")[:1000]
        raise ActionError(
            f"function {inputs['FunctionName']} failed ({outputs['FunctionError']}): {detail}",
            outputs=outputs,
        )
    return ActionResult(outputs=outputs, response=response)


# An invocation may have effects; an interrupted one is not repeated blindly.
ACTION = SimpleAction("aws:invokeLambdaFunction", SCHEMA, run)
