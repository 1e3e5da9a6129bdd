"""How the engine reaches the Parameter Store: which store the settings ask for, and the
``{{ssm:...}}`` references of parameter defaults, read when an execution starts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from runbook_engine.errors import ParameterError
from runbook_engine.expressions import ParameterStoreLookup, parse_template
from runbook_engine.model import Runbook
from runbook_engine.parameters import (
    LocalParameterStore,
    MemoryParameterRows,
    ParameterStore,
    ParameterStoreError,
    StoredParameter,
)
from runbook_engine.secrets import SecretBox
from runbook_engine.settings import Settings

if TYPE_CHECKING:
    from runbook_engine.aws import AwsCaller


def open_parameter_store(
    settings: Settings,
    *,
    state_url: str | None,
    aws: Callable[[], AwsCaller],
    user: str = "",
) -> ParameterStore:
    """The Parameter Store ``settings`` ask for: AWS SSM through ``aws()``, or local rows
    in the state database at ``state_url`` (None: the default SQLite file; ``memory://``:
    kept in memory)."""
    if settings.parameter_store == "aws":
        from runbook_engine.parameters_aws import AwsParameterStore

        return AwsParameterStore(aws())
    secrets = SecretBox(settings.parameter_key_file)
    if state_url == "memory://":
        return LocalParameterStore(MemoryParameterRows(), secrets, user)
    from runbook_engine.store import default_state_path
    from runbook_engine.store.parameters import SqlParameterRows

    rows = SqlParameterRows.open(state_url or f"sqlite:///{default_state_path()}")
    return LocalParameterStore(rows, secrets, user)


def _ssm_references(value: Any, found: set[tuple[str, str | None]]) -> None:
    if isinstance(value, str) and "{{" in value:
        for ref in parse_template(value).references:
            if ref.namespace == "ssm":
                found.add((ref.name, ref.attribute))
    elif isinstance(value, Mapping):
        for item in value.values():
            _ssm_references(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _ssm_references(item, found)


async def default_lookup(
    runbook: Runbook, supplied: Mapping[str, Any], store: Callable[[], ParameterStore]
) -> ParameterStoreLookup | None:
    """The ``{{ssm:...}}`` values the defaults of unsupplied parameters need, read now
    (rendering is synchronous); None when no default refers to the Parameter Store, so
    that such runbooks never open it. The lookup raises ParameterError with the SSM
    error for a missing parameter or version, and refuses SecureString (§8.5)."""
    wanted: set[tuple[str, str | None]] = set()
    for name, parameter in runbook.parameters.items():
        if name not in supplied and parameter.has_default:
            _ssm_references(parameter.default, wanted)
    if not wanted:
        return None
    parameters = store()
    found: dict[tuple[str, str | None], StoredParameter | ParameterStoreError] = {}
    for name, selector in sorted(wanted, key=lambda item: (item[0], item[1] or "")):
        reference = name if selector is None else f"{name}:{selector}"
        try:
            found[(name, selector)] = await parameters.get(reference)
        except ParameterStoreError as exc:
            found[(name, selector)] = exc

    def lookup(name: str, selector: str | None) -> Any:
        shown = "{{ssm:" + (name if selector is None else f"{name}:{selector}") + "}}"
        item = found.get((name, selector))
        if item is None:
            raise LookupError(f"{shown} was not read at start")
        if isinstance(item, ParameterStoreError):
            raise ParameterError(f"{shown}: {item.code}: {item.message}")
        if item.type == "SecureString":
            raise ParameterError(
                f"{shown}: {item.name} is a SecureString parameter; SecureString parameters "
                "cannot be referenced in parameter defaults"
            )
        return item.value

    return lookup
