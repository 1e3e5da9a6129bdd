"""Records <-> rows: the one place that decides how a record's fields are stored.

Both the SQL store and the in-memory fake go through these functions, so the fake
accepts and refuses exactly what the database does, and hands back values of exactly
the same shape. A row is a plain dict keyed by column name (the record's field names):

- maps, lists and ``Any`` values become compact JSON text (``datetime`` values inside
  them become ISO strings; NaN and other non-JSON values are refused);
- top-level timestamps stay ``datetime``, converted to UTC; naive ones are refused
  because a lease or a timer compared across machines needs an absolute instant;
- statuses become their SSM spelling;
- ``logs`` is JSON text too, because command output may hold NUL characters that
  PostgreSQL text columns cannot; every other text column refuses NUL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from runbook_engine.errors import StoreError
from runbook_engine.records import ExecutionRecord, LoopContext, SignalRecord, StepRecord
from runbook_engine.status import Mode, Status

Row = dict[str, Any]

# Written once by create_execution and by claim/renew/release only: a scheduler that
# renews its lease while holding an older record must not undo the renewal on its next
# compare-and-set write.
LEASE_COLUMNS = ("owner", "lease_expires")

_EXECUTION_TEXT = (
    "execution_id",
    "document_name",
    "document_content",
    "document_version",
    "document_format",
    "failure_message",
    "parent_execution_id",
    "parent_step_execution_id",
    "current_step_name",
    "current_action",
    "executed_by",
    "stop_requested",
    "target_parameter_name",
    "max_concurrency",
    "max_errors",
    "owner",
)
_STEP_TEXT = (
    "execution_id",
    "step_execution_id",
    "step_name",
    "action",
    "failure_message",
    "failure_type",
    "failure_stage",
    "message",
    "child_execution_id",
    "target",
)


def _json_default(value: Any) -> Any:
    if isinstance(value, date):  # datetime included
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_encode = json.JSONEncoder(
    separators=(",", ":"), allow_nan=False, default=_json_default
).encode  # built once: json.dumps with options builds an encoder on every call


def _json(value: Any, field: str) -> str:
    if not value and (value == {} or value == ()):
        return "[]" if isinstance(value, tuple) else "{}"  # most maps are empty
    try:
        return _encode(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cannot store {field}: {exc}") from exc


_EMPTY_JSON: dict[str, Callable[[], Any]] = {"{}": dict, "[]": list, "null": type(None), '""': str}


def _loads(text: str) -> Any:
    """``json.loads``, without its call for the empty values most columns hold."""
    empty = _EMPTY_JSON.get(text)
    return empty() if empty is not None else json.loads(text)


def _utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"cannot store {field}: naive datetime {value.isoformat()}; pass UTC")
    return value.astimezone(UTC)


def instant(now: datetime | None) -> datetime:
    """The ``now`` a lease call was given, in UTC; the clock's when it was given none."""
    if now is None:
        return datetime.now(UTC)
    result = _utc(now, "now")
    assert result is not None
    return result


def _check_text(row: Row, fields: tuple[str, ...]) -> None:
    """Refuse what PostgreSQL text cannot hold: NUL, and lone surrogates (not UTF-8)."""
    for name in fields:
        value = row[name]
        if value is None:
            continue
        if "\x00" in value:
            raise StoreError(f"cannot store {name}: text contains a NUL character")
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError as exc:
                raise StoreError(f"cannot store {name}: {exc}") from exc


def execution_to_row(record: ExecutionRecord) -> Row:
    row: Row = {
        "execution_id": record.execution_id,
        "document_name": record.document_name,
        "document_content": record.document_content,
        "status": Status(record.status).value,
        "mode": Mode(record.mode).value,
        "document_version": record.document_version,
        "document_format": record.document_format,
        "parameters": _json(record.parameters, "parameters"),
        "supplied_parameters": _json(record.supplied_parameters, "supplied_parameters"),
        "variables": _json(record.variables, "variables"),
        "outputs": _json(record.outputs, "outputs"),
        "start_time": _utc(record.start_time, "start_time"),
        "end_time": _utc(record.end_time, "end_time"),
        "failure_message": record.failure_message,
        "parent_execution_id": record.parent_execution_id,
        "parent_step_execution_id": record.parent_step_execution_id,
        "current_step_name": record.current_step_name,
        "current_action": record.current_action,
        "executed_by": record.executed_by,
        "stop_requested": record.stop_requested,
        "cancel_deadline": _utc(record.cancel_deadline, "cancel_deadline"),
        "wake_at": _utc(record.wake_at, "wake_at"),
        "target_parameter_name": record.target_parameter_name,
        "targets": _json(record.targets, "targets"),
        "target_maps": _json(record.target_maps, "target_maps"),
        "resolved_targets": _json(record.resolved_targets, "resolved_targets"),
        "max_concurrency": record.max_concurrency,
        "max_errors": record.max_errors,
        "owner": record.owner,
        "lease_expires": _utc(record.lease_expires, "lease_expires"),
        "version": record.version,
        "extra": _json(record.extra, "extra"),
    }
    _check_text(row, _EXECUTION_TEXT)
    return row


