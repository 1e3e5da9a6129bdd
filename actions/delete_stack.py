"""aws:deleteStack: delete a CloudFormation stack and wait until it is gone."""

from __future__ import annotations

from actions.aws_common import NO_AWS_BACKEND
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.plugin import SimpleAction

SCHEMA = ActionSchema(
    inputs={
        "StackName": field_("String", required=True, description="stack name or stack ID"),
        "ClientRequestToken": field_("String"),
        "RetainResources": field_("StringList", description="only for stacks in DELETE_FAILED"),
        "RoleARN": field_("String"),
    },
)

# CloudFormation treats deleting a stack that is already gone as success.
ACTION = SimpleAction(
    "aws:deleteStack", SCHEMA, None, idempotent=True, runnable_reason=NO_AWS_BACKEND
)
