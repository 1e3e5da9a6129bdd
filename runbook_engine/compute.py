"""Two compute backends behind the EC2-shaped actions, and the rule that picks one.

aws:runInstances, aws:changeInstanceState, aws:createImage, aws:copyImage,
aws:deleteImage and aws:createTags work on EC2 (through ``ctx.aws``,
:mod:`runbook_engine.compute_ec2`) or on a Docker engine (containers stand for instances,
local images for AMIs, :mod:`runbook_engine.compute_docker`). An id names one backend
unambiguously; the engine never guesses:

Images (``ImageId``, ``SourceImageId``):
  * ``ami-`` followed by hex digits is an EC2 image;
  * ``docker:<reference>`` is the local Docker image ``<reference>`` (the way to name a
    local image whose name would otherwise look like an AMI id);
  * anything else is a local Docker image reference (``busybox:runbook-test``,
    ``sha256:...``, what aws:createImage on Docker returned).

Instances (``InstanceIds``, ``InstanceId``, ``ResourceIds``):
  * an id the inventory (file or Docker discovery, ``ctx.targets``) lists as a Docker
    container is a Docker instance; so is a stopped container carrying the discovery
    label with that id as value (discovery lists running containers only). Containers
    aws:runInstances starts carry the discovery label, so they are found that way;
  * ``i-`` followed by hex digits is an EC2 instance, unless the inventory lists it as a
    Docker container, which is an error (ambiguous); an ``i-`` id listed with SSH or
    local access is the EC2 instance reached that way, so EC2;
  * an id that is neither is an error (unknown), as is a list mixing both backends.

Other resources (aws:createTags): ``<type>-<hex>`` ids (``sg-``, ``vol-``, ``snap-``) are
EC2's; image ids follow the image rule. Containers aws:runInstances starts are named
``ctr_<hex>``, which never has an EC2 id's form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from runbook_engine.errors import TargetError
from runbook_engine.plugin import ActionContext, ActionError, FailureStage

Backend = Literal["ec2", "docker"]
EC2_INSTANCE = re.compile(r"^i-[0-9a-f]{8,17}$")
EC2_IMAGE = re.compile(r"^ami-[0-9a-f]{8,17}$")
EC2_RESOURCE = re.compile(r"^[a-z]+-[0-9a-f]{8,17}$")  # sg-, vol-, snap-, subnet- ...
DOCKER_PREFIX = "docker:"

# EC2's instance states; Docker's container states are mapped onto them.
PENDING, RUNNING, STOPPED, TERMINATED = "pending", "running", "stopped", "terminated"
FAILED_LAUNCH_STATES = frozenset({"shutting-down", "terminated"})


class Compute(Protocol):
    """What the EC2-shaped actions ask of a backend. Waiting is the caller's (the
    actions poll ``instance_states``/``image_state``), so both backends wait alike."""

    def poll_delay(self) -> float:
        """Seconds to sleep between two polls of a state."""
        ...

    async def run_instances(
        self, inputs: Mapping[str, Any], count: tuple[int, int], token: str
    ) -> list[str]:
        """Start instances (the same ``token`` again returns the same instances)."""
        ...

    async def instance_states(self, instance_ids: Sequence[str]) -> list[str]: ...

    async def change_state(self, instance_ids: Sequence[str], desired: str, force: bool) -> None:
        """Ask for ``desired`` (running, stopped, terminated); does not wait."""
        ...

    async def create_image(self, inputs: Mapping[str, Any], token: str) -> str: ...

    async def image_state(self, image_id: str) -> str: ...

    async def copy_image(self, inputs: Mapping[str, Any], token: str) -> str: ...

    async def delete_image(self, image_id: str) -> None: ...

    async def create_tags(self, resource_ids: Sequence[str], tags: Mapping[str, str]) -> None: ...


def config_error(message: str) -> ActionError:
    return ActionError(message, stage=FailureStage.PRE_VERIFICATION)


def image_backend(image_id: str) -> tuple[Backend, str]:
    """The backend of an image id and the id that backend knows it by."""
    text = image_id.strip()
    if text.startswith(DOCKER_PREFIX):
        return "docker", text.removeprefix(DOCKER_PREFIX)
    if EC2_IMAGE.match(text):
        return "ec2", text
    if text.startswith("ami-"):
        raise config_error(
            f"image id {text!r} is neither an EC2 AMI id (ami- and hex digits) nor a Docker "
            f"image; write {DOCKER_PREFIX}{text} for a local Docker image of that name"
        )
    if not text:
        raise config_error("an empty image id names no image")
    return "docker", text


async def instance_backend(ctx: ActionContext, instance_ids: Sequence[str]) -> Backend:
    """The one backend all ``instance_ids`` belong to, by the rule in the module docstring."""
    if not instance_ids:
        raise config_error("no instance ids given")
    found: set[Backend] = set()
    for instance_id in instance_ids:
        try:
            kind = (await ctx.targets.resolve(instance_ids=[instance_id]))[0].kind
        except TargetError:
            kind = None
        ec2_form = bool(EC2_INSTANCE.match(instance_id))
        if kind is None and await _stopped_container(ctx, instance_id):
            kind = "docker"
        if kind == "docker" and ec2_form:
            raise config_error(
                f"instance id {instance_id} is ambiguous: it has the form of an EC2 instance id "
                "and the inventory lists it as a Docker container; rename the inventory entry"
            )
        if kind == "docker":
            found.add("docker")
        elif ec2_form:
            found.add("ec2")
        else:
            where = f"listed with {kind} access, not as a container" if kind else "unknown"
            raise config_error(
                f"instance id {instance_id} names no compute backend: it is not an EC2 "
                f"instance id (i- and hex digits) nor a Docker container in the inventory "
                f"({where})"
            )
    if len(found) > 1:
        raise config_error(
            f"instance ids {list(instance_ids)} mix EC2 instances and Docker containers; "
            "one step works on one backend"
        )
    return found.pop()


async def _stopped_container(ctx: ActionContext, instance_id: str) -> bool:
    """Discovery lists running containers only (the ones commands can reach); a stopped
    one that carries the discovery label is still a Docker instance."""
    inventory = getattr(ctx.targets, "inventory", None)
    if not getattr(inventory, "discovery", ()):
        return False
    from runbook_engine.compute_docker import DockerCompute

    return await DockerCompute.for_context(ctx).has_instance(instance_id)


async def resource_backend(ctx: ActionContext, resource_id: str) -> tuple[Backend, str]:
    """The backend of an aws:createTags resource: images by the image rule; an id Docker
    knows as an instance is Docker; other ``<type>-<hex>`` ids (``sg-``, ``vol-`` ...)
    are EC2 resources."""
    if resource_id.startswith(("ami-", DOCKER_PREFIX)) or ":" in resource_id:
        return image_backend(resource_id)
    if EC2_RESOURCE.match(resource_id) and not EC2_INSTANCE.match(resource_id):
        return "ec2", resource_id
    return await instance_backend(ctx, [resource_id]), resource_id


def compute_for(ctx: ActionContext, backend: Backend) -> Compute:
    if backend == "ec2":
        from runbook_engine.compute_ec2 import Ec2Compute

        return Ec2Compute(ctx.aws)
    from runbook_engine.compute_docker import DockerCompute

    return DockerCompute.for_context(ctx)
