"""Docker as a compute backend: containers stand for instances, local images for AMIs.

The engine used is the first Docker discovery of the inventory (``discover: docker:``),
else ``DOCKER_HOST`` or the local socket. Containers aws:runInstances starts carry that
discovery's label with their instance id as value, so ``ctx.targets`` resolves them like
any discovered container and aws:runCommand/aws:runShellScript reach them by
``InstanceIds``. They run ``sleep`` under Docker's init, so stop and terminate are quick.

Tags: Docker cannot change the labels of an existing container or image, and recreating
a container to relabel it would lose what runs in it. aws:createTags therefore keeps the
tags of a resource in a registry container: a container that is created and never
started (no process, no resources but a record), labelled ``runbook.tags-for=<id>`` and
``runbook.tag.<Key>=<Value>``. Tagging again replaces it with one holding the merged
tags; :meth:`DockerCompute.tags` reads them back, and Docker discovery
(:func:`runbook_engine.fleet.discover_containers`) lays them over the container's labels
through :func:`tag_overlay`, so ``Targets: tag:Key=Value`` sees tags added while the
container runs; so does :class:`~runbook_engine.fleet.Fleet` for the containers the
inventory file lists (tagged on their own engine). As on EC2, the tags of a terminated
instance stay readable.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import docker
import docker.errors
from docker.utils import kwargs_from_env

from runbook_engine.compute import PENDING, RUNNING, STOPPED, TERMINATED, config_error
from runbook_engine.errors import TargetError
from runbook_engine.inventory import DEFAULT_DISCOVERY_LABEL, DockerSpec
from runbook_engine.plugin import ActionContext, ActionError

T = TypeVar("T")
TOKEN_LABEL = "runbook.client-token"
TAGS_FOR_LABEL = "runbook.tags-for"
TAG_PREFIX = "runbook.tag."
POLL_DELAY = 0.1  # a local engine answers at once; polls cost little
KEEP_RUNNING = ["sleep", "2147483647"]
STATES = {"running": RUNNING, "created": STOPPED, "exited": STOPPED, "paused": STOPPED,
          "restarting": PENDING, "removing": TERMINATED, "dead": TERMINATED}  # fmt: skip


class DockerCompute:
    def __init__(
        self,
        url: str | None,
        label: str = DEFAULT_DISCOVERY_LABEL,
        listed: Mapping[str, DockerSpec] | None = None,
    ) -> None:
        self.url = url
        self.label = label
        self.listed = dict(listed or {})  # containers the inventory file names, by id

    def poll_delay(self) -> float:
        return POLL_DELAY

    @classmethod
    def for_context(cls, ctx: ActionContext) -> DockerCompute:
        inventory = getattr(ctx.targets, "inventory", None)
        listed = {
            i.id: i.connection
            for i in getattr(inventory, "instances", ())
            if isinstance(i.connection, DockerSpec)
        }
        for discovery in getattr(inventory, "discovery", ()):
            return cls(discovery.url, discovery.label, listed)
        return cls(os.environ.get("DOCKER_HOST"), listed=listed)

    async def _call(self, doing: str, function: Callable[[docker.APIClient], T]) -> T:
        def call() -> T:
            options: dict[str, Any] = {"base_url": self.url} if self.url else kwargs_from_env()
            client = docker.APIClient(version="auto", **options)
            try:
                return function(client)
            finally:
                client.close()

        try:
            return await anyio.to_thread.run_sync(call)
        except docker.errors.ImageNotFound as exc:
            raise config_error(f"{doing}: no such Docker image ({exc.explanation})") from exc
        except docker.errors.NotFound as exc:
            raise ActionError(f"{doing}: not found ({exc.explanation})") from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise ActionError(f"{doing} on {self.url or 'the Docker engine'}: {exc}") from exc

    # -- instances ------------------------------------------------------------------------

    def _container(self, client: docker.APIClient, instance_id: str) -> dict[str, Any] | None:
        """The container of an instance id (its discovery label), or None when gone."""
        found = client.containers(all=True, filters={"label": f"{self.label}={instance_id}"})
        return found[0] if found else None

    async def run_instances(
        self, inputs: Mapping[str, Any], count: tuple[int, int], token: str
    ) -> list[str]:
        image = str(inputs["ImageId"]).removeprefix("docker:")

        def launch(client: docker.APIClient) -> list[str]:
            earlier = client.containers(all=True, filters={"label": f"{TOKEN_LABEL}={token}"})
            if earlier:  # the same step ran before: its containers are the answer
                return sorted(c["Labels"][self.label] for c in earlier)
            ids = []
            for _ in range(count[1]):
                # underscore: never the form of an EC2 id (``<type>-<hex>``)
                instance_id = f"ctr_{uuid.uuid4().hex[:12]}"
                created = client.create_container(
                    image,
                    KEEP_RUNNING,
                    name=instance_id,
                    labels={self.label: instance_id, TOKEN_LABEL: token},
                    host_config=client.create_host_config(init=True),
                )
                client.start(created["Id"])
                ids.append(instance_id)
            return ids

        return await self._call(f"starting containers from {image}", launch)

    async def has_instance(self, instance_id: str) -> bool:
        """Whether a container (in any state) carries the discovery label for this id."""
        return await self._call(
            f"looking for instance {instance_id}",
            lambda client: self._container(client, instance_id) is not None,
        )

    async def instance_states(self, instance_ids: Sequence[str]) -> list[str]:
        def states(client: docker.APIClient) -> list[str]:
            answer = []
            for instance_id in instance_ids:
                container = self._container(client, instance_id)
                status = str(container["State"]) if container else "removing"
                answer.append(STATES.get(status, PENDING))
            return answer

        return await self._call("reading container states", states)

    async def change_state(self, instance_ids: Sequence[str], desired: str, force: bool) -> None:
        def change(client: docker.APIClient) -> None:
            for instance_id in instance_ids:
                container = self._container(client, instance_id)
                if container is None:
                    if desired == TERMINATED:
                        continue
                    raise ActionError(f"instance {instance_id} is terminated (no container)")
                if desired == RUNNING:
                    client.start(container["Id"])
                elif desired == STOPPED:
                    client.stop(container["Id"], timeout=0 if force else 10)
                else:
                    client.remove_container(container["Id"], force=True)

        await self._call(f"changing containers to {desired}", change)

    # -- images ---------------------------------------------------------------------------

    async def create_image(self, inputs: Mapping[str, Any], token: str) -> str:
        instance_id = str(inputs["InstanceId"])
        repository = re.sub(r"[^a-z0-9._/-]+", "-", str(inputs["ImageName"]).lower()).strip("-.")

        def commit(client: docker.APIClient) -> str:
            container = self._container(client, instance_id)
            if container is None:
                raise ActionError(f"instance {instance_id} has no container to make an image of")
            made = client.commit(
                container["Id"],
                repository=repository or "image",
                tag="latest",
                message=str(inputs.get("ImageDescription") or ""),
                conf={"Labels": {TOKEN_LABEL: token}, "Cmd": None},
            )
            return str(made["Id"])

        return await self._call(f"committing {instance_id}", commit)

    async def image_state(self, image_id: str) -> str:
        def state(client: docker.APIClient) -> str:
            try:
                client.inspect_image(image_id)
            except docker.errors.ImageNotFound:
                return "deregistered"
            return "available"

        return await self._call(f"inspecting image {image_id}", state)

    async def copy_image(self, inputs: Mapping[str, Any], token: str) -> str:
        """A copy is a new name for the same layers (``docker tag``); its id is the name."""
        source = str(inputs["SourceImageId"]).removeprefix("docker:")
        name = re.sub(r"[^a-z0-9._/-]+", "-", str(inputs["ImageName"]).lower()).strip("-.")

        def tag(client: docker.APIClient) -> str:
            client.tag(source, name or "image", "latest")
            return f"{name or 'image'}:latest"

        return await self._call(f"copying image {source}", tag)

    async def delete_image(self, image_id: str) -> None:
        def remove(client: docker.APIClient) -> None:
            try:
                client.remove_image(image_id, force=True)
            except docker.errors.ImageNotFound:
                pass  # already gone: deleting converges

        await self._call(f"removing image {image_id}", remove)

    # -- tags -----------------------------------------------------------------------------

    def _registry_name(self, resource_id: str) -> str:
        return "rb-tags-" + hashlib.sha256(resource_id.encode()).hexdigest()[:16]

    async def create_tags(self, resource_ids: Sequence[str], tags: Mapping[str, str]) -> None:
        """Tag containers and images. A container the inventory file lists is tagged on
        its own engine (where discovery reads the tags back), the rest on this one."""
        on_own_engine: dict[str | None, list[str]] = {}
        for resource_id in resource_ids:
            spec = self.listed.get(resource_id)
            if spec is not None:
                on_own_engine.setdefault(spec.url, []).append(resource_id)
        for url, ids in on_own_engine.items():
            await DockerCompute(url, self.label, self.listed)._create_tags(ids, tags)
        listed = {i for ids in on_own_engine.values() for i in ids}
        rest = [i for i in resource_ids if i not in listed]
        if rest:
            await self._create_tags(rest, tags)

    async def _create_tags(self, resource_ids: Sequence[str], tags: Mapping[str, str]) -> None:
        def tag(client: docker.APIClient) -> None:
            for resource_id in resource_ids:
                container = self._container(client, resource_id)
                spec = self.listed.get(resource_id)
                if container is None and spec is not None:
                    container = {"Image": client.inspect_container(spec.container)["Image"]}
                image = container["Image"] if container else resource_id.removeprefix("docker:")
                name = self._registry_name(resource_id)
                merged = {**self._tags(client, resource_id), **tags}
                labels = {TAGS_FOR_LABEL: resource_id}
                labels.update({TAG_PREFIX + k: v for k, v in merged.items()})
                try:
                    client.remove_container(name, force=True)
                except docker.errors.NotFound:
                    pass
                client.create_container(image, ["true"], name=name, labels=labels)

        await self._call(f"tagging {list(resource_ids)}", tag)

    def _tags(self, client: docker.APIClient, resource_id: str) -> dict[str, str]:
        try:
            labels = client.inspect_container(self._registry_name(resource_id))["Config"]["Labels"]
        except docker.errors.NotFound:
            return {}
        prefix = len(TAG_PREFIX)
        return {k[prefix:]: v for k, v in (labels or {}).items() if k.startswith(TAG_PREFIX)}

    async def tags(self, resource_id: str) -> dict[str, str]:
        """The tags aws:createTags gave a container or image."""
        spec = self.listed.get(resource_id)
        if spec is not None and spec.url != self.url:
            return await DockerCompute(spec.url, self.label).tags(resource_id)
        return await self._call(
            f"reading tags of {resource_id}", lambda c: self._tags(c, resource_id)
        )


def read_tag_overlay(url: str | None) -> dict[str, dict[str, str]]:
    """:func:`tag_overlay` of the engine at ``url`` (blocking: call in a thread); a
    :class:`TargetError` when the engine does not answer."""
    options: dict[str, Any] = {"base_url": url} if url else kwargs_from_env()
    try:
        client = docker.APIClient(version="auto", **options)
        try:
            return tag_overlay(client)
        finally:
            client.close()
    except (docker.errors.DockerException, OSError) as exc:
        raise TargetError(f"cannot read tags from {url or 'the Docker engine'}: {exc}") from exc


def tag_overlay(client: docker.APIClient) -> dict[str, dict[str, str]]:
    """The tags aws:createTags keeps in registry containers, by resource id (one list call;
    blocking, like the client)."""
    overlay: dict[str, dict[str, str]] = {}
    prefix = len(TAG_PREFIX)
    for registry in client.containers(all=True, filters={"label": TAGS_FOR_LABEL}):
        labels = registry.get("Labels") or {}
        resource_id = labels.get(TAGS_FOR_LABEL)
        if resource_id:
            overlay[str(resource_id)] = {
                str(k)[prefix:]: str(v) for k, v in labels.items() if str(k).startswith(TAG_PREFIX)
            }
    return overlay
