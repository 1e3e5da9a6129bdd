"""The Parameter Store operations of the SSM API, on the engine's own Parameter Store.

The daemon serves the same store the engine reads ``{{ssm:...}}`` defaults from
(``Engine.parameters``: rows in the state database, SecureString values encrypted with
the key in ``parameter_key_file``), so a parameter put through the API is what the next
execution resolves. The rules of Parameter Store (ssm-reference §8) live in
runbook_engine.parameters; this module maps them onto the wire shapes of §6.4:
timestamps in epoch seconds, ARNs, selectors, tokens for botocore's paginators.

A SecureString read without ``WithDecryption`` answers with the stored ciphertext, as
AWS answers with the KMS blob: the plain text leaves the server only when asked for.

Access: the caller's policy names the parameters it may touch (``Policy.parameters``);
a request naming one outside it is refused whole, and listings leave such names out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from runbook_engine.daemon.config import DaemonConfig
from runbook_engine.daemon.operations import ApiError, Caller, Handler, Params
from runbook_engine.engine import Engine
from runbook_engine.parameters import (
    LocalParameterStore,
    ParameterStore,
    ParameterStoreError,
    StoredParameter,
    canonical_name,
    split_reference,
)

SECURE = "SecureString"
DEFAULT_KEY_ID = "alias/aws/ssm"  # the one key this server encrypts with
TIER = "Standard"  # every parameter here keeps Standard limits (4 KB values)
BY_PATH_MAX_RESULTS = 10
HISTORY_MAX_RESULTS = 50
FILTER_OPTIONS = {"Type": ("Equals", "BeginsWith"), "KeyId": ("Equals", "BeginsWith"),
                  "Label": ("Equals",)}  # fmt: skip
TYPES = ("String", "StringList", "SecureString")

Keep = Callable[[StoredParameter], bool]


class ParameterOperations:
    def __init__(self, engine: Engine, config: DaemonConfig) -> None:
        self.engine = engine
        self.config = config
        self.handlers: dict[str, Handler] = {
            "PutParameter": self.put,
            "GetParameter": self.get,
            "GetParameters": self.get_many,
            "GetParametersByPath": self.by_path,
            "GetParameterHistory": self.history,
            "LabelParameterVersion": self.label,
            "DeleteParameter": self.delete,
        }

    # -- access and shapes ---------------------------------------------------------------

    def _store(self, caller: Caller | None = None) -> ParameterStore:
        """The engine's store; writes record the caller's ARN as LastModifiedUser."""
        store = self.engine.parameters
        if caller is not None and isinstance(store, LocalParameterStore):
            return replace(store, user=caller.arn)  # same rows and key, another user name
        return store

    def arn(self, name: str) -> str:
        return (
            f"arn:aws:ssm:{self.config.region}:{self.config.account_id}"
            f":parameter/{name.lstrip('/')}"
        )

    def _check_access(self, caller: Caller, operation: str, reference: str) -> str:
        """The canonical name ``reference`` stands for, if the caller may touch it."""
        name = canonical_name(split_reference(reference)[0])
        if not caller.policy.allows_parameter(name):
            raise ApiError(
                "AccessDeniedException",
                f"User: {caller.arn} is not authorized to perform: ssm:{operation} on"
                f" resource: {self.arn(name)}",
            )
        return name

    def shape(self, parameter: StoredParameter) -> dict[str, Any]:
        """The API's ``Parameter``."""
        shape: dict[str, Any] = {
            "Name": parameter.name,
            "Type": parameter.type,
            "Value": parameter.value,
            "Version": parameter.version,
            "LastModifiedDate": parameter.last_modified.timestamp(),
            "ARN": self.arn(parameter.name),
            "DataType": parameter.data_type,
        }
        if parameter.selector:
            shape["Selector"] = parameter.selector
        return shape

    @staticmethod
    def history_shape(parameter: StoredParameter) -> dict[str, Any]:
        """The API's ``ParameterHistory``."""
        shape: dict[str, Any] = {
            "Name": parameter.name,
            "Type": parameter.type,
            "LastModifiedDate": parameter.last_modified.timestamp(),
            "LastModifiedUser": parameter.last_modified_user,
            "Value": parameter.value,
            "Version": parameter.version,
            "Labels": list(parameter.labels),
            "Tier": TIER,
            "Policies": [],
            "DataType": parameter.data_type,
        }
        if parameter.type == SECURE:
            shape["KeyId"] = DEFAULT_KEY_ID
        if parameter.description:
            shape["Description"] = parameter.description
        if parameter.allowed_pattern:
            shape["AllowedPattern"] = parameter.allowed_pattern
        return shape

    # -- writes ----------------------------------------------------------------------------

    async def put(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = self._check_access(caller, "PutParameter", params["Name"])
        if params.get("Policies"):
            raise ApiError(
                "ValidationException",
                "Parameter policies need the Advanced tier, which this server does not offer",
            )
        if params.get("Tags"):
            raise ApiError("ValidationException", "Tags on parameters are not supported yet")
        key_id = params.get("KeyId")
        if key_id is not None:
            if params.get("Type") not in (SECURE, None):
                raise ApiError("ValidationException", "KeyId applies to SecureString only")
            if key_id != DEFAULT_KEY_ID:
                raise ApiError(
                    "InvalidKeyId",
                    f"This server encrypts SecureString values with its own key; KeyId may"
                    f" only be {DEFAULT_KEY_ID}",
                )
        version = await self._store(caller).put(
            name,
            params["Value"],
            type=params.get("Type"),
            overwrite=bool(params.get("Overwrite", False)),
            description=params.get("Description"),
            data_type=params.get("DataType") or None,
            allowed_pattern=params.get("AllowedPattern"),
        )
        # Tier: Standard, Advanced and Intelligent-Tiering are accepted; the answer says
        # which tier the parameter has, and here that is always Standard.
        return {"Version": version, "Tier": TIER}

    async def label(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = self._check_access(caller, "LabelParameterVersion", params["Name"])
        version, invalid = await self._store(caller).label(
            name, list(params["Labels"]), params.get("ParameterVersion")
        )
        result: dict[str, Any] = {"ParameterVersion": version}
        if invalid:
            result["InvalidLabels"] = invalid
        return result

    async def delete(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = self._check_access(caller, "DeleteParameter", params["Name"])
        await self._store().delete(name)
        return {}

    # -- reads -----------------------------------------------------------------------------

    async def get(self, params: Params, caller: Caller) -> dict[str, Any]:
        self._check_access(caller, "GetParameter", params["Name"])
        found = await self._store().get(
            params["Name"], with_decryption=bool(params.get("WithDecryption"))
        )
        return {"Parameter": self.shape(found)}

    async def get_many(self, params: Params, caller: Caller) -> dict[str, Any]:
        names = list(dict.fromkeys(params["Names"]))
        for reference in names:
            try:
                self._check_access(caller, "GetParameters", reference)
            except ParameterStoreError:
                pass  # a malformed name is reported in InvalidParameters below
        decrypt = bool(params.get("WithDecryption"))
        found: list[StoredParameter] = []
        invalid: list[str] = []
        for reference in names:
            try:
                found.append(await self._store().get(reference, with_decryption=decrypt))
            except ParameterStoreError:
                invalid.append(reference)
        found.sort(key=lambda p: (p.name, p.version))
        result: dict[str, Any] = {"Parameters": [self.shape(p) for p in found]}
        if invalid:
            result["InvalidParameters"] = invalid
        return result

    async def by_path(self, params: Params, caller: Caller) -> dict[str, Any]:
        path = str(params["Path"]).strip()
        recursive = bool(params.get("Recursive"))
        filters = params.get("ParameterFilters") or []
        keep, labels = parameter_filters(filters)
        limit = params.get("MaxResults", BY_PATH_MAX_RESULTS)
        digest = _digest("GetParametersByPath", path, recursive, filters)
        after = _after(params.get("NextToken"), digest)
        store = self._store()
        # Sorted here, not by the database: its collation may order names otherwise.
        latest = sorted(
            await store.list_parameters(path, recursive=recursive), key=lambda p: p.name
        )
        chosen: list[StoredParameter] = []
        for parameter in latest:
            if after is not None and parameter.name <= after:
                continue
            if not caller.policy.allows_parameter(parameter.name):
                continue
            if labels:
                labelled = _labelled(await store.history(parameter.name), labels)
                if labelled is None:
                    continue
                parameter = labelled
            if keep(parameter):
                chosen.append(parameter)
            if len(chosen) > limit:
                break
        page = chosen[:limit]
        if params.get("WithDecryption"):
            page = [await self._decrypted(store, p) for p in page]
        result: dict[str, Any] = {"Parameters": [self.shape(p) for p in page]}
        if len(chosen) > limit:
            result["NextToken"] = _token(page[-1].name, digest)
        return result

    async def history(self, params: Params, caller: Caller) -> dict[str, Any]:
        name = self._check_access(caller, "GetParameterHistory", params["Name"])
        limit = params.get("MaxResults", HISTORY_MAX_RESULTS)
        digest = _digest("GetParameterHistory", name)
        after = _after(params.get("NextToken"), digest, numeric=True)
        versions = await self._store().history(
            name, with_decryption=bool(params.get("WithDecryption"))
        )
        if after is not None:
            versions = [v for v in versions if v.version > int(after)]
        page = versions[:limit]
        result: dict[str, Any] = {"Parameters": [self.history_shape(v) for v in page]}
        if len(versions) > limit:
            result["NextToken"] = _token(str(page[-1].version), digest)
        return result

    @staticmethod
    async def _decrypted(store: ParameterStore, parameter: StoredParameter) -> StoredParameter:
        if parameter.type != SECURE:
            return parameter
        plain = await store.get(f"{parameter.name}:{parameter.version}", with_decryption=True)
        return replace(parameter, value=plain.value)


def _labelled(versions: Sequence[StoredParameter], labels: Sequence[str]) -> StoredParameter | None:
    """The version carrying one of ``labels`` (a label is on one version at most)."""
    for version in reversed(versions):
        for label in labels:
            if label in version.labels:
                return replace(version, selector=f":{label}")
    return None


def parameter_filters(filters: Sequence[Any]) -> tuple[Keep, list[str]]:
    """GetParametersByPath's ``ParameterFilters``: a test for Type and KeyId, and the
    labels asked for (ssm-reference §8.4: other keys are ``InvalidFilterKey``)."""
    tests: list[Keep] = []
    labels: list[str] = []
    for entry in filters:
        key = entry["Key"]
        if key not in FILTER_OPTIONS:
            raise ApiError(
                "InvalidFilterKey",
                f"The filter key {key} is not valid for GetParametersByPath; use Type, KeyId"
                " or Label",
            )
        option = entry.get("Option", "Equals")
        if option not in FILTER_OPTIONS[key]:
            raise ApiError(
                "InvalidFilterOption",
                f"The option {option} is not valid for the filter key {key}; use"
                f" {' or '.join(FILTER_OPTIONS[key])}",
            )
        values = list(entry.get("Values") or [])
        if not values:
            raise ApiError("InvalidFilterValue", f"The filter {key} needs at least one value")
        if key == "Label":
            labels.extend(values)
            continue
        if key == "Type" and option == "Equals":
            wrong = [v for v in values if v not in TYPES]
            if wrong:
                raise ApiError(
                    "InvalidFilterValue",
                    f"The filter value {wrong[0]} is not valid for Type; use {', '.join(TYPES)}",
                )
        tests.append(_value_test(key, option, values))
    return (lambda parameter: all(test(parameter) for test in tests)), labels


def _value_test(key: str, option: str, values: list[str]) -> Keep:
    def field(parameter: StoredParameter) -> str | None:
        if key == "Type":
            return parameter.type
        return DEFAULT_KEY_ID if parameter.type == SECURE else None

    def keep(parameter: StoredParameter) -> bool:
        value = field(parameter)
        if value is None:
            return False
        if option == "BeginsWith":
            return any(value.startswith(v) for v in values)
        return value in values

    return keep


# -- tokens: the last item a page returned, bound to the query that made it ------------------


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _token(after: str, digest: str) -> str:
    raw = json.dumps({"after": after, "query": digest}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _after(token: str | None, digest: str, *, numeric: bool = False) -> str | None:
    """Where the next page starts (after a name, or a version); tokens are keyed by the
    last item rather than an offset, so a put or delete between pages skips nothing."""
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = data["after"]
        if data["query"] != digest or not isinstance(after, str):
            raise ValueError("another query's token")
        if numeric and not after.isdigit():
            raise ValueError("another query's token")
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError("InvalidNextToken", "The specified token isn't valid.") from None
    return after
