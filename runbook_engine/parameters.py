"""Parameter Store: String, StringList and SecureString parameters with versions and labels.

Two implementations behind one protocol (and one contract suite,
tests/test_parameter_store_contract.py):

- :class:`LocalParameterStore`, the default: parameters live in the state database
  (runbook_engine.store.parameters) or, for tests and memory:// stores, in memory.
  The rules of AWS Parameter Store (ssm-reference §8) are kept here, once, whatever
  holds the rows. SecureString values are encrypted with Fernet (runbook_engine.secrets)
  under a key kept in a file outside the database: the database holds only ciphertext.
- :class:`~runbook_engine.parameters_aws.AwsParameterStore`: AWS SSM through the AWS
  caller, when ``Settings.parameter_store`` is ``"aws"``
  (runbook_engine.parameter_access picks the store the settings name).

Errors are :class:`ParameterStoreError` carrying the SSM error code (``ParameterNotFound``,
``ParameterVersionNotFound``, ``ParameterAlreadyExists``, ...). It is a LookupError too, so
a missing ``{{ssm:...}}`` reference reads as a lookup that failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from runbook_engine.errors import RunbookError
from runbook_engine.secrets import SecretBox

PARAMETER_TYPES = ("String", "StringList", "SecureString")
DATA_TYPES = ("text", "aws:ec2:image", "aws:ssm:integration")
MAX_VERSIONS = 100
MAX_LEVELS = 15
MAX_NAME = 2048
MAX_VALUE = 4096  # Standard tier
MAX_LABELS_PER_VERSION = 10
_NAME = re.compile(r"^[a-zA-Z0-9_.\-/]+$")
_LABEL = re.compile(r"^[a-zA-Z0-9_.\-]{1,100}$")
MASK = "****"


class ParameterStoreError(RunbookError, LookupError):
    """A Parameter Store request refused, with the SSM error code it maps to."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StoredParameter:
    """One version of a parameter. For a SecureString, ``value`` is ciphertext unless the
    version was read with decryption."""

    name: str
    version: int
    type: str
    value: str
    last_modified: datetime
    description: str = ""
    data_type: str = "text"
    labels: tuple[str, ...] = ()
    allowed_pattern: str = ""
    last_modified_user: str = ""
    selector: str = ""  # ":3" or ":label" when the read named one

    def api(self, *, masked: bool = False) -> dict[str, Any]:
        """The SSM API's ``Parameter`` shape (``masked``: SecureString value hidden)."""
        shape: dict[str, Any] = {
            "Name": self.name,
            "Type": self.type,
            "Value": MASK if masked and self.type == "SecureString" else self.value,
            "Version": self.version,
            "LastModifiedDate": self.last_modified.isoformat(),
            "DataType": self.data_type,
        }
        if self.selector:
            shape["Selector"] = self.selector
        if self.labels:
            shape["Labels"] = list(self.labels)
        if self.description:
            shape["Description"] = self.description
        return shape


class ParameterStore(Protocol):
    async def put(
        self,
        name: str,
        value: str,
        *,
        type: str | None = None,
        overwrite: bool = False,
        description: str | None = None,
        data_type: str | None = None,
        allowed_pattern: str | None = None,
    ) -> int:
        """Create or (with ``overwrite``) update; returns the new version number."""
        ...

    async def get(self, reference: str, *, with_decryption: bool = False) -> StoredParameter:
        """``name``, ``name:VERSION`` or ``name:LABEL`` (no fallback to the latest)."""
        ...

    async def list_parameters(
        self, path: str | None = None, *, recursive: bool = False, with_decryption: bool = False
    ) -> list[StoredParameter]:
        """Latest versions: all (``path`` None), or below ``path`` as GetParametersByPath."""
        ...

    async def history(
        self, name: str, *, with_decryption: bool = False
    ) -> list[StoredParameter]: ...

    async def label(
        self, name: str, labels: Sequence[str], version: int | None = None
    ) -> tuple[int, list[str]]:
        """Attach labels to a version (default the latest): (version, invalid labels)."""
        ...

    async def delete(self, name: str) -> None: ...

    def close(self) -> None:
        """Release what the store holds (database connections)."""
        ...


class ParameterRows(Protocol):
    """Where a local store keeps its rows: every version of one parameter at a time."""

    async def versions(self, name: str) -> list[StoredParameter]:
        """All stored versions of ``name``, oldest first (empty if there is none)."""
        ...

    async def replace(self, name: str, latest: int, versions: list[StoredParameter]) -> None:
        """Replace every version of ``name`` if its latest version is still ``latest``
        (0: it did not exist); ``TooManyUpdates`` if another writer came first. An empty
        list deletes the parameter."""
        ...

    async def latest(self) -> list[StoredParameter]:
        """The latest version of every parameter, by name."""
        ...


