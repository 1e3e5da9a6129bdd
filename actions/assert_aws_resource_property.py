"""aws:assertAwsResourceProperty: call one AWS API once and check a property of the answer.

The step succeeds when the value at ``PropertySelector`` is one of ``DesiredValues``;
every other input is a request parameter of ``Service``/``Api``.
"""

from __future__ import annotations

from actions.aws_common import (
    NO_AWS_BACKEND,
    PROPERTY_CHECK_INPUTS,
    check_property_selector,
    check_service_and_api,
)
from runbook_engine.inputs import ActionSchema
from runbook_engine.plugin import SimpleAction

SCHEMA = ActionSchema(
    inputs=PROPERTY_CHECK_INPUTS,
    extra_inputs=True,
    validators=(check_service_and_api, check_property_selector),
)

# One read-only call: re-running an interrupted attempt asks the same question again.
ACTION = SimpleAction(
    "aws:assertAwsResourceProperty", SCHEMA, None, idempotent=True, runnable_reason=NO_AWS_BACKEND
)
