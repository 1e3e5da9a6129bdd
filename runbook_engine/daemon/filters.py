"""The filters of DescribeAutomationExecutions and DescribeAutomationStepExecutions (§5.8).

Values of one key are OR-ed, different keys AND-ed; a key given twice adds its values.
Execution filters become one store query (``ExecutionQuery``, run in SQL); step filters
are applied to the step executions of one execution. Time values are ISO-8601
(``2018-12-25T00:00:00Z``); a bad value is ``InvalidFilterValue``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from runbook_engine.records import StepRecord
from runbook_engine.status import Status
from runbook_engine.store import ExecutionQuery

# Statuses the API knows; Change Manager's never occur here, so they just match nothing.
API_STATUSES = frozenset(
    {s.value for s in Status}
    | {
        "PendingApproval", "Approved", "Rejected", "Scheduled", "RunbookInProgress",
        "PendingChangeCalendarOverride", "ChangeCalendarOverrideApproved",
        "ChangeCalendarOverrideRejected", "CompletedWithSuccess", "CompletedWithFailure",
    }
)  # fmt: skip


class FilterError(Exception):
    code = "InvalidFilterValue"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _grouped(filters: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for item in filters:
        grouped.setdefault(item["Key"], []).extend(item["Values"])
    return grouped


def _instant(key: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise FilterError(
            f"{key} value {value!r} is not an ISO-8601 time such as 2018-12-25T00:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _statuses(key: str, values: list[str]) -> tuple[str, ...]:
    unknown = [v for v in values if v not in API_STATUSES]
    if unknown:
        raise FilterError(f"{key} value {unknown[0]!r} is not an automation status")
    return tuple(values)


def execution_query(filters: Sequence[Mapping[str, Any]]) -> ExecutionQuery | None:
    """The store query for the filters; None when nothing can match."""
    grouped = _grouped(filters)
    before = [_instant(k, v) for k in ("StartTimeBefore",) for v in grouped.get(k, [])]
    after = [_instant(k, v) for k in ("StartTimeAfter",) for v in grouped.get(k, [])]
    query = ExecutionQuery(
        statuses=_statuses("ExecutionStatus", grouped.get("ExecutionStatus", [])),
        execution_ids=tuple(grouped.get("ExecutionId", ())),
        parent_execution_ids=tuple(grouped.get("ParentExecutionId", ())),
        document_name_prefixes=tuple(grouped.get("DocumentNamePrefix", ())),
        current_actions=tuple(grouped.get("CurrentAction", ())),
        tag_keys=tuple(grouped.get("TagKey", ())),
        started_before=max(before) if before else None,
        started_after=min(after) if after else None,
    )
    types = grouped.get("AutomationType")
    if types is not None:
        unknown = [t for t in types if t not in ("CrossAccount", "Local")]
        if unknown:
            raise FilterError(f"AutomationType value {unknown[0]!r} is not CrossAccount or Local")
        if "Local" not in types:
            return None  # every execution here is Local
    subtypes = grouped.get("AutomationSubtype")
    if subtypes is not None:
        unknown = [t for t in subtypes if t not in ("ChangeRequest", "AccessRequest")]
        if unknown:
            raise FilterError(f"AutomationSubtype value {unknown[0]!r} is not known")
        return None  # no change requests or access requests run here
    if "OpsItemId" in grouped or "TargetResourceGroup" in grouped:
        return None  # no execution here has an OpsItem or resource-group targets
    return query


StepPredicate = Callable[[StepRecord], bool]


def step_filter(filters: Sequence[Mapping[str, Any]]) -> StepPredicate:
    """A predicate keeping the step executions that pass every filter."""
    tests: list[StepPredicate] = []
    for key, values in _grouped(filters).items():
        tests.append(_step_test(key, values))
    return lambda record: all(test(record) for test in tests)


def _step_test(key: str, values: list[str]) -> StepPredicate:
    wanted = set(values)
    if key == "StartTimeBefore":
        limit = max(_instant(key, v) for v in values)
        return lambda r: r.start_time is not None and r.start_time < limit
    if key == "StartTimeAfter":
        floor = min(_instant(key, v) for v in values)
        return lambda r: r.start_time is not None and r.start_time > floor
    if key == "StepExecutionStatus":
        _statuses(key, values)
        return lambda r: r.status.value in wanted
    if key == "StepExecutionId":
        return lambda r: r.step_execution_id in wanted
    if key == "StepName":
        return lambda r: r.step_name in wanted
    if key == "Action":
        return lambda r: r.action in wanted
    if key == "ParentStepExecutionId":
        return lambda r: r.loop is not None and r.loop.step_execution_id in wanted
    if key == "ParentStepIteration":
        if not all(v.strip().isdigit() for v in values):
            raise FilterError("ParentStepIteration values must be whole numbers")
        iterations = {int(v) for v in values}
        return lambda r: r.loop is not None and r.loop.iteration in iterations
    if key == "ParentStepIteratorValue":
        return lambda r: (
            r.loop is not None
            and r.loop.iterator_value is not None
            and str(r.loop.iterator_value) in wanted
        )
    raise FilterError(f"Unknown filter key {key}")
