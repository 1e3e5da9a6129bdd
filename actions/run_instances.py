"""aws:runInstances: launch EC2 instances and wait until they are ready.

``MinInstanceCount``/``MaxInstanceCount`` are documented as String while AWS's examples
write integers; both are taken, and must be whole numbers of at least 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions._compute import wait_for_instances
from actions.aws_common import idempotency_token
from runbook_engine.compute import RUNNING, compute_for, image_backend
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import ActionContext, ActionResult, SimpleAction

COUNTS = ("MinInstanceCount", "MaxInstanceCount")


def _check_counts(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    findings: list[Finding] = []
    counts: dict[str, int] = {}
    for name in COUNTS:
        value = inputs.get(name)
        if value is None or contains_expression(value):
            continue
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
            findings.append(Finding((name,), f"{name} must be a whole number of at least 1, "
                                             f"not {value!r}"))
        else:
            counts[name] = int(text)
    if len(counts) == 2 and counts["MinInstanceCount"] > counts["MaxInstanceCount"]:
        findings.append(Finding(("MinInstanceCount",),
                                "MinInstanceCount must not be over MaxInstanceCount"))
    return findings


SCHEMA = ActionSchema(
    inputs={
        "ImageId": field_("String", required=True),
        "InstanceType": field_("String", description="default m1.small"),
        "MinInstanceCount": field_("String", "Integer"),
        "MaxInstanceCount": field_("String", "Integer"),
        "AdditionalInfo": field_("String"),
        "BlockDeviceMappings": field_("MapList"),
        "ClientToken": field_("String"),
        "DisableApiTermination": field_("Boolean"),
        "EbsOptimized": field_("Boolean"),
        "IamInstanceProfileArn": field_("String"),
        "IamInstanceProfileName": field_("String"),
        "InstanceInitiatedShutdownBehavior": field_("String", allowed=("stop", "terminate")),
        "KernelId": field_("String"),
        "KeyName": field_("String"),
        "MetadataOptions": field_("StringMap"),
        "Monitoring": field_("Boolean"),
        "NetworkInterfaces": field_("MapList"),
        "Placement": field_("StringMap"),
        "PrivateIpAddress": field_("String"),
        "RamdiskId": field_("String"),
        "SecurityGroupIds": field_("StringList"),
        "SecurityGroups": field_("StringList"),
        "SubnetId": field_("String"),
        "TagSpecifications": field_("MapList"),
        "UserData": field_("String", description="base64"),
    },
    validators=(_check_counts,),
    outputs={"InstanceIds": ValueType.STRING_LIST, "InstanceStates": ValueType.STRING_LIST},
    cancel_target_allowed=False,
)


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    """Launch, checkpoint the ids, wait until every instance runs. A resumed step finds
    its ids in the checkpoint; one that died before the checkpoint sends the same
    ClientToken again, which returns the first launch's instances."""
    backend, image = image_backend(str(inputs["ImageId"]))
    compute = compute_for(ctx, backend)
    instance_ids = list(ctx.state.get("InstanceIds") or [])
    if not instance_ids:
        low = int(str(inputs.get("MinInstanceCount") or 1))
        high = int(str(inputs.get("MaxInstanceCount") or low))
        request = {**inputs, "ImageId": image}
        instance_ids = await compute.run_instances(request, (low, high), idempotency_token(ctx))
        await ctx.checkpoint({"InstanceIds": instance_ids})
    states = await wait_for_instances(compute, instance_ids, RUNNING)
    outputs = {"InstanceIds": instance_ids, "InstanceStates": states}
    return ActionResult(outputs=outputs)


ACTION = SimpleAction("aws:runInstances", SCHEMA, run)
