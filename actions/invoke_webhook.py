"""aws:invokeWebhook: call a webhook integration stored in the Parameter Store."""

from __future__ import annotations

from actions.aws_common import NO_AWS_BACKEND
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import SimpleAction

SCHEMA = ActionSchema(
    inputs={
        "IntegrationName": field_("String", required=True),
        "Body": field_("String", description="overrides the integration's default payload"),
    },
    outputs={"Response": ValueType.STRING, "ResponseCode": ValueType.INTEGER},
)

ACTION = SimpleAction("aws:invokeWebhook", SCHEMA, None, runnable_reason=NO_AWS_BACKEND)
