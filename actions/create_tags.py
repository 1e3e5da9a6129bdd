"""aws:createTags: tag EC2 resources, managed instances, maintenance windows or parameters.

EC2 takes many resources in one call; the SSM resource types take one at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runbook_engine.compute import compute_for, resource_backend
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_
from runbook_engine.plugin import ActionContext, ActionError, ActionResult, SimpleAction


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
        findings.append(
            Finding(
                ("ResourceIds",),
                f"ResourceType {resource_type} takes one resource, not {len(resources)}",
            )
        )
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


SSM_RESOURCE_TYPES = {"ManagedInstance", "MaintenanceWindow", "Parameter"}


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    """EC2 resources go to EC2 or Docker by the rule of runbook_engine.compute; the SSM
    resource types go to SSM's AddTagsToResource."""
    ids = [str(i) for i in inputs["ResourceIds"]]
    tags = {str(t["Key"]): str(t.get("Value", "")) for t in inputs["Tags"]}
    resource_type = str(inputs.get("ResourceType") or "EC2")
    if resource_type in SSM_RESOURCE_TYPES:
        pairs = [{"Key": k, "Value": v} for k, v in tags.items()]
        request = {"ResourceType": resource_type, "ResourceId": ids[0], "Tags": pairs}
        await ctx.aws.call("ssm", "AddTagsToResource", request)
        return ActionResult()
    found = [await resource_backend(ctx, i) for i in ids]
    backends = {backend for backend, _ in found}
    if len(backends) > 1:
        raise ActionError(f"ResourceIds {ids} mix EC2 and Docker resources; tag them apart")
    backend = backends.pop()
    names = [name for _, name in found]
    await compute_for(ctx, backend).create_tags(names, tags)
    return ActionResult()


# Tagging again with the same keys and values leaves the resources as they were.
ACTION = SimpleAction("aws:createTags", SCHEMA, run, idempotent=True)
