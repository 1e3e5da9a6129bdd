"""aws:copyImage: copy (and optionally encrypt) an AMI from another Region into this one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions._compute import wait_for_image
from actions.aws_common import idempotency_token
from runbook_engine.compute import compute_for, image_backend
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import ActionContext, ActionResult, SimpleAction

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



async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    backend, source = image_backend(str(inputs["SourceImageId"]))
    compute = compute_for(ctx, backend)
    image_id = str(ctx.state.get("ImageId") or "")
    if not image_id:
        request = {**inputs, "SourceImageId": source}
        image_id = await compute.copy_image(request, idempotency_token(ctx))
        await ctx.checkpoint({"ImageId": image_id})
    state = await wait_for_image(compute, image_id)
    return ActionResult(outputs={"ImageId": image_id, "ImageState": state})


ACTION = SimpleAction("aws:copyImage", SCHEMA, run)
