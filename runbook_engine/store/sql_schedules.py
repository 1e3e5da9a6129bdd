"""The schedule repository (``store.schedules``) on the SQL store's connections.

``advance`` is ``UPDATE runbook_schedules SET next_run = ... WHERE association_id = :id
AND next_run = :fired_at``: PostgreSQL re-checks the condition on the newest row
version, so of two daemons recording one firing exactly one changes the row.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update

from runbook_engine.errors import ScheduleMissing, StoreError
from runbook_engine.store.schedules import Firing, ScheduleRecord
from runbook_engine.store.schema import SCHEDULES, UtcDateTime

if TYPE_CHECKING:
    from datetime import datetime

    from runbook_engine.store.sql import SqlStore

_S = SCHEDULES.c
_JSON = ("parameters", "targets")


def _row(record: ScheduleRecord) -> dict[str, Any]:
    row = {column.name: getattr(record, column.name) for column in SCHEDULES.c}
    row["parameters"] = json.dumps({k: list(v) for k, v in record.parameters.items()})
    row["targets"] = json.dumps([dict(t) for t in record.targets])
    return row


def _record(row: Any) -> ScheduleRecord:
    values = {column.name: row[column.name] for column in SCHEDULES.c}
    for name in _JSON:
        values[name] = json.loads(values[name])
    values["targets"] = tuple(values["targets"])
    values["apply_only_at_cron_interval"] = bool(values["apply_only_at_cron_interval"])
    return ScheduleRecord(**values)


_ADVANCE = (
    update(SCHEDULES)
    .where(
        _S.association_id == bindparam("b_id"),
        _S.next_run == bindparam("b_fired_at", type_=UtcDateTime()),
    )
    .values(
        next_run=bindparam("b_next_run", type_=UtcDateTime()),
        last_run=bindparam("b_last_run", type_=UtcDateTime()),
        last_error=bindparam("b_error"),
    )
)


class SqlSchedules:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def create(self, record: ScheduleRecord) -> None:
        await self._store._call(self._create, record)

    def _create(self, record: ScheduleRecord) -> None:
        try:
            with self._store._transaction() as conn:
                conn.execute(SCHEDULES.insert(), _row(record))
        except self._store._integrity_errors:
            raise StoreError(f"schedule {record.association_id} already exists") from None

    async def get(self, association_id: str) -> ScheduleRecord:
        rows = await self._store._call(
            self._store._fetch_all,
            select(SCHEDULES).where(_S.association_id == association_id),
            {},
        )
        if not rows:
            raise ScheduleMissing(f"Association {association_id} does not exist")
        return _record(rows[0])

    async def list_all(self) -> list[ScheduleRecord]:
        query = select(SCHEDULES).order_by(_S.created, _S.association_id)
        return [_record(row) for row in await self._store._call(self._store._fetch_all, query, {})]

    async def delete(self, association_id: str) -> None:
        deleted = await self._store._call(
            self._store._execute,
            SCHEDULES.delete().where(_S.association_id == bindparam("b_id")),
            {"b_id": association_id},
        )
        if deleted != 1:
            raise ScheduleMissing(f"Association {association_id} does not exist")

    async def due(self, now: datetime, limit: int = 100) -> list[ScheduleRecord]:
        query = (
            select(SCHEDULES)
            .where(_S.next_run <= bindparam("b_now", type_=UtcDateTime()))
            .order_by(_S.next_run, _S.association_id)
            .limit(limit)
        )
        rows = await self._store._call(self._store._fetch_all, query, {"b_now": now})
        return [_record(row) for row in rows]

    async def advance(self, association_id: str, firing: Firing) -> bool:
        statement = _ADVANCE
        params: dict[str, Any] = {
            "b_id": association_id,
            "b_fired_at": firing.fired_at,
            "b_next_run": firing.next_run,
            "b_last_run": firing.fired_at,
            "b_error": firing.error,
        }
        if firing.execution_id is not None:
            statement = statement.values(last_execution_id=bindparam("b_execution"))
            params["b_execution"] = firing.execution_id
        changed = await self._store._call(self._store._execute, statement, params)
        return bool(changed == 1)
