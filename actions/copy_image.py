"""aws:copyImage: copy (and optionally encrypt) an AMI from another Region into this one."""

from __future__ import annotations

from actions.aws_common import NO_AWS_BACKEND
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import SimpleAction

SCHEMA = ActionSchema(
    inputs={
        "SourceRegion": field_("String", required=True),
        "SourceImageId": field_("String", required=True),
        "ImageName": field_("String", required=True),
        "ImageDescription": field_("String"),
        "Encrypted": field_("Boolean"),
        "KmsKeyId": field_("String", description="full ARN of the KMS key"),
        "ClientToken": field_("String"),
    },
    outputs={"ImageId": ValueType.STRING, "ImageState": ValueType.STRING},
    cancel_target_allowed=False,
)

ACTION = SimpleAction("aws:copyImage", SCHEMA, None, runnable_reason=NO_AWS_BACKEND)
