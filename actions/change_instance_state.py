"""aws:changeInstanceState: start, stop or terminate EC2 instances, or (``CheckStateOnly``)
wait until they are in ``DesiredState`` without changing them.

The action page lists no outputs, but AWS's own step records show ``InstanceStates``;
it is exposed (ssm-reference §10 #10).
"""

from __future__ import annotations

from actions.aws_common import NO_AWS_BACKEND
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import SimpleAction

SCHEMA = ActionSchema(
    inputs={
        "InstanceIds": field_("StringList", required=True),
        "CheckStateOnly": field_("Boolean", description="true: only wait for DesiredState"),
        "DesiredState": field_("String", required=True,
                               allowed=("running", "stopped", "terminated")),
        "Force": field_("Boolean", description="force the stop"),
        "AdditionalInfo": field_("String", description="reserved"),
    },
    outputs={"InstanceStates": ValueType.STRING_LIST},
    default_timeout=3600,
)

# Converges to a desired state: asking again for a state already reached changes nothing.
ACTION = SimpleAction(
    "aws:changeInstanceState", SCHEMA, None, idempotent=True, runnable_reason=NO_AWS_BACKEND
)
