"""aws:createImage: create an AMI from an EC2 instance."""

from __future__ import annotations

from actions.aws_common import NO_AWS_BACKEND
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import SimpleAction

SCHEMA = ActionSchema(
    inputs={
        "InstanceId": field_("String", required=True),
        "ImageName": field_("String", required=True),
        "ImageDescription": field_("String"),
        "NoReboot": field_("Boolean", description="true: EC2 does not shut the instance down"),
        # Documented as a map; EC2's own request shape is a list of maps. Take either.
        "BlockDeviceMappings": field_("StringMap", "MapList"),
    },
    outputs={"ImageId": ValueType.STRING, "ImageState": ValueType.STRING},
    cancel_target_allowed=False,
)

ACTION = SimpleAction("aws:createImage", SCHEMA, None, runnable_reason=NO_AWS_BACKEND)
