"""Schedules: run a runbook with parameters on a cron or rate expression (State Manager
associations, the maintenance-window use case). Created by ``runbook schedule create``
or CreateAssociation, fired by the daemons (``daemon.schedule_runner``).

Creating checks what a firing would need, so that mistakes show at once rather than at
two in the morning: the expression (``InvalidSchedule``), the document and version
(``InvalidDocument``, ``InvalidDocumentVersion``) and, without targets, the parameters
(``InvalidParameters``). A firing resolves the document again, so a schedule on
``$DEFAULT`` follows UpdateDocumentDefaultVersion.

Missed firings (no daemon was running, or all were busy): a schedule whose time has
passed fires once, for the earliest time it missed, and then continues with its next
time after now. A daemon starting after a weekend runs a nightly schedule once, not
three times.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from runbook_engine.api import TimeFormat
from runbook_engine.coercion import resolve_parameters
from runbook_engine.engine import Engine
from runbook_engine.errors import (
    DefinitionVersionNotFound,
    DocumentMissing,
    DocumentNotFound,
    DocumentVersionMissing,
    ParameterError,
    RunbookError,
)
from runbook_engine.rendering import render_default
from runbook_engine.schedule_expressions import first_run, parse_schedule
from runbook_engine.store.schedules import ScheduleRecord
from runbook_engine.validation import runbook_from_report, validate_text

ASSOCIATION_TAG = "runbook:association-id"  # tag of the executions a schedule started


class InvalidParameters(RunbookError):
    code = "InvalidParameters"


async def create_schedule(
    engine: Engine,
    *,
    document_name: str,
    expression: str | None,
    created_by: str,
    parameters: Mapping[str, Sequence[str]] | None = None,
    document_version: str | None = None,
    association_name: str | None = None,
    targets: Sequence[Mapping[str, Any]] = (),
    target_parameter_name: str | None = None,
    apply_only_at_cron_interval: bool = False,
    max_concurrency: str | None = None,
    max_errors: str | None = None,
    allow_second_rates: bool = False,
) -> ScheduleRecord:
    """Check and store a new schedule; returns it with its first firing time."""
    schedule = parse_schedule(expression, allow_seconds=allow_second_rates)
    values = {name: list(v) for name, v in (parameters or {}).items()}
    try:
        text = await engine.find_by_name(document_name, document_version)
    except DefinitionVersionNotFound as exc:
        raise DocumentVersionMissing(exc.message) from exc
    except DocumentNotFound as exc:
        raise DocumentMissing(f"Document {document_name} does not exist") from exc
    if not targets:  # with targets, the target parameter is filled in per target
        report = validate_text(text.content, text.path, engine.registry.schemas(), text.name)
        runbook = runbook_from_report(report)
        try:
            resolve_parameters(
                runbook,
                values,
                lambda p: render_default(p, engine.settings, "check", engine.now()),
            )
        except ParameterError as exc:
            raise InvalidParameters(exc.message) from exc
    created = engine.now()
    record = ScheduleRecord(
        association_id=str(uuid.uuid4()),
        document_name=document_name,
        schedule_expression=(expression or "").strip(),
        created_by=created_by,
        created=created,
        next_run=first_run(schedule, created, apply_only_at_cron_interval),
        association_name=association_name,
        document_version=document_version,
        parameters=values,
        targets=tuple(dict(t) for t in targets),
        automation_target_parameter_name=target_parameter_name,
        apply_only_at_cron_interval=apply_only_at_cron_interval,
        max_concurrency=max_concurrency,
        max_errors=max_errors,
    )
    await engine.store.schedules.create(record)
    return record


async def last_status(engine: Engine, record: ScheduleRecord) -> tuple[str, str | None]:
    """The association's status: Pending before its first firing, Failed when the last
    firing could not start the runbook, else the last execution's (Success, Failed,
    InProgress...)."""
    if record.last_error:
        return "Failed", record.last_error
    if record.last_execution_id is None:
        return "Pending", None
    try:
        execution = await engine.store.get_execution(record.last_execution_id)
    except RunbookError:
        return "Pending", None
    return execution.status.value, execution.failure_message


def _time(moment: datetime | None, fmt: TimeFormat) -> float | str | None:
    if moment is None:
        return None
    return moment.timestamp() if fmt == "epoch" else moment.isoformat()


def association_description(
    record: ScheduleRecord, status: str, message: str | None, fmt: TimeFormat = "epoch"
) -> dict[str, Any]:
    """AssociationDescription (CreateAssociation, DescribeAssociation); timestamps in epoch
    seconds as the API sends them, or ISO-8601 for the CLI."""
    shape: dict[str, Any] = {
        "Name": record.document_name,
        "AssociationVersion": "1",
        "Date": _time(record.created, fmt),
        "LastUpdateAssociationDate": _time(record.created, fmt),
        "Status": {
            "Date": _time(record.last_run or record.created, fmt),
            "Name": status,
            "Message": message or status,
        },
        "Overview": {"Status": status, "DetailedStatus": status},
        "DocumentVersion": record.document_version,
        "AutomationTargetParameterName": record.automation_target_parameter_name,
        "Parameters": {k: list(v) for k, v in record.parameters.items()},
        "AssociationId": record.association_id,
        "Targets": [dict(t) for t in record.targets],
        "ScheduleExpression": record.schedule_expression or None,
        "LastExecutionDate": _time(record.last_run, fmt),
        "AssociationName": record.association_name,
        "MaxErrors": record.max_errors,
        "MaxConcurrency": record.max_concurrency,
        "ApplyOnlyAtCronInterval": record.apply_only_at_cron_interval,
    }
    return {k: v for k, v in shape.items() if v is not None}


def association_summary(
    record: ScheduleRecord, status: str, fmt: TimeFormat = "epoch"
) -> dict[str, Any]:
    """Association (ListAssociations)."""
    shape: dict[str, Any] = {
        "Name": record.document_name,
        "AssociationId": record.association_id,
        "AssociationVersion": "1",
        "DocumentVersion": record.document_version,
        "Targets": [dict(t) for t in record.targets],
        "LastExecutionDate": _time(record.last_run, fmt),
        "Overview": {"Status": status, "DetailedStatus": status},
        "ScheduleExpression": record.schedule_expression or None,
        "AssociationName": record.association_name,
    }
    return {k: v for k, v in shape.items() if v is not None}
