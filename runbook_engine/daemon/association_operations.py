"""CreateAssociation, DescribeAssociation, ListAssociations and DeleteAssociation: the
daemon's schedules (``runbook_engine.schedules``) in State Manager's shapes.

An association here runs an Automation runbook on its schedule; without
``ScheduleExpression`` it runs once, at creation. ``Targets`` and
``AutomationTargetParameterName`` are stored and shown; until targets resolve against
an inventory, each firing starts one execution with the parameters as given. Members
that would change what runs and that this server does not implement yet (instances,
calendars, offsets, other accounts...) are refused rather than ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runbook_engine.daemon.config import DaemonConfig
from runbook_engine.daemon.operations import MAX_RESULTS, ApiError, Caller, Handler, Params
from runbook_engine.daemon.paging import InvalidNextToken, page_offset, page_token, query_digest
from runbook_engine.engine import Engine
from runbook_engine.schedules import (
    association_description,
    association_summary,
    create_schedule,
    last_status,
)
from runbook_engine.store.schedules import ScheduleRecord

SUPPORTED = {
    "Name",
    "DocumentVersion",
    "Parameters",
    "Targets",
    "ScheduleExpression",
    "AssociationName",
    "AutomationTargetParameterName",
    "MaxErrors",
    "MaxConcurrency",
    "ApplyOnlyAtCronInterval",
}
FILTER_KEYS = ("Name", "AssociationId", "AssociationName", "AssociationStatusName")


class AssociationOperations:
    def __init__(self, engine: Engine, config: DaemonConfig) -> None:
        self.engine = engine
        self.config = config
        self.handlers: dict[str, Handler] = {
            "CreateAssociation": self.create,
            "DescribeAssociation": self.describe,
            "ListAssociations": self.list_associations,
            "DeleteAssociation": self.delete,
        }

    def _check_document(self, caller: Caller, operation: str, name: str) -> str:
        if name.startswith("arn:"):
            name = name.rsplit("document/", 1)[-1]
        if not caller.policy.allows_document(name):
            resource = f"arn:aws:ssm:{self.config.region}:{self.config.account_id}:document/{name}"
            raise ApiError(
                "AccessDeniedException",
                f"User: {caller.arn} is not authorized to perform: ssm:{operation} on"
                f" resource: {resource}",
            )
        return name

    async def _association(self, params: Params, caller: Caller, operation: str) -> ScheduleRecord:
        association_id = params.get("AssociationId")
        if not association_id:
            raise ApiError(
                "ValidationException",
                "AssociationId is required (associations have no instances here)",
            )
        record = await self.engine.store.schedules.get(association_id)
        self._check_document(caller, operation, record.document_name)
        return record

    async def create(self, params: Params, caller: Caller) -> dict[str, Any]:
        unsupported = sorted(set(params) - SUPPORTED)
        if unsupported:
            raise ApiError(
                "ValidationException",
                f"{', '.join(unsupported)}: not supported by this server yet",
            )
        name = self._check_document(caller, "CreateAssociation", params["Name"])
        record = await create_schedule(
            self.engine,
            document_name=name,
            expression=params.get("ScheduleExpression"),
            created_by=caller.arn,
            parameters=params.get("Parameters"),
            document_version=params.get("DocumentVersion"),
            association_name=params.get("AssociationName"),
            targets=params.get("Targets") or (),
            target_parameter_name=params.get("AutomationTargetParameterName"),
            apply_only_at_cron_interval=bool(params.get("ApplyOnlyAtCronInterval")),
            max_concurrency=params.get("MaxConcurrency"),
            max_errors=params.get("MaxErrors"),
            allow_second_rates=self.config.allow_second_rates,
        )
        return {"AssociationDescription": association_description(record, "Pending", None)}

    async def describe(self, params: Params, caller: Caller) -> dict[str, Any]:
        record = await self._association(params, caller, "DescribeAssociation")
        status, message = await last_status(self.engine, record)
        return {"AssociationDescription": association_description(record, status, message)}

    async def delete(self, params: Params, caller: Caller) -> dict[str, Any]:
        record = await self._association(params, caller, "DeleteAssociation")
        await self.engine.store.schedules.delete(record.association_id)
        return {}

    async def list_associations(self, params: Params, caller: Caller) -> dict[str, Any]:
        filters: dict[str, list[str]] = {}
        for item in params.get("AssociationFilterList") or ():
            filters.setdefault(item["key"], []).append(item["value"])
        shown: list[dict[str, Any]] = []
        for record in await self.engine.store.schedules.list_all():
            if not caller.policy.allows_document(record.document_name):
                continue
            status, _ = await last_status(self.engine, record)
            if _matches(record, status, filters):
                shown.append(association_summary(record, status))
        limit = params.get("MaxResults", MAX_RESULTS)
        digest = query_digest("ListAssociations", filters)
        try:
            offset = page_offset(params.get("NextToken"), digest)
        except InvalidNextToken as exc:
            raise ApiError(exc.code, exc.message) from None
        result: dict[str, Any] = {"Associations": shown[offset : offset + limit]}
        if len(shown) > offset + limit:
            result["NextToken"] = page_token(offset + limit, digest)
        return result


def _matches(record: ScheduleRecord, status: str, filters: dict[str, list[str]]) -> bool:
    values_of = {
        "Name": record.document_name,
        "AssociationId": record.association_id,
        "AssociationName": record.association_name,
        "AssociationStatusName": status,
    }
    for key, values in filters.items():
        if key in values_of:
            if values_of[key] not in values:
                return False
        elif key in ("LastExecutedBefore", "LastExecutedAfter"):
            if record.last_run is None:
                return False
            for value in values:
                moment = _instant(value)
                before = key == "LastExecutedBefore"
                if (record.last_run >= moment) if before else (record.last_run <= moment):
                    return False
        else:  # InstanceId, ResourceGroupName...: no association here has one
            return False
    return True


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ApiError(
            "InvalidFilterValue", f"{value!r} is not an ISO-8601 time such as 2026-01-31T00:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
