"""A signal's hot path on SQL: stored, its execution made due and claimed in one statement
(``add_signal_and_wake``); later consumed in the commit of its step's result
(``consume_signals_in``, inside ``record_steps_and_execution``).

A signal used to cost three transactions before its execution could go on: the signal's
INSERT, the execution's ``wake_at`` (compare-and-set), and the driver's claim, each a
BEGIN, a statement and a COMMIT, and on PostgreSQL each a hop to a database thread.
Here they are one UPDATE that wakes the execution and takes its lease when nobody else
holds a live one (the lease columns keep their values otherwise), next to the INSERT.

PostgreSQL runs both as one statement in autocommit (the INSERT and the UPDATE as
data-modifying CTEs): one round trip. The UPDATE's conditions are re-checked on the
newest row version, as for ``claim``, so of several claimers exactly one gets the lease.
SQLite runs the two statements in one transaction on its inline connection.

A waiting step's signal was consumed in a commit of its own before the step's result: one
round trip more, and a crash between the two lost the signal (the step still waiting, its
approval consumed). ``record_steps_and_execution`` writes both in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Dialect, bindparam, case, or_, select, true, update
from sqlalchemy.engine import Connection

from runbook_engine.errors import ExecutionNotFound
from runbook_engine.records import ExecutionRecord, SignalRecord, StepRecord
from runbook_engine.status import TERMINAL
from runbook_engine.store.codec import (
    instant,
    signal_to_row,
    step_from_row,
)
from runbook_engine.store.prepared import Prepared
from runbook_engine.store.schema import EXECUTIONS, SIGNALS, STEPS, UtcDateTime

if TYPE_CHECKING:
    from runbook_engine.store.sql import SqlStore

_X = EXECUTIONS.c
_RECORD_COLUMNS = [column for column in EXECUTIONS.c if column.name != "id"]
_ID: Any = bindparam("b_id")
_NOW = bindparam("b_now", type_=UtcDateTime())
_OWNER: Any = bindparam("b_owner")
_EXPIRES = bindparam("b_expires", type_=UtcDateTime())
_LIVE = _X.status.not_in([status.value for status in TERMINAL])
_NOT_DUE = or_(_X.wake_at.is_(None), _X.wake_at > _NOW)  # make_due has something to do
_TAKEABLE = or_(_X.owner.is_(None), _X.lease_expires < _NOW, _X.owner == _OWNER)

# Wake (``wake_at`` now unless due already) and claim if takeable; the version moves on
# either way, as each of the separate writes would have moved it.
_WAKE_AND_CLAIM = (
    update(EXECUTIONS)
    .where(_X.execution_id == _ID, _LIVE, or_(_TAKEABLE, _NOT_DUE))
    .values(
        wake_at=case((_NOT_DUE, _NOW), else_=_X.wake_at),
        owner=case((_TAKEABLE, _OWNER), else_=_X.owner),
        lease_expires=case((_TAKEABLE, _EXPIRES), else_=_X.lease_expires),
        version=_X.version + 1,
    )
    .returning(*_RECORD_COLUMNS)
)
_WAKE = (
    update(EXECUTIONS)
    .where(_X.execution_id == _ID, _LIVE, _NOT_DUE)
    .values(wake_at=_NOW, version=_X.version + 1)
    .returning(*_RECORD_COLUMNS)
)
_SIGNAL_COLUMNS = [column for column in SIGNALS.c if column.name != "signal_id"]
_INSERT_SIGNAL = (
    SIGNALS.insert()
    .values({c.name: bindparam(f"s_{c.name}", type_=c.type) for c in _SIGNAL_COLUMNS})
    .returning(SIGNALS.c.signal_id)
)


def _one_statement(update_statement: Any) -> Any:
    """INSERT and UPDATE as data-modifying CTEs of one SELECT (PostgreSQL)."""
    inserted = _INSERT_SIGNAL.cte("new_signal")
    woken = update_statement.cte("woken")
    joined = inserted.outerjoin(woken, true())
    return select(inserted.c.signal_id, *woken.c).select_from(joined)


_ONE_WAKE_AND_CLAIM = _one_statement(_WAKE_AND_CLAIM)
_ONE_WAKE = _one_statement(_WAKE)
_CONSUME_SIGNAL = (
    update(SIGNALS).where(SIGNALS.c.signal_id == bindparam("b_signal")).values(consumed=True)
)
# get_signals: built once (building the SELECT on every call cost more than running it).
SIGNALS_OF = select(SIGNALS).where(SIGNALS.c.execution_id == _ID).order_by(SIGNALS.c.signal_id)
UNCONSUMED_SIGNALS_OF = SIGNALS_OF.where(SIGNALS.c.consumed.is_(False))
_SELECT_EXECUTION = select(*_RECORD_COLUMNS).where(_X.execution_id == _ID)
_SELECT_STEPS = (
    select(STEPS)
    .where(STEPS.c.execution_id == _ID)
    .order_by(STEPS.c.sequence, STEPS.c.step_execution_id)
)


def read_execution_and_steps(
    store: SqlStore, execution_id: str
) -> tuple[ExecutionRecord, list[StepRecord]]:
    """See ``StateStore.get_execution_and_steps``: both reads on one connection."""
    params = {"b_id": execution_id}
    with store._transaction(write=False) as conn:
        row = conn.execute(_SELECT_EXECUTION, params).mappings().first()
        if row is None:
            raise ExecutionNotFound(f"execution {execution_id} does not exist")
        steps = [step_from_row(step) for step in conn.execute(_SELECT_STEPS, params).mappings()]
        return store.texts.record(conn, row), steps


def add_signal_and_wake(
    store: SqlStore,
    signal: SignalRecord,
    now: datetime | None,
    owner: str | None,
    lease_seconds: float,
) -> ExecutionRecord | None:
    """See ``StateStore.add_signal_and_wake``; runs on the store's database thread."""
    moment = instant(now)
    params: dict[str, Any] = {f"s_{name}": value for name, value in signal_to_row(signal).items()}
    params.update(b_id=signal.execution_id, b_now=moment)
    if owner is not None:
        params.update(b_owner=owner, b_expires=moment + timedelta(seconds=lease_seconds))
    try:
        if store._inline:
            with store._transaction() as conn:
                conn.execute(_INSERT_SIGNAL, params)
                statement = _WAKE if owner is None else _WAKE_AND_CLAIM
                row = conn.execute(statement, params).mappings().first()
                return _claimed(store, conn, row, owner)
        statement = _ONE_WAKE if owner is None else _ONE_WAKE_AND_CLAIM
        with store._transaction(write=False) as conn:  # autocommit: one statement
            row = conn.execute(statement, params).mappings().first()
            return _claimed(store, conn, row, owner)
    except store._integrity_errors as exc:
        raise ExecutionNotFound(f"execution {signal.execution_id} does not exist") from exc


def _claimed(
    store: SqlStore, conn: Connection, row: Any, owner: str | None
) -> ExecutionRecord | None:
    """The execution ``row`` shows, when ``owner`` now holds it."""
    if row is None or row["execution_id"] is None or owner is None or row["owner"] != owner:
        return None
    return store.texts.record(conn, row)


_CONSUMING: dict[str, Prepared] = {}  # per dialect name


def _consume_signal(dialect: Dialect) -> Prepared:
    prepared = _CONSUMING.get(dialect.name)
    if prepared is None:
        prepared = _CONSUMING[dialect.name] = Prepared(_CONSUME_SIGNAL, dialect)
    return prepared


def consume_signals_in(cursor: Any, dialect: Dialect, signal_ids: Sequence[int]) -> None:
    """Mark ``signal_ids`` consumed inside the caller's transaction (on ``cursor``): the
    commit of a waiting step's result consumes the signals it acted on."""
    consume = _consume_signal(dialect)
    cursor.executemany(consume.sql, [consume.parameters({"b_signal": i}) for i in signal_ids])
