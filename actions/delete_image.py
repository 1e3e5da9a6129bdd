"""aws:deleteImage: deregister an AMI and delete its snapshots."""

from __future__ import annotations

from actions.aws_common import NO_AWS_BACKEND
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.plugin import SimpleAction

SCHEMA = ActionSchema(inputs={"ImageId": field_("String", required=True)})

# A second deregistration of the same image fails, so an attempt is not simply repeated.
ACTION = SimpleAction("aws:deleteImage", SCHEMA, None, runnable_reason=NO_AWS_BACKEND)
