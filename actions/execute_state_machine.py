"""aws:executeStateMachine: start a Step Functions execution and wait for its end."""

from __future__ import annotations

from actions.aws_common import NO_AWS_BACKEND
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import SimpleAction

OUTPUT_NAMES = (
    "executionArn", "input", "name", "output", "startDate", "stateMachineArn", "status", "stopDate"
)

SCHEMA = ActionSchema(
    inputs={
        "stateMachineArn": field_("String", required=True),
        "name": field_("String", description="name of the execution"),
        "input": field_("String", description="JSON text given to the execution"),
    },
    outputs=dict.fromkeys(OUTPUT_NAMES, ValueType.STRING),
)

ACTION = SimpleAction("aws:executeStateMachine", SCHEMA, None, runnable_reason=NO_AWS_BACKEND)
