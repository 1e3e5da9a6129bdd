"""The daemon's configuration: a YAML file (cli-contract.md), overridden by flags.

::

    listen: 127.0.0.1:8080
    state: postgresql+psycopg://runbook@db/runbook     # default: the CLI's SQLite file
    region: us-east-1
    account_id: "000000000000"
    credentials:                 # SigV4 keys the API accepts, each mapped to a principal
      - {access_key_id: AKIAEXAMPLE1, secret_access_key: "...", principal: alice}
    policies:                    # optional; a principal without one may do everything
      viewer: {operations: ["Get*", "Describe*"], documents: ["*"], parameters: ["/app/*"]}
    parameter_key_file: /etc/runbook/parameter.key   # SecureString key (default as the CLI's)
    documents: [/etc/runbook/documents]
    inventory: /etc/runbook/inventory.yaml
    workers: 4                   # executions run at once by this daemon
    lease_seconds: 30            # a dead daemon's executions move on after this
    poll_seconds: 1.0            # how often idle workers look for due executions
    shutdown_grace_seconds: 10   # SIGTERM: running steps get this long to finish
    schedule_poll_seconds: 1.0   # how often the scheduler looks for due schedules
    park_timers_after_seconds: 5 # a longer aws:sleep frees its worker until it is due
    allow_second_rates: false    # accept rate(N seconds) schedules (tests, benchmarks)
    max_request_bytes: 1048576
    tls: {certificate: server.pem, key: server.key}
    dashboard:                   # the web dashboard at /ui/ (dashboard/ package)
      users:                     # hashes from `runbook dashboard-password`
        - {name: alice, password_hash: "scrypt$16384$8$1$..."}
      session_secret: "..."      # optional: signs session cookies; random per start if unset
      session_hours: 8

Unknown keys are refused, so a typo does not silently leave a default in force.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from runbook_engine.errors import RunbookError

DEFAULT_PORT = 8080


class ConfigError(RunbookError):
    code = "ValidationException"


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret_access_key: str
    principal: str


@dataclass(frozen=True)
class Policy:
    """What a principal may do: operation names, document names and Parameter Store names
    (shell patterns; ``*`` crosses ``/``, and a leading ``/`` is optional on either side,
    as in the ``parameter/app/*`` resource of an IAM policy)."""

    operations: tuple[str, ...] = ("*",)
    documents: tuple[str, ...] = ("*",)
    parameters: tuple[str, ...] = ("*",)

    def allows_operation(self, operation: str) -> bool:
        return any(fnmatchcase(operation, pattern) for pattern in self.operations)

    def allows_document(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self.documents)

    def allows_parameter(self, name: str) -> bool:
        rooted = "/" + name.lstrip("/")
        return any(fnmatchcase(rooted, "/" + p.lstrip("/")) for p in self.parameters)


ALLOW_ALL = Policy()


@dataclass(frozen=True)
class DashboardUser:
    """A person who may log in to the web dashboard; approvals name them as principal."""

    name: str
    password_hash: str


@dataclass(frozen=True)
class DaemonConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    state: str | None = None
    region: str = "us-east-1"
    account_id: str = "000000000000"
    credentials: tuple[Credential, ...] = ()
    policies: Mapping[str, Policy] = field(default_factory=dict)
    documents: tuple[str, ...] = ()
    inventory: str | None = None
    workers: int = 4
    lease_seconds: float = 30.0
    poll_seconds: float = 1.0
    shutdown_grace_seconds: float = 10.0
    max_request_bytes: int = 1024 * 1024
    clock_skew_seconds: float = 300.0
    schedule_poll_seconds: float = 1.0
    park_timers_after_seconds: float = 5.0
    allow_second_rates: bool = False
    tls_certificate: str | None = None
    tls_key: str | None = None
    dashboard_users: tuple[DashboardUser, ...] = ()
    dashboard_secret: str | None = None
    dashboard_session_seconds: float = 8 * 3600.0
    parameter_key_file: str | None = None

    def dashboard_user(self, name: str) -> DashboardUser | None:
        return next((user for user in self.dashboard_users if user.name == name), None)

    def policy(self, principal: str) -> Policy:
        return self.policies.get(principal, ALLOW_ALL)

    def credential(self, access_key_id: str) -> Credential | None:
        for credential in self.credentials:
            if credential.access_key_id == access_key_id:
                return credential
        return None

    def principal_arn(self, principal: str) -> str:
        """How ExecutedBy and approvals name a principal (an IAM user ARN, like AWS)."""
        if principal.startswith("arn:"):
            return principal
        return f"arn:aws:iam::{self.account_id}:user/{principal}"


_KEYS = {
    "listen",
    "state",
    "region",
    "account_id",
    "credentials",
    "policies",
    "documents",
    "inventory",
    "workers",
    "lease_seconds",
    "poll_seconds",
    "shutdown_grace_seconds",
    "max_request_bytes",
    "clock_skew_seconds",
    "schedule_poll_seconds",
    "park_timers_after_seconds",
    "allow_second_rates",
    "tls",
    "dashboard",
    "parameter_key_file",
}


def load_config(path: str | Path) -> DaemonConfig:
    """Read and check a configuration file; ``ConfigError`` names what is wrong."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a map of settings")
    unknown = sorted(set(map(str, data)) - _KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown settings: {', '.join(unknown)}")
    return parse_config(data, str(path))


def parse_config(data: Mapping[str, Any], where: str = "configuration") -> DaemonConfig:
    config = DaemonConfig()
    changes: dict[str, Any] = {}
    if "listen" in data:
        changes["host"], changes["port"] = parse_listen(_text(data, "listen", where), where)
    for key in ("state", "region", "account_id", "inventory", "parameter_key_file"):
        if data.get(key) is not None:
            changes[key] = _text(data, key, where)
    base = Path(where).parent if where != "configuration" else Path()
    if "parameter_key_file" in changes:  # like documents: relative to the file
        changes["parameter_key_file"] = str(base / Path(changes["parameter_key_file"]).expanduser())
    if "documents" in data:
        documents = data["documents"]
        if isinstance(documents, str):
            documents = [documents]
        if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
            raise ConfigError(f"{where}: documents must be a list of directories")
        changes["documents"] = tuple(str(base / Path(d).expanduser()) for d in documents)
    for key, kind in (("workers", int), ("max_request_bytes", int)):
        if key in data:
            value = data[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where}: {key} must be a whole number of at least 1")
            changes[key] = kind(value)
    for key in (
        "lease_seconds",
        "poll_seconds",
        "shutdown_grace_seconds",
        "clock_skew_seconds",
        "schedule_poll_seconds",
        "park_timers_after_seconds",
    ):
        if key in data:
            value = data[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{where}: {key} must be a positive number of seconds")
            changes[key] = float(value)
    if "allow_second_rates" in data:
        if not isinstance(data["allow_second_rates"], bool):
            raise ConfigError(f"{where}: allow_second_rates must be true or false")
        changes["allow_second_rates"] = data["allow_second_rates"]
    changes["credentials"] = _credentials(data.get("credentials") or [], where)
    changes["policies"] = _policies(data.get("policies") or {}, where)
    if "tls" in data:
        tls = data["tls"]
        if not isinstance(tls, dict) or not {"certificate", "key"} <= set(tls):
            raise ConfigError(f"{where}: tls needs certificate and key (file paths)")
        changes["tls_certificate"], changes["tls_key"] = str(tls["certificate"]), str(tls["key"])
    if data.get("dashboard") is not None:
        changes.update(_dashboard(data["dashboard"], where))
    return replace(config, **changes)


def parse_listen(text: str, where: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) or a bare host."""
    host, port = text, DEFAULT_PORT
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], where)
    elif text.count(":") == 1:
        host, _, raw = text.partition(":")
        port = _port(raw, where)
    if not host:
        raise ConfigError(f"{where}: listen needs a host, as in 127.0.0.1:8080")
    return host, port


def _port(raw: str, where: str) -> int:
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise ConfigError(f"{where}: {raw!r} is not a port number")
    return int(raw)


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data[key]
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be a string")
    return str(value)


def _credentials(entries: Any, where: str) -> tuple[Credential, ...]:
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: credentials must be a list")
    found: list[Credential] = []
    for index, entry in enumerate(entries):
        needed = ("access_key_id", "secret_access_key", "principal")
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in needed):
            raise ConfigError(
                f"{where}: credentials[{index}] needs access_key_id, secret_access_key and"
                " principal (strings)"
            )
        if any(c.access_key_id == entry["access_key_id"] for c in found):
            raise ConfigError(f"{where}: access key {entry['access_key_id']} is listed twice")
        found.append(Credential(*(str(entry[k]) for k in needed)))
    return tuple(found)


POLICY_KEYS = ("operations", "documents", "parameters")


def _policies(entries: Any, where: str) -> dict[str, Policy]:
    if not isinstance(entries, dict):
        raise ConfigError(f"{where}: policies must map principal names to policies")
    policies: dict[str, Policy] = {}
    for principal, entry in entries.items():
        if not isinstance(entry, dict) or set(entry) - set(POLICY_KEYS):
            raise ConfigError(
                f"{where}: the policy of {principal} takes operations, documents and"
                " parameters (lists)"
            )
        lists: dict[str, tuple[str, ...]] = {}
        for key in POLICY_KEYS:
            value = entry.get(key, ["*"])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: policies.{principal}.{key} must be a list of names")
            lists[key] = tuple(value)
        policies[str(principal)] = Policy(**lists)
    return policies


MIN_SECRET_CHARS = 16


def _dashboard(entry: Any, where: str) -> dict[str, Any]:
    from runbook_engine.daemon.dashboard.passwords import PasswordHashError, check_hash

    if not isinstance(entry, dict) or set(entry) - {"users", "session_secret", "session_hours"}:
        raise ConfigError(f"{where}: dashboard takes users, session_secret and session_hours")
    users: list[DashboardUser] = []
    raw_users = entry.get("users") or []
    if not isinstance(raw_users, list):
        raise ConfigError(f"{where}: dashboard.users must be a list")
    for index, user in enumerate(raw_users):
        needed = ("name", "password_hash")
        if not isinstance(user, dict) or not all(isinstance(user.get(k), str) for k in needed):
            raise ConfigError(f"{where}: dashboard.users[{index}] needs name and password_hash")
        try:
            check_hash(user["password_hash"])
        except PasswordHashError as exc:
            raise ConfigError(f"{where}: dashboard.users[{index}]: {exc}") from None
        if any(u.name == user["name"] for u in users):
            raise ConfigError(f"{where}: dashboard user {user['name']} is listed twice")
        users.append(DashboardUser(user["name"], user["password_hash"]))
    changes: dict[str, Any] = {"dashboard_users": tuple(users)}
    secret = entry.get("session_secret")
    if secret is not None:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"{where}: dashboard.session_secret must be a string of at least"
                f" {MIN_SECRET_CHARS} characters"
            )
        changes["dashboard_secret"] = secret
    if "session_hours" in entry:
        hours = entry["session_hours"]
        if not isinstance(hours, int | float) or isinstance(hours, bool) or hours <= 0:
            raise ConfigError(f"{where}: dashboard.session_hours must be a positive number")
        changes["dashboard_session_seconds"] = float(hours) * 3600
    return changes