def _invalid(message: str) -> ParameterStoreError:
    return ParameterStoreError("ValidationException", message)


def canonical_name(name: str) -> str:
    """The stored form: trimmed; ``/Name`` and ``Name`` at the root are one parameter."""
    text = name.strip()
    if text.startswith("arn:"):
        _, _, text = text.partition(":parameter/")
        text = f"/{text}" if "/" in text else text
    if not text or len(text) > MAX_NAME:
        raise _invalid(f"parameter name must be 1 to {MAX_NAME} characters")
    if " " in text or not _NAME.match(text):
        raise _invalid(
            f"parameter name {name!r} may only contain a-z, A-Z, 0-9, '_', '.', '-' and '/'"
        )
    if text.count("/") == 1 and text.startswith("/"):
        text = text[1:]
    if "/" in text and not text.startswith("/"):
        raise _invalid(f"parameter name {name!r} in a hierarchy must start with '/'")
    if len([part for part in text.split("/") if part]) > MAX_LEVELS:
        raise ParameterStoreError(
            "HierarchyLevelLimitExceededException",
            f"parameter name {name!r} has more than {MAX_LEVELS} hierarchy levels",
        )
    return text


def split_reference(reference: str) -> tuple[str, str | None]:
    """``name:3`` -> (name, "3"); names cannot hold ':' (ARNs are taken apart first)."""
    text = reference.strip()
    if text.startswith("arn:"):
        head, _, tail = text.partition(":parameter/")
        name, sep, selector = tail.partition(":")
        return f"{head}:parameter/{name}", selector if sep else None
    name, sep, selector = text.partition(":")
    return name, selector if sep else None


def _check_new_name(name: str) -> None:
    first = name.lstrip("/").split("/")[0].lower()
    if first.startswith(("aws", "ssm")):
        raise _invalid(f"parameter name {name!r} may not start with 'aws' or 'ssm'")


def _check_value(value: str, type_: str, allowed_pattern: str) -> str:
    if not value:
        raise _invalid("parameter value may not be empty")
    if len(value) > MAX_VALUE:
        raise _invalid(f"parameter value is over {MAX_VALUE} characters (Standard tier)")
    if "{{" in value and "}}" in value:
        raise _invalid("a parameter value may not hold '{{ }}' references")
    if allowed_pattern:
        try:
            pattern = re.compile(allowed_pattern)
        except re.error as exc:
            raise ParameterStoreError(
                "InvalidAllowedPatternException", f"AllowedPattern is not a valid regex: {exc}"
            ) from exc
        if not pattern.fullmatch(value):
            raise ParameterStoreError(
                "ParameterPatternMismatchException",
                f"parameter value does not match AllowedPattern {allowed_pattern}",
            )
    if type_ == "StringList":
        value = ",".join(item.strip() for item in value.split(","))
    return value


def invalid_labels(labels: Sequence[str]) -> list[str]:
    return [
        label
        for label in labels
        if not _LABEL.match(label) or label[0].isdigit() or label.lower().startswith(("aws", "ssm"))
    ]


