"""The inventory: which managed instances exist, their tags, and how to reach each one.

A YAML file (``--inventory FILE``, default ``$XDG_CONFIG_HOME/runbook/inventory.yaml``)::

    instances:
      - id: web-1
        tags: {Role: web}
        ssh: {host: 10.0.0.5, port: 22, user: deploy, identity_file: ~/.ssh/id_ed25519}
      - id: box-1
        docker: {container: box-1}
      - id: here
        local: {}
    groups:
      web-servers: [web-1]
    discover:
      docker: {label: runbook.instance}    # running containers with this label
    defaults:                              # under every instance's ssh / docker map
      ssh: {user: deploy, reboot_command: sudo -n systemctl reboot, reboot_timeout: 300}

``InstanceIds`` and ``Targets`` (``InstanceIds``, ``tag:Key``, ``tag-key``,
``ResourceGroup`` / ``resource-groups:Name``, ``ParameterValues``,
``AWS::EC2::Instance: ["*"]``) resolve against it; several ``Targets`` must all match
(as in Run Command). An unknown instance id, group or key is a
:class:`~runbook_engine.errors.TargetError` before anything runs. ``localhost`` is always
known (this machine) unless the file names an instance so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from runbook_engine.errors import TargetError

LOCALHOST = "localhost"
LOCAL_ALIASES = frozenset({"localhost", "local"})
DEFAULT_DISCOVERY_LABEL = "runbook.instance"
# Root reboots; anybody else through sudo without a password prompt (-n: fail, not hang).
DEFAULT_REBOOT_COMMAND = (
    'if [ "$(id -u)" = 0 ]; then exec /sbin/reboot; else exec sudo -n /sbin/reboot; fi'
)


@dataclass(frozen=True)
class LocalSpec:
    pass


@dataclass(frozen=True)
class SshSpec:
    host: str
    port: int = 22
    user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None  # default: ~/.ssh/known_hosts
    verify_host_key: bool = True  # false: the explicit, logged opt-out
    password: str | None = None
    connect_timeout: float = 10.0
    max_sessions: int = 10  # channels at once on the pooled connection (sshd MaxSessions)
    reboot_command: str = DEFAULT_REBOOT_COMMAND  # exit code 194 runs it
    reboot_timeout: float = 600.0  # to go down and come back (the step timeout bounds it too)


@dataclass(frozen=True)
class DockerSpec:
    container: str
    url: str | None = None  # the Docker engine; default: DOCKER_HOST or the local socket
    reboot_timeout: float = 120.0


Connection = LocalSpec | SshSpec | DockerSpec


@dataclass(frozen=True)
class Instance:
    id: str
    connection: Connection
    tags: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None  # Linux unless told; the local host reports its own

    @property
    def kind(self) -> str:
        return {LocalSpec: "local", SshSpec: "ssh", DockerSpec: "docker"}[type(self.connection)]


@dataclass(frozen=True)
class DockerDiscovery:
    url: str | None = None
    label: str = DEFAULT_DISCOVERY_LABEL  # containers carrying it; its value names the id


@dataclass(frozen=True)
class Inventory:
    instances: tuple[Instance, ...] = ()
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    discovery: tuple[DockerDiscovery, ...] = ()
    path: str = "<no inventory>"

    def with_instances(self, extra: Sequence[Instance]) -> Inventory:
        """This inventory plus discovered instances (ids already listed win)."""
        known = {i.id for i in self.instances}
        added = tuple(i for i in extra if i.id not in known)
        return Inventory(self.instances + added, self.groups, self.discovery, self.path)

    def get(self, instance_id: str) -> Instance:
        for instance in self.instances:
            if instance.id == instance_id:
                return instance
        if instance_id in LOCAL_ALIASES:
            return Instance(instance_id, LocalSpec())
        raise TargetError(f"Instance {instance_id} is not in the inventory ({self.path})")

    # -- resolution ----------------------------------------------------------------------

    def resolve(
        self,
        instance_ids: Sequence[str] | None = None,
        targets: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[Instance]:
        """The instances named by ``InstanceIds`` or ``Targets``, in a stable order."""
        if instance_ids:
            return self._by_ids([str(i) for i in instance_ids])
        chosen: list[Instance] | None = None
        for target in targets or ():
            found = self._one_target(target)
            if chosen is None:
                chosen = found
            else:
                ids = {i.id for i in found}
                chosen = [i for i in chosen if i.id in ids]
        return chosen or []

    def resolve_values(self, targets: Sequence[Mapping[str, Any]]) -> list[str]:
        """Target values for rate-controlled automations: ``ParameterValues`` are kept as
        written; every other key gives instance ids."""
        if len(targets) == 1 and targets[0].get("Key") == "ParameterValues":
            return [str(v) for v in targets[0].get("Values") or ()]
        return [i.id for i in self.resolve(None, targets)]

    def _by_ids(self, ids: Sequence[str]) -> list[Instance]:
        if "*" in ids:
            return list(self.instances)
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise TargetError(f"Instance ids given more than once: {', '.join(duplicates)}")
        known = {i.id for i in self.instances} | LOCAL_ALIASES
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise TargetError(
                f"Instance ids not in the inventory ({self.path}): {', '.join(unknown)}"
            )
        return [self.get(i) for i in ids]

    def _one_target(self, target: Mapping[str, Any]) -> list[Instance]:
        key = str(target.get("Key") or "")
        raw = target.get("Values") or []
        values = [str(v) for v in ([raw] if isinstance(raw, str) else raw)]
        if key in ("InstanceIds", "ParameterValues"):
            return self._by_ids(values)
        if key.startswith("tag:"):
            tag = key[len("tag:") :]
            return [i for i in self.instances if tag in i.tags and i.tags[tag] in values]
        if key == "tag-key":
            return [i for i in self.instances if any(v in i.tags for v in values)]
        if key in ("ResourceGroup", "resource-groups:Name"):
            members: list[str] = []
            for name in values:
                if name not in self.groups:
                    declared = ", ".join(sorted(self.groups)) or "none"
                    raise TargetError(
                        f"Resource group {name} is not in the inventory ({self.path}; "
                        f"groups: {declared})"
                    )
                members.extend(m for m in self.groups[name] if m not in members)
            return self._by_ids(members)
        if key == "AWS::EC2::Instance":
            if values and values != ["*"]:
                raise TargetError("Key AWS::EC2::Instance takes the value * (every instance)")
            return list(self.instances)
        raise TargetError(
            f"Target key {key!r} is not supported (InstanceIds, tag:<key>, tag-key, "
            "ResourceGroup, resource-groups:Name, ParameterValues, AWS::EC2::Instance)"
        )


# -- loading ------------------------------------------------------------------------------


def default_inventory_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "runbook" / "inventory.yaml"


def load_inventory(path: str | Path) -> Inventory:
    where = str(path)
    try:
        data = yaml.safe_load(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise TargetError(f"cannot read inventory {where}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise TargetError(f"inventory {where} is not valid YAML: {exc}") from exc
    return parse_inventory(data or {}, where)


def parse_inventory(data: Any, where: str = "<inventory>") -> Inventory:
    if not isinstance(data, Mapping):
        raise TargetError(f"inventory {where}: must be a map with 'instances'")
    _only(data, ("instances", "groups", "discover", "defaults"), f"inventory {where}")
    defaults = _defaults(data.get("defaults"), f"inventory {where}: defaults")
    instances = [
        _instance(raw, f"{where}: instances[{n}]", defaults)
        for n, raw in enumerate(data.get("instances") or [])
    ]
    ids = [i.id for i in instances]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise TargetError(f"inventory {where}: instance ids listed twice: {', '.join(duplicates)}")
    groups: dict[str, tuple[str, ...]] = {}
    for name, members in (data.get("groups") or {}).items():
        if not isinstance(members, list):
            raise TargetError(f"inventory {where}: group {name} must be a list of instance ids")
        unknown = [str(m) for m in members if str(m) not in ids and str(m) not in LOCAL_ALIASES]
        if unknown:
            raise TargetError(
                f"inventory {where}: group {name} names unknown instances: {', '.join(unknown)}"
            )
        groups[str(name)] = tuple(str(m) for m in members)
    discovery: list[DockerDiscovery] = []
    docker = (data.get("discover") or {}).get("docker")
    for n, raw in enumerate(docker if isinstance(docker, list) else [docker] if docker else []):
        discovery.append(_spec(DockerDiscovery, raw or {}, f"{where}: discover.docker[{n}]"))
    return Inventory(tuple(instances), groups, tuple(discovery), where)


def _defaults(raw: Any, where: str) -> dict[str, Mapping[str, Any]]:
    """``defaults: {ssh: {...}, docker: {...}}``: fields every instance of that kind
    gets unless it sets them itself (a shared user, reboot command or Docker engine)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise TargetError(f"{where}: must be a map with ssh and/or docker")
    _only(raw, ("ssh", "docker"), where)
    found: dict[str, Mapping[str, Any]] = {}
    for kind, cls in (("ssh", SshSpec), ("docker", DockerSpec)):
        fields_ = raw.get(kind) or {}
        if not isinstance(fields_, Mapping):
            raise TargetError(f"{where}.{kind}: must be a map")
        _only(fields_, [f.name for f in fields(cls)], f"{where}.{kind}")
        found[kind] = fields_
    return found


