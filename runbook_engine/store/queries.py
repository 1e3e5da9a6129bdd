"""Statements beside the hot path: listing with the API's filters, ClientTokens and tags,
counts by status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, exists, func, or_, select
from sqlalchemy.engine import Connection

from runbook_engine.errors import IdempotencyMismatch, StoreError
from runbook_engine.store import ClientToken, ExecutionQuery
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


def token_row_of(client_token: ClientToken, execution_id: str) -> dict[str, str]:
    return {
        "token": client_token.token.lower(),  # tokens are UUIDs: case does not count
        "execution_id": execution_id,
        "fingerprint": client_token.fingerprint,
    }


def tag_rows_of(execution_id: str, tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"execution_id": execution_id, "key": k, "value": v} for k, v in tags.items()]


def token_holder(conn: Connection, client_token: ClientToken) -> str:
    """The execution a used token started, if the arguments are the same again."""
    found = conn.execute(SELECT_TOKEN, {"b_token": client_token.token.lower()}).first()
    if found is None:  # its execution was deleted in between
        raise StoreError(f"ClientToken {client_token.token} is being reused; try again")
    execution_id, fingerprint = found
    if fingerprint != client_token.fingerprint:
        raise IdempotencyMismatch(
            f"ClientToken {client_token.token} was used with different arguments"
        )
    return str(execution_id)
