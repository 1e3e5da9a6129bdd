"""Parameter Store on AWS SSM, through the AWS caller (``Settings.parameter_store="aws"``).

Same protocol as the local store (runbook_engine.parameters); a service error becomes a
ParameterStoreError with the SSM error code, so callers see one kind of failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from runbook_engine.aws_surface import AwsCaller, AwsError
from runbook_engine.parameters import ParameterStoreError, StoredParameter, split_reference
from runbook_engine.plugin import ActionError


def _parameter(shape: dict[str, Any]) -> StoredParameter:
    modified = shape.get("LastModifiedDate")
    return StoredParameter(
        name=str(shape.get("Name", "")),
        version=int(shape.get("Version", 0)),
        type=str(shape.get("Type", "String")),
        value=str(shape.get("Value", "")),
        last_modified=datetime.fromisoformat(modified) if modified else datetime.now(UTC),
        description=str(shape.get("Description", "")),
        data_type=str(shape.get("DataType", "text")),
        labels=tuple(shape.get("Labels") or ()),
        allowed_pattern=str(shape.get("AllowedPattern", "")),
        last_modified_user=str(shape.get("LastModifiedUser", "")),
        selector=str(shape.get("Selector", "")),
    )


class AwsParameterStore:
    def __init__(self, caller: AwsCaller) -> None:
        self.caller = caller

    async def _ssm(self, api: str, **parameters: Any) -> dict[str, Any]:
        try:
            return await self.caller.call("ssm", api, parameters)
        except AwsError as exc:
            raise ParameterStoreError(exc.code, exc.service_message) from exc
        except ActionError as exc:
            raise ParameterStoreError("ValidationException", exc.message) from exc

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
        request: dict[str, Any] = {"Name": name, "Value": value, "Overwrite": overwrite}
        optional = {
            "Type": type,
            "Description": description,
            "DataType": data_type,
            "AllowedPattern": allowed_pattern,
        }
        request.update({k: v for k, v in optional.items() if v is not None})
        answer = await self._ssm("PutParameter", **request)
        return int(answer.get("Version", 0))

    async def get(self, reference: str, *, with_decryption: bool = False) -> StoredParameter:
        answer = await self._ssm("GetParameter", Name=reference, WithDecryption=with_decryption)
        found = _parameter(answer.get("Parameter") or {})
        _, selector = split_reference(reference)
        if selector and not found.selector:  # not every SSM implementation echoes it
            found = replace(found, selector=f":{selector}")
        return found

    async def list_parameters(
        self, path: str | None = None, *, recursive: bool = False, with_decryption: bool = False
    ) -> list[StoredParameter]:
        found: list[StoredParameter] = []
        token: str | None = None
        while True:
            paging = {"NextToken": token} if token else {}
            if path is None:
                answer = await self._ssm("DescribeParameters", **paging)
                for meta in answer.get("Parameters") or []:
                    found.append(await self.get(str(meta["Name"]), with_decryption=with_decryption))
            else:
                answer = await self._ssm(
                    "GetParametersByPath",
                    Path=path,
                    Recursive=recursive,
                    WithDecryption=with_decryption,
                    **paging,
                )
                found.extend(_parameter(p) for p in answer.get("Parameters") or [])
            token = answer.get("NextToken")
            if not token:
                return sorted(found, key=lambda p: p.name)

    async def history(self, name: str, *, with_decryption: bool = False) -> list[StoredParameter]:
        found: list[StoredParameter] = []
        token: str | None = None
        while True:
            paging = {"NextToken": token} if token else {}
            answer = await self._ssm(
                "GetParameterHistory", Name=name, WithDecryption=with_decryption, **paging
            )
            found.extend(_parameter({"Name": name, **p}) for p in answer.get("Parameters") or [])
            token = answer.get("NextToken")
            if not token:
                return sorted(found, key=lambda p: p.version)

    async def label(
        self, name: str, labels: Sequence[str], version: int | None = None
    ) -> tuple[int, list[str]]:
        request: dict[str, Any] = {"Name": name, "Labels": list(labels)}
        if version is not None:
            request["ParameterVersion"] = version
        answer = await self._ssm("LabelParameterVersion", **request)
        return int(answer.get("ParameterVersion", version or 0)), list(
            answer.get("InvalidLabels") or []
        )

    async def delete(self, name: str) -> None:
        await self._ssm("DeleteParameter", Name=name)

    def close(self) -> None:
        """The AWS caller belongs to the engine, which closes it."""
