"""What the EC2-shaped actions share: picking the backend (runbook_engine.compute) and
waiting for the states AWS waits for."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from runbook_engine.compute import FAILED_LAUNCH_STATES, TERMINATED, Compute
from runbook_engine.plugin import ActionError

FAILED_IMAGE_STATES = frozenset({"failed", "invalid", "error", "deregistered"})


async def wait_for_instances(
    compute: Compute, instance_ids: Sequence[str], desired: str
) -> list[str]:
    """Poll until every instance is ``desired``; an instance going away (shutting-down,
    terminated) while another state is wanted fails the step at once."""
    while True:
        states = await compute.instance_states(instance_ids)
        if all(state == desired for state in states):
            return states
        if desired != TERMINATED:
            for instance_id, state in zip(instance_ids, states, strict=True):
                if state in FAILED_LAUNCH_STATES:
                    raise ActionError(
                        f"Instance {instance_id} entered unexpected state {state} "
                        f"while waiting for {desired}"
                    )
        await anyio.sleep(compute.poll_delay())


async def wait_for_image(compute: Compute, image_id: str) -> str:
    """Poll until the image is available; a failed image fails the step."""
    while True:
        state = await compute.image_state(image_id)
        if state == "available":
            return state
        if state in FAILED_IMAGE_STATES:
            raise ActionError(f"Image {image_id} entered unexpected state {state}")
        await anyio.sleep(compute.poll_delay())