@dataclass
class LocalParameterStore:
    """Parameter Store rules over rows kept locally; see the module docstring."""

    rows: ParameterRows
    secrets: SecretBox
    user: str = ""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    async def put(
        self,
        name: str,
        value: str,
        *,
        type: str | None = None,
        overwrite: bool = False,
        description: str | None = None,
        data_type: str | None = None,
        allowed_pattern: str | None = None,
    ) -> int:
        key = canonical_name(name)
        if type is not None and type not in PARAMETER_TYPES:
            raise ParameterStoreError(
                "UnsupportedParameterType",
                f"parameter type {type!r} is not one of String, StringList, SecureString",
            )
        if data_type is not None and data_type not in DATA_TYPES:
            raise _invalid(f"DataType {data_type!r} is not one of {', '.join(DATA_TYPES)}")
        versions = await self.rows.versions(key)
        latest = versions[-1] if versions else None
        if latest is None:
            _check_new_name(key)
            if type is None:
                raise _invalid("a parameter type is required when you create a parameter")
        elif not overwrite:
            raise ParameterStoreError(
                "ParameterAlreadyExists", f"the parameter {key} already exists"
            )
        elif type is not None and type != latest.type:
            raise ParameterStoreError(
                "HierarchyTypeMismatchException",
                f"parameter {key} is a {latest.type}; its type cannot change to {type}",
            )
        kind = type or (latest.type if latest else "String")
        pattern = (
            allowed_pattern
            if allowed_pattern is not None
            else (latest.allowed_pattern if latest else "")
        )
        text = _check_value(value, kind, pattern)
        if kind == "SecureString":
            text = self.secrets.encrypt(text)
        number = (latest.version if latest else 0) + 1
        new = StoredParameter(
            name=key,
            version=number,
            type=kind,
            value=text,
            last_modified=self.clock(),
            description=description
            if description is not None
            else (latest.description if latest else ""),
            data_type=data_type or (latest.data_type if latest else "text"),
            allowed_pattern=pattern,
            last_modified_user=self.user,
        )
        kept = list(versions)
        if len(kept) >= MAX_VERSIONS:
            if kept[0].labels:
                raise ParameterStoreError(
                    "ParameterMaxVersionLimitExceeded",
                    f"parameter {key} has {MAX_VERSIONS} versions and the oldest carries a "
                    "label; move or delete the label first",
                )
            kept = kept[1:]
        await self.rows.replace(key, latest.version if latest else 0, [*kept, new])
        return number

    def _reveal(self, parameter: StoredParameter, with_decryption: bool) -> StoredParameter:
        if with_decryption and parameter.type == "SecureString":
            return replace(parameter, value=self.secrets.decrypt(parameter.value))
        return parameter

    async def _versions(self, name: str) -> tuple[str, list[StoredParameter]]:
        key = canonical_name(name)
        versions = await self.rows.versions(key)
        if not versions:
            raise ParameterStoreError("ParameterNotFound", f"parameter {key} was not found")
        return key, versions

    async def get(self, reference: str, *, with_decryption: bool = False) -> StoredParameter:
        name, selector = split_reference(reference)
        key, versions = await self._versions(name)
        chosen = versions[-1]
        if selector is not None:
            match = [
                v
                for v in versions
                if (str(v.version) == selector if selector.isdigit() else selector in v.labels)
            ]
            if not match:
                raise ParameterStoreError(
                    "ParameterVersionNotFound",
                    f"parameter {key} has no version or label {selector!r}",
                )
            chosen = replace(match[0], selector=f":{selector}")
        return self._reveal(chosen, with_decryption)

    async def list_parameters(
        self, path: str | None = None, *, recursive: bool = False, with_decryption: bool = False
    ) -> list[StoredParameter]:
        found = await self.rows.latest()
        if path is not None:
            if not path.startswith("/"):
                raise _invalid(f"path {path!r} must start with '/'")
            base = path.rstrip("/")
            found = [p for p in found if _under(p.name, base, recursive)]
        return [self._reveal(p, with_decryption) for p in found]

    async def history(self, name: str, *, with_decryption: bool = False) -> list[StoredParameter]:
        _, versions = await self._versions(name)
        return [self._reveal(v, with_decryption) for v in versions]

    async def label(
        self, name: str, labels: Sequence[str], version: int | None = None
    ) -> tuple[int, list[str]]:
        key, versions = await self._versions(name)
        target = versions[-1].version if version is None else version
        if not any(v.version == target for v in versions):
            raise ParameterStoreError(
                "ParameterVersionNotFound", f"parameter {key} has no version {target}"
            )
        invalid = invalid_labels(labels)
        good = [label for label in dict.fromkeys(labels) if label not in invalid]
        updated = []
        for v in versions:
            kept = tuple(label for label in v.labels if label not in good)
            if v.version == target:
                kept = tuple(dict.fromkeys([*v.labels, *good]))
                if len(kept) > MAX_LABELS_PER_VERSION:
                    raise ParameterStoreError(
                        "ParameterVersionLabelLimitExceeded",
                        f"version {target} of {key} would carry more than "
                        f"{MAX_LABELS_PER_VERSION} labels",
                    )
            updated.append(replace(v, labels=kept))
        await self.rows.replace(key, versions[-1].version, updated)
        return target, invalid

    async def delete(self, name: str) -> None:
        key, versions = await self._versions(name)
        await self.rows.replace(key, versions[-1].version, [])

    def close(self) -> None:
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()


def _under(name: str, base: str, recursive: bool) -> bool:
    if not base:  # the path "/": root-level names, or everything
        return recursive or "/" not in name.lstrip("/")
    if not name.startswith(base + "/"):
        return False
    return recursive or "/" not in name[len(base) + 1 :]


class MemoryParameterRows:
    """Rows in a dict: for memory:// state stores and tests."""

    def __init__(self) -> None:
        self._rows: dict[str, list[StoredParameter]] = {}

    async def versions(self, name: str) -> list[StoredParameter]:
        return list(self._rows.get(name, []))

    async def replace(self, name: str, latest: int, versions: list[StoredParameter]) -> None:
        current = self._rows.get(name, [])
        if (current[-1].version if current else 0) != latest:
            raise ParameterStoreError("TooManyUpdates", f"parameter {name} changed meanwhile")
        if versions:
            self._rows[name] = list(versions)
        else:
            self._rows.pop(name, None)

    async def latest(self) -> list[StoredParameter]:
        return [self._rows[name][-1] for name in sorted(self._rows)]
