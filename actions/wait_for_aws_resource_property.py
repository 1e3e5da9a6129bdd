"""aws:waitForAwsResourceProperty: poll an AWS API until a property has a desired value.

Same inputs as aws:assertAwsResourceProperty; on timeout (default 3600 s) the step
ends ``TimedOut``.
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
    default_timeout=3600,
)

ACTION = SimpleAction(
    "aws:waitForAwsResourceProperty",
    SCHEMA,
    None,
    idempotent=True,  # read-only polling
    runnable_reason=NO_AWS_BACKEND,
)
