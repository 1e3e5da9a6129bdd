"""Statements beside the hot path: listing with the API's filters, tokens, counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, exists, func, or_, select

from runbook_engine.store import ExecutionQuery
from runbook_engine.store.schema import CLIENT_TOKENS, EXECUTION_TAGS, EXECUTIONS

_X = EXECUTIONS.c

SELECT_TOKEN = select(CLIENT_TOKENS.c.execution_id, CLIENT_TOKENS.c.fingerprint).where(
    CLIENT_TOKENS.c.token == bindparam("b_token")
)
COUNT_BY_STATUS = select(_X.status, func.count()).group_by(_X.status)


def execution_filters(query: ExecutionQuery) -> list[Any]:
    """SQL conditions for the filters of an ``ExecutionQuery``."""
    conditions: list[Any] = []
    for column, values in (
        (_X.status, query.statuses),
        (_X.execution_id, query.execution_ids),
        (_X.parent_execution_id, query.parent_execution_ids),
        (_X.current_action, query.current_actions),
    ):
        if values:
            conditions.append(column.in_(list(values)))
    if query.document_name_prefixes:
        conditions.append(
            or_(
                *(
                    _X.document_name.startswith(prefix, autoescape=True)
                    for prefix in query.document_name_prefixes
                )
            )
        )
    if query.tag_keys:
        tags = EXECUTION_TAGS.c
        conditions.append(
            exists().where(tags.execution_id == _X.execution_id, tags.key.in_(query.tag_keys))
        )
    if query.started_before is not None:
        conditions.append(_X.start_time < query.started_before)
    if query.started_after is not None:
        conditions.append(_X.start_time > query.started_after)
    return conditions