def _instance(raw: Any, where: str, defaults: Mapping[str, Mapping[str, Any]]) -> Instance:
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise TargetError(f"{where}: an instance needs an 'id'")
    _only(raw, ("id", "tags", "platform", "ssh", "docker", "local"), where)
    kinds = [k for k in ("ssh", "docker", "local") if k in raw]
    if len(kinds) != 1:
        raise TargetError(
            f"{where}: give exactly one of ssh, docker, local (got {kinds or 'none'})"
        )
    kind = kinds[0]
    connection: Connection
    if kind in ("ssh", "docker"):
        own = raw[kind]
        if not isinstance(own, Mapping):
            raise TargetError(f"{where}.{kind}: must be a map")
        cls = SshSpec if kind == "ssh" else DockerSpec
        connection = _spec(cls, {**defaults.get(kind, {}), **own}, f"{where}.{kind}")
    else:
        connection = LocalSpec()
    tags = raw.get("tags") or {}
    if not isinstance(tags, Mapping):
        raise TargetError(f"{where}: tags must be a map of key to value")
    platform = raw.get("platform")
    return Instance(
        str(raw["id"]),
        connection,
        {str(k): str(v) for k, v in tags.items()},
        str(platform) if platform else None,
    )


def _only(raw: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = [str(k) for k in raw if k not in allowed]
    if unknown:
        raise TargetError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})"
        )


def _spec(cls: Any, raw: Any, where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise TargetError(f"{where}: must be a map")
    names = [f.name for f in fields(cls)]
    _only(raw, names, where)
    try:
        return cls(**{k: _typed(cls, k, v) for k, v in raw.items()})
    except (TypeError, ValueError) as exc:
        raise TargetError(f"{where}: {exc}") from exc


def _typed(cls: Any, name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(cls)}[name]
    if value is None:
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if name in ("identity_file", "known_hosts"):
        return os.path.expanduser(str(value))  # paths are expanded once, at load
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    return str(value)


def inventory_from_option(path: str | None, environ: Mapping[str, str] | None = None) -> Inventory:
    """``--inventory FILE`` when given, else the default file when it exists, else empty."""
    if path:
        return load_inventory(path)
    default = default_inventory_path(environ if environ is not None else os.environ)
    return load_inventory(default) if default.is_file() else Inventory()
