"""What actions reach as ``ctx.targets`` and ``ctx.documents``.

:class:`Fleet` resolves ``InstanceIds``/``Targets`` against the inventory (plus running
containers found by label, looked up again at every resolution since a runbook may start
containers) and hands out pooled targets. :class:`CommandDocuments` finds Command
documents by name in the ``--documents`` directories and the bundled ``runbooks/``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import anyio

from runbook_engine.documents import DocumentLibrary
from runbook_engine.errors import DocumentError, TargetError
from runbook_engine.inventory import DockerDiscovery, DockerSpec, Instance, Inventory
from runbook_engine.model import CommandDocument
from runbook_engine.targets import Target, TargetPool

log = logging.getLogger("runbook_engine.fleet")


class Fleet:
    def __init__(
        self,
        inventory: Inventory | None = None,
        pool: TargetPool | None = None,
        *,
        ramp_up: bool = True,
    ) -> None:
        self.inventory = inventory or Inventory()
        self.ramp_up = ramp_up
        self._pool = pool

    @property
    def pool(self) -> TargetPool:
        if self._pool is None:
            self._pool = TargetPool()
        return self._pool

    async def current_inventory(self) -> Inventory:
        """The file's instances plus the containers discovery finds now; Docker instances
        carry the tags aws:createTags gave them (see runbook_engine.compute_docker)."""
        found: list[Instance] = []
        for discovery in self.inventory.discovery:
            found.extend(await anyio.to_thread.run_sync(discover_containers, discovery))
        inventory = await self._with_created_tags(self.inventory)
        return inventory.with_instances(found) if found else inventory

    async def _with_created_tags(self, inventory: Inventory) -> Inventory:
        """The file's Docker instances with created tags laid over their own (one call
        per engine; an engine that does not answer leaves its instances as written)."""
        engines = {
            i.connection.url for i in inventory.instances if isinstance(i.connection, DockerSpec)
        }
        if not engines:
            return inventory
        from runbook_engine.compute_docker import read_tag_overlay

        overlays: dict[str | None, dict[str, dict[str, str]]] = {}
        for url in engines:
            try:
                overlays[url] = await anyio.to_thread.run_sync(read_tag_overlay, url)
            except TargetError as exc:
                log.warning("%s", exc.message)
        instances = tuple(
            replace(i, tags={**i.tags, **overlays.get(i.connection.url, {}).get(i.id, {})})
            if isinstance(i.connection, DockerSpec)
            else i
            for i in inventory.instances
        )
        return replace(inventory, instances=instances)

    async def resolve(
        self,
        instance_ids: Sequence[str] | None = None,
        targets: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[Instance]:
        return (await self.current_inventory()).resolve(instance_ids, targets)

    async def resolve_values(self, targets: Sequence[Mapping[str, Any]]) -> list[str]:
        return (await self.current_inventory()).resolve_values(targets)

    def target(self, instance: Instance) -> Target:
        """A target for the instance; cheap, since connections live in the pool."""
        return self.pool.target(instance)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def discover_containers(discovery: DockerDiscovery) -> list[Instance]:
    """Running containers carrying the discovery label (blocking: call in a thread).

    Their tags are their labels, with what aws:createTags added since laid over them
    (Docker cannot relabel a running container; see runbook_engine.compute_docker)."""
    import docker
    import docker.errors
    from docker.utils import kwargs_from_env

    from runbook_engine.compute_docker import tag_overlay

    options: dict[str, Any] = {"base_url": discovery.url} if discovery.url else kwargs_from_env()
    try:
        client = docker.APIClient(version="auto", **options)
        try:
            containers = client.containers(filters={"label": discovery.label})
            overlay = tag_overlay(client) if containers else {}
        finally:
            client.close()
    except (docker.errors.DockerException, OSError) as exc:
        raise TargetError(
            f"cannot list containers for discovery on {discovery.url or 'the Docker engine'}: {exc}"
        ) from exc
    instances = []
    for container in containers:
        labels = {str(k): str(v) for k, v in (container.get("Labels") or {}).items()}
        name = (container.get("Names") or ["/" + container["Id"][:12]])[0].lstrip("/")
        instance_id = labels.get(discovery.label) or name
        tags = {**labels, **overlay.get(instance_id, {})}
        instances.append(
            Instance(instance_id, DockerSpec(container=name, url=discovery.url), tags, "Linux")
        )
    return instances


class CommandDocuments:
    """Command documents by name (``AWS-RunShellScript``) or path."""

    def __init__(self, library: DocumentLibrary | None = None) -> None:
        self.library = library or DocumentLibrary()
        self._parsed: dict[str, CommandDocument] = {}

    def command_document(self, name: str) -> CommandDocument:
        from runbook_engine.validation import validate_text

        text = self.library.find(name)
        key = f"{text.path}\0{text.content}"
        found = self._parsed.get(key)
        if found is not None:
            return found
        report = validate_text(text.content, text.path, {}, name=text.name)
        if report.kind != "Command":
            raise DocumentError(f"{text.path} is not a Command document (schemaVersion 2.2)")
        if not report.valid or not isinstance(report.document, CommandDocument):
            summary = "; ".join(d.format() for d in report.errors[:5])
            raise DocumentError(f"invalid Command document {text.path}: {summary}", report.errors)
        self._parsed[key] = report.document
        return report.document
