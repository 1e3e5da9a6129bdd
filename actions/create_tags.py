"""aws:createTags: tag EC2 resources, managed instances, maintenance windows or parameters.

EC2 takes many resources in one call; the SSM resource types take one at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions.aws_common import NO_AWS_BACKEND
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_
from runbook_engine.plugin import SimpleAction


def _check_tags(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    findings: list[Finding] = []
    resource_type = inputs.get("ResourceType", "EC2")
    resources = inputs.get("ResourceIds")
    if (
        isinstance(resources, list)
        and len(resources) > 1
        and not contains_expression(resource_type)
        and resource_type != "EC2"
    ):
        findings.append(Finding(("ResourceIds",),
                                f"ResourceType {resource_type} takes one resource, "
                                f"not {len(resources)}"))
    tags = inputs.get("Tags")
    for index, tag in enumerate(tags if isinstance(tags, list) else ()):
        if isinstance(tag, Mapping) and "Key" not in tag:
            findings.append(Finding(("Tags", index), "a tag needs a Key"))
    return findings


SCHEMA = ActionSchema(
    inputs={
        "ResourceIds": field_("StringList", required=True),
        "Tags": field_("MapList", required=True, description="[{Key, Value}]"),
        "ResourceType": field_(
            "String", allowed=("EC2", "ManagedInstance", "MaintenanceWindow", "Parameter")
        ),
    },
    validators=(_check_tags,),
    cancel_target_allowed=False,
)

# Tagging again with the same keys and values leaves the resources as they were.
ACTION = SimpleAction(
    "aws:createTags", SCHEMA, None, idempotent=True, runnable_reason=NO_AWS_BACKEND
)