def execution_from_row(row: Mapping[Any, Any]) -> ExecutionRecord:
    loads = _loads
    return ExecutionRecord(
        execution_id=row["execution_id"],
        document_name=row["document_name"],
        document_content=row["document_content"],
        status=Status(row["status"]),
        mode=Mode(row["mode"]),
        document_version=row["document_version"],
        document_format=row["document_format"],
        parameters=loads(row["parameters"]),
        supplied_parameters=loads(row["supplied_parameters"]),
        variables=loads(row["variables"]),
        outputs=loads(row["outputs"]),
        start_time=row["start_time"],
        end_time=row["end_time"],
        failure_message=row["failure_message"],
        parent_execution_id=row["parent_execution_id"],
        parent_step_execution_id=row["parent_step_execution_id"],
        current_step_name=row["current_step_name"],
        current_action=row["current_action"],
        executed_by=row["executed_by"],
        stop_requested=row["stop_requested"],
        cancel_deadline=row["cancel_deadline"],
        wake_at=row["wake_at"],
        target_parameter_name=row["target_parameter_name"],
        targets=tuple(loads(row["targets"])),
        target_maps=tuple(loads(row["target_maps"])),
        resolved_targets=tuple(loads(row["resolved_targets"])),
        max_concurrency=row["max_concurrency"],
        max_errors=row["max_errors"],
        owner=row["owner"],
        lease_expires=row["lease_expires"],
        version=row["version"],
        extra=loads(row["extra"]),
    )


def _loop_to_json(loop: LoopContext | None) -> str:
    if loop is None:
        return "null"
    return _json(
        {
            "step_execution_id": loop.step_execution_id,
            "step_name": loop.step_name,
            "iteration": loop.iteration,
            "iterator_value": loop.iterator_value,
        },
        "loop",
    )


def _loop_from_json(text: str) -> LoopContext | None:
    data = _loads(text)
    return None if data is None else LoopContext(**data)


def step_to_row(step: StepRecord) -> Row:
    row: Row = {
        "execution_id": step.execution_id,
        "step_execution_id": step.step_execution_id,
        "sequence": step.sequence,
        "step_name": step.step_name,
        "action": step.action,
        "status": Status(step.status).value,
        "attempt": step.attempt,
        "start_time": _utc(step.start_time, "start_time"),
        "end_time": _utc(step.end_time, "end_time"),
        "inputs": _json(step.inputs, "inputs"),
        "outputs": _json(step.outputs, "outputs"),
        "response": _json(step.response, "response"),
        "logs": _json(step.logs, "logs"),
        "failure_message": step.failure_message,
        "failure_type": step.failure_type,
        "failure_stage": step.failure_stage,
        "failure_details": _json(step.failure_details, "failure_details"),
        "wake_at": _utc(step.wake_at, "wake_at"),
        "waiting_for": _json(step.waiting_for, "waiting_for"),
        "state": _json(step.state, "state"),
        "message": step.message,
        "child_execution_id": step.child_execution_id,
        "loop": _loop_to_json(step.loop),
        "valid_next_steps": _json(step.valid_next_steps, "valid_next_steps"),
        "overridden_parameters": _json(step.overridden_parameters, "overridden_parameters"),
        "cancel_run": bool(step.cancel_run),
        "target": step.target,
    }
    _check_text(row, _STEP_TEXT)
    return row


def step_rows_of(steps: Sequence[StepRecord], execution: ExecutionRecord) -> list[Row]:
    """``steps`` encoded, for one transition of ``execution``: each must belong to it, and
    each step execution may appear once (a second write of one row in the same
    transaction would be compared with what the first replaced)."""
    rows: list[Row] = []
    seen: set[str] = set()
    for step in steps:
        if step.execution_id != execution.execution_id:
            raise StoreError(
                f"step {step.step_execution_id} belongs to {step.execution_id},"
                f" not {execution.execution_id}"
            )
        if step.step_execution_id in seen:
            raise StoreError(f"step {step.step_execution_id} is twice in one transition")
        seen.add(step.step_execution_id)
        rows.append(step_to_row(step))
    return rows


def step_from_row(row: Mapping[Any, Any]) -> StepRecord:
    loads = _loads
    return StepRecord(
        execution_id=row["execution_id"],
        step_execution_id=row["step_execution_id"],
        sequence=row["sequence"],
        step_name=row["step_name"],
        action=row["action"],
        status=Status(row["status"]),
        attempt=row["attempt"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        inputs=loads(row["inputs"]),
        outputs=loads(row["outputs"]),
        response=loads(row["response"]),
        logs=loads(row["logs"]),
        failure_message=row["failure_message"],
        failure_type=row["failure_type"],
        failure_stage=row["failure_stage"],
        failure_details=loads(row["failure_details"]),
        wake_at=row["wake_at"],
        waiting_for=tuple(loads(row["waiting_for"])),
        state=loads(row["state"]),
        message=row["message"],
        child_execution_id=row["child_execution_id"],
        loop=_loop_from_json(row["loop"]),
        valid_next_steps=tuple(loads(row["valid_next_steps"])),
        overridden_parameters=loads(row["overridden_parameters"]),
        cancel_run=bool(row["cancel_run"]),
        target=row["target"],
    )


def signal_to_row(signal: SignalRecord) -> Row:
    """The row to insert; ``signal_id`` is left out because the store assigns it."""
    row: Row = {
        "execution_id": signal.execution_id,
        "type": signal.type,
        "payload": _json(signal.payload, "payload"),
        "principal": signal.principal,
        "time": _utc(signal.time, "time"),
        "consumed": bool(signal.consumed),
    }
    _check_text(row, ("execution_id", "type", "principal"))
    return row


def signal_from_row(row: Mapping[Any, Any]) -> SignalRecord:
    return SignalRecord(
        signal_id=row["signal_id"],
        execution_id=row["execution_id"],
        type=row["type"],
        payload=_loads(row["payload"]),
        principal=row["principal"],
        time=row["time"],
        consumed=bool(row["consumed"]),
    )
