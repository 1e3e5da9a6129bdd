"""aws:deleteImage: deregister an AMI and delete its snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runbook_engine.compute import compute_for, image_backend
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.plugin import ActionContext, ActionResult, SimpleAction

SCHEMA = ActionSchema(inputs={"ImageId": field_("String", required=True)})



async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    """Delete the image; one already gone counts as deleted, so a resumed step that
    finds its work done finishes instead of failing."""
    backend, image_id = image_backend(str(inputs["ImageId"]))
    await compute_for(ctx, backend).delete_image(image_id)
    return ActionResult()


ACTION = SimpleAction("aws:deleteImage", SCHEMA, run)
