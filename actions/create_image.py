"""aws:createImage: create an AMI from an EC2 instance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions._compute import wait_for_image
from actions.aws_common import idempotency_token
from runbook_engine.compute import compute_for, instance_backend
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import ActionContext, ActionResult, SimpleAction

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



async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    """Create, checkpoint the image id, wait until it is available (a resumed step
    waits for the image it made rather than making another)."""
    instance_id = str(inputs["InstanceId"])
    compute = compute_for(ctx, await instance_backend(ctx, [instance_id]))
    image_id = str(ctx.state.get("ImageId") or "")
    if not image_id:
        image_id = await compute.create_image(inputs, idempotency_token(ctx))
        await ctx.checkpoint({"ImageId": image_id})
    state = await wait_for_image(compute, image_id)
    return ActionResult(outputs={"ImageId": image_id, "ImageState": state})


ACTION = SimpleAction("aws:createImage", SCHEMA, run)
