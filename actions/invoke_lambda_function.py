"""aws:invokeLambdaFunction: invoke a Lambda function and return its answer.

``InputPayload`` (a map) takes precedence over the legacy ``Payload`` (JSON text).
AWS bounds one invocation at 300 s; real runbooks give these steps timeoutSeconds of
600 and 1200, so that is a limit of the call, not a step maximum here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions.aws_common import NO_AWS_BACKEND
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import SimpleAction

INVOCATION_TIME_LIMIT = 300  # seconds per invocation (ssm-reference §2.4)


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

ACTION = SimpleAction("aws:invokeLambdaFunction", SCHEMA, None, runnable_reason=NO_AWS_BACKEND)
