"""The command repository (``store.commands``) on the SQL store's connections.

Lease changes are single ``UPDATE ... WHERE`` statements (owner, or a lease that ran
out), which PostgreSQL re-checks on the newest row version: of two daemons adopting one
command, exactly one changes the row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, exists, or_, select, update

from runbook_engine.errors import StoreError
from runbook_engine.store.commands import (
    RUNNING_STATUSES,
    CommandMissing,
    CommandQuery,
    CommandRecord,
    InvocationRecord,
    Progress,
    merge_cancel,
)
from runbook_engine.store.schema import COMMAND_INVOCATIONS, COMMANDS, UtcDateTime

if TYPE_CHECKING:
    from datetime import datetime

    from runbook_engine.store.sql import SqlStore

_C = COMMANDS.c
_I = COMMAND_INVOCATIONS.c
_COMMAND_COLUMNS = [column for column in COMMANDS.c if column.name != "id"]
_NOW = bindparam("b_now", type_=UtcDateTime())
_FREE = or_(_C.owner.is_(None), _C.lease_expires < _NOW)


def _command_row(record: CommandRecord) -> dict[str, Any]:
    row = {column.name: getattr(record, column.name) for column in _COMMAND_COLUMNS}
    row["parameters"] = json.dumps({k: list(v) for k, v in record.parameters.items()})
    row["instance_ids"] = json.dumps(list(record.instance_ids))
    row["targets"] = json.dumps([dict(t) for t in record.targets])
    row["cancel_requested"] = _cancel_text(record.cancel_requested)
    return row


def _cancel_text(value: Sequence[str] | None) -> str | None:
    return None if value is None else json.dumps(list(value))


def _command(row: Any) -> CommandRecord:
    values = {column.name: row[column.name] for column in _COMMAND_COLUMNS}
    values["parameters"] = json.loads(values["parameters"])
    values["instance_ids"] = tuple(json.loads(values["instance_ids"]))
    values["targets"] = tuple(json.loads(values["targets"]))
    cancel = values["cancel_requested"]
    values["cancel_requested"] = None if cancel is None else tuple(json.loads(cancel))
    return CommandRecord(**values)


def _invocation_row(record: InvocationRecord) -> dict[str, Any]:
    row = {column.name: getattr(record, column.name) for column in COMMAND_INVOCATIONS.c}
    row["plugins"] = json.dumps([dict(p) for p in record.plugins])
    return row


def _invocation(row: Any) -> InvocationRecord:
    values = {column.name: row[column.name] for column in COMMAND_INVOCATIONS.c}
    values["plugins"] = tuple(json.loads(values["plugins"]))
    values["failed"] = bool(values["failed"])
    return InvocationRecord(**values)


def _command_filters(query: CommandQuery) -> list[Any]:
    where: list[Any] = []
    if query.command_id is not None:
        where.append(_C.command_id == query.command_id)
    if query.document_name is not None:
        where.append(_C.document_name == query.document_name)
    if query.invoked_after is not None:
        where.append(_C.requested >= bindparam("b_after", query.invoked_after, UtcDateTime()))
    if query.invoked_before is not None:
        where.append(_C.requested <= bindparam("b_before", query.invoked_before, UtcDateTime()))
    return where


class SqlCommands:
    def __init__(self, store: SqlStore) -> None:
        self._store = store
        upsert = store.dialect_insert(COMMAND_INVOCATIONS)
        self._upsert = upsert.on_conflict_do_update(
            index_elements=["command_id", "instance_id"],
            set_={
                c.name: upsert.excluded[c.name] for c in COMMAND_INVOCATIONS.c if not c.primary_key
            },
        )

    async def create(self, command: CommandRecord, invocations: Sequence[InvocationRecord]) -> None:
        await self._store._call(self._create, command, list(invocations))

    def _create(self, command: CommandRecord, invocations: list[InvocationRecord]) -> None:
        try:
            with self._store._transaction() as conn:
                conn.execute(COMMANDS.insert(), _command_row(command))
                if invocations:
                    conn.execute(
                        COMMAND_INVOCATIONS.insert(), [_invocation_row(i) for i in invocations]
                    )
        except self._store._integrity_errors:
            raise StoreError(f"command {command.command_id} already exists") from None

    async def get(self, command_id: str) -> CommandRecord:
        rows = await self._store._call(
            self._store._fetch_all,
            select(*_COMMAND_COLUMNS).where(_C.command_id == bindparam("b_id")),
            {"b_id": command_id},
        )
        if not rows:
            raise CommandMissing(f"Command {command_id} does not exist")
        return _command(rows[0])

    async def list_commands(
        self, query: CommandQuery, *, limit: int, offset: int = 0
    ) -> list[CommandRecord]:
        where = _command_filters(query)
        if query.statuses:
            where.append(_C.status.in_(query.statuses))
        if query.instance_id is not None:
            where.append(
                exists().where(_I.command_id == _C.command_id, _I.instance_id == query.instance_id)
            )
        statement = (
            select(*_COMMAND_COLUMNS)
            .where(*where)
            .order_by(_C.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = await self._store._call(self._store._fetch_all, statement, {})
        return [_command(row) for row in rows]

    async def list_invocations(
        self, query: CommandQuery, *, limit: int, offset: int = 0
    ) -> list[InvocationRecord]:
        where = _command_filters(query)
        if query.statuses:
            where.append(_I.status.in_(query.statuses))
        if query.instance_id is not None:
            where.append(_I.instance_id == query.instance_id)
        statement = (
            select(COMMAND_INVOCATIONS)
            .join(COMMANDS, _C.command_id == _I.command_id)
            .where(*where)
            .order_by(_C.id.desc(), _I.sequence)
            .limit(limit)
            .offset(offset)
        )
        rows = await self._store._call(self._store._fetch_all, statement, {})
        return [_invocation(row) for row in rows]

    async def save_invocation(self, invocation: InvocationRecord) -> None:
        await self._store._call(self._store._execute, self._upsert, _invocation_row(invocation))

    async def record_progress(self, command_id: str, progress: Progress) -> None:
        statement = (
            update(COMMANDS)
            .where(_C.command_id == bindparam("b_id"))
            .values(
                status=progress.status,
                status_details=progress.status_details,
                target_count=progress.target_count,
                completed_count=progress.completed_count,
                error_count=progress.error_count,
                delivery_timed_out_count=progress.delivery_timed_out_count,
            )
        )
        changed = await self._store._call(self._store._execute, statement, {"b_id": command_id})
        if changed != 1:
            raise CommandMissing(f"Command {command_id} does not exist")

    async def request_cancel(self, command_id: str, instance_ids: Sequence[str]) -> CommandRecord:
        # Read, then compare-and-set on the request read: a concurrent cancel retries.
        for _ in range(10):
            command = await self.get(command_id)
            if command.status not in RUNNING_STATUSES:
                return command
            before = _cancel_text(command.cancel_requested)
            wanted = merge_cancel(command.cancel_requested, instance_ids)
            same = (
                _C.cancel_requested.is_(None)
                if before is None
                else _C.cancel_requested == bindparam("b_before")
            )
            statement = (
                update(COMMANDS)
                .where(_C.command_id == bindparam("b_id"), same, _C.status.in_(RUNNING_STATUSES))
                .values(
                    cancel_requested=_cancel_text(wanted),
                    status="Cancelling",
                    status_details="Cancelling",
                )
            )
            params = {"b_id": command_id, "b_before": before}
            if await self._store._call(self._store._execute, statement, params) == 1:
                return await self.get(command_id)
        raise StoreError(f"command {command_id}: too many concurrent cancellations")

    async def renew(self, command_id: str, owner: str, expires: datetime) -> CommandRecord | None:
        statement = (
            update(COMMANDS)
            .where(_C.command_id == bindparam("b_id"), _C.owner == bindparam("b_owner"))
            .values(lease_expires=bindparam("b_expires", type_=UtcDateTime()))
        )
        params = {"b_id": command_id, "b_owner": owner, "b_expires": expires}
        if await self._store._call(self._store._execute, statement, params) != 1:
            return None
        return await self.get(command_id)

    async def release(self, command_id: str, owner: str) -> None:
        statement = (
            update(COMMANDS)
            .where(_C.command_id == bindparam("b_id"), _C.owner == bindparam("b_owner"))
            .values(owner=None, lease_expires=None)
        )
        await self._store._call(
            self._store._execute, statement, {"b_id": command_id, "b_owner": owner}
        )

    async def adopt(self, owner: str, expires: datetime, now: datetime) -> CommandRecord | None:
        candidates = (
            select(_C.command_id)
            .where(_C.status.in_(RUNNING_STATUSES), _FREE)
            .order_by(_C.id)
            .limit(10)
        )
        rows = await self._store._call(self._store._fetch_all, candidates, {"b_now": now})
        take = (
            update(COMMANDS)
            .where(and_(_C.command_id == bindparam("b_id"), _FREE))
            .values(
                owner=bindparam("b_owner"),
                lease_expires=bindparam("b_expires", type_=UtcDateTime()),
            )
        )
        for row in rows:
            params = {
                "b_id": row["command_id"],
                "b_owner": owner,
                "b_expires": expires,
                "b_now": now,
            }
            if await self._store._call(self._store._execute, take, params) == 1:
                return await self.get(row["command_id"])
        return None
