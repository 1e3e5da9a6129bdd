"""The state store on SQL: SQLite (the default) and PostgreSQL, one implementation.

Statements are SQLAlchemy Core against the SQLModel tables of ``schema``; rows go
through ``codec`` and leave as frozen records. The hot path (a step transition:
compare-and-set of the execution plus the step upsert, one commit) runs ``Prepared``
statements on the driver's cursor; everything else goes through SQLAlchemy.

SQLite (set up in ``engines``): one connection per store, used from the event loop's
thread only. Its calls run inline: a step transition takes about 0.2 ms, and handing
it to a worker thread doubled that (benchmarks/store_writes.py). The price: while
another process holds the write lock, the loop waits for it (``busy_timeout``).

PostgreSQL: a connection pool, each call on a worker thread (``anyio.to_thread``) with
at most as many threads as pooled connections. Read committed is enough: every
compare-and-set and claim is a single ``UPDATE ... WHERE`` that PostgreSQL re-checks on
the newest row version, and ``claim_next`` picks its row ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import anyio
from sqlalchemy import Engine, bindparam, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from runbook_engine.errors import ExecutionNotFound, StaleRecord, StoreError
from runbook_engine.record_copies import evolve
from runbook_engine.records import ExecutionRecord, SignalRecord, StepRecord
from runbook_engine.status import TERMINAL
from runbook_engine.store import RUNNABLE_STATUSES, ClientToken, ExecutionQuery
from runbook_engine.store.codec import (
    LEASE_COLUMNS,
    execution_to_row,
    instant,
    signal_from_row,
    signal_to_row,
    step_from_row,
    step_rows_of,
    step_to_row,
)
from runbook_engine.store.commands import CommandRepository
from runbook_engine.store.document_texts import DocumentTexts, stored_row
from runbook_engine.store.documents import DocumentRepository
from runbook_engine.store.engines import POSTGRES_POOL_SIZE, WRITE, create_store_engine
from runbook_engine.store.prepared import Prepared
from runbook_engine.store.queries import (
    COUNT_BY_STATUS,
    execution_filters,
    tag_rows_of,
    token_holder,
    token_row_of,
)
from runbook_engine.store.schedules import ScheduleRepository
from runbook_engine.store.schema import (
    CLIENT_TOKENS,
    EXECUTION_TAGS,
    EXECUTIONS,
    SIGNALS,
    STEPS,
    UtcDateTime,
    migrate,
)
from runbook_engine.store.sql_commands import SqlCommands
from runbook_engine.store.sql_documents import SqlDocuments
from runbook_engine.store.sql_schedules import SqlSchedules
from runbook_engine.store.sql_signals import (
    SIGNALS_OF,
    UNCONSUMED_SIGNALS_OF,
    add_signal_and_wake,
    consume_signals_in,
    read_execution_and_steps,
)
from runbook_engine.store.written_rows import WrittenRows

T = TypeVar("T")


_X = EXECUTIONS.c
_RECORD_COLUMNS = [column for column in EXECUTIONS.c if column.name != "id"]
_NOT_UPDATED = {"execution_id", "document_digest", *LEASE_COLUMNS}  # text: never changes
_UPDATED = [column.name for column in _RECORD_COLUMNS if column.name not in _NOT_UPDATED]
_STEP_COLUMNS = [column.name for column in STEPS.c]
_STEP_UPDATED = [column.name for column in STEPS.c if not column.primary_key]

_SELECT_EXECUTION = select(*_RECORD_COLUMNS).where(_X.execution_id == bindparam("b_id"))
_SELECT_VERSION = select(_X.version).where(_X.execution_id == bindparam("b_id"))
_COMPARE_AND_SET = (
    update(EXECUTIONS)
    .where(_X.execution_id == bindparam("b_id"), _X.version == bindparam("b_expected"))
    .returning(_X.owner, _X.lease_expires)
)
_UPDATE_STEP = update(STEPS).where(STEPS.c.step_execution_id == bindparam("b_sid"))
_SELECT_STEPS = (
    select(STEPS)
    .where(STEPS.c.execution_id == bindparam("b_id"))
    .order_by(STEPS.c.sequence, STEPS.c.step_execution_id)
)
_INSERT_SIGNAL = SIGNALS.insert().returning(SIGNALS.c.signal_id)
_CONSUME_SIGNALS = (
    update(SIGNALS)
    .where(SIGNALS.c.signal_id.in_(bindparam("b_ids", expanding=True)))
    .values(consumed=True)
)
_EXPIRES = bindparam("b_expires", type_=UtcDateTime())
_NOW = bindparam("b_now", type_=UtcDateTime())
_FREE = or_(_X.owner.is_(None), _X.lease_expires < _NOW)  # nobody holds a live lease
_TAKE = {"owner": bindparam("b_owner"), "lease_expires": _EXPIRES, "version": _X.version + 1}
_CLAIM = (
    update(EXECUTIONS)
    .where(_X.execution_id == bindparam("b_id"), or_(_FREE, _X.owner == bindparam("b_owner")))
    .values(_TAKE)
    .returning(*_RECORD_COLUMNS)
)
_RENEW = (
    update(EXECUTIONS)
    .where(_X.execution_id == bindparam("b_id"), _X.owner == bindparam("b_owner"))
    .values(lease_expires=_EXPIRES)
)
_RELEASE = (
    update(EXECUTIONS)
    .where(_X.execution_id == bindparam("b_id"), _X.owner == bindparam("b_owner"))
    .values(owner=None, lease_expires=None)
)


def _claim_first(where: Any, order: Iterable[Any]) -> Any:
    """UPDATE the first row matching ``where`` (skipping rows other claimers lock)."""
    first = (
        select(_X.id)
        .where(where, _FREE)
        .order_by(*order)
        .limit(1)
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL only
        .scalar_subquery()
    )
    return update(EXECUTIONS).where(_X.id == first, _FREE).values(_TAKE).returning(*_RECORD_COLUMNS)


class _TokenTaken(Exception):
    """Another start holds the ClientToken: roll this one back."""


_CLAIM_OVERDUE = _claim_first(
    (_X.wake_at <= _NOW) & _X.status.not_in([status.value for status in TERMINAL]),
    (_X.wake_at, _X.id),
)


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect = engine.dialect
        self._inline = dialect.name == "sqlite"
        # SQLite: the store's one connection, used from the event loop's thread.
        self._conn: Connection | None = engine.connect() if self._inline else None
        # PostgreSQL reads: one round trip each (no BEGIN and COMMIT around the SELECT).
        # Each statement sees its own snapshot under read committed either way.
        self._reads = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._limiter = anyio.CapacityLimiter(POSTGRES_POOL_SIZE)
        self._driver_errors = (SQLAlchemyError, dialect.loaded_dbapi.Error)
        self._integrity_errors = (IntegrityError, dialect.loaded_dbapi.IntegrityError)
        # Only the dialect in use is imported: PostgreSQL's pulls in its async drivers'
        # modules too, a twentieth of a second of every SQLite command's start.
        dialect_module = "sqlite" if self._inline else "postgresql"
        dialect_insert = importlib.import_module(f"sqlalchemy.dialects.{dialect_module}").insert
        self.dialect_insert = dialect_insert  # INSERT ... ON CONFLICT, for the other tables
        self.texts = DocumentTexts(dialect_insert)
        self._insert_execution = (
            dialect_insert(EXECUTIONS)
            .on_conflict_do_nothing(index_elements=["execution_id"])
            .returning(_X.id)
        )
        self._insert_token = (
            dialect_insert(CLIENT_TOKENS)
            .on_conflict_do_nothing(index_elements=["token"])
            .returning(CLIENT_TOKENS.c.token)
        )
        upsert = dialect_insert(STEPS)
        upsert = upsert.on_conflict_do_update(
            index_elements=["step_execution_id"],
            set_={c.name: upsert.excluded[c.name] for c in STEPS.c if not c.primary_key},
        )
        # The hot path: one step transition = compare-and-set + step upsert.
        self._upsert_step = Prepared(upsert, dialect, _STEP_COLUMNS)
        self._compare_and_set_sql = Prepared(_COMPARE_AND_SET, dialect, _UPDATED)
        # Later transitions set only the columns that changed (see written_rows).
        self._executions_written = WrittenRows(
            [c for c in _UPDATED if c != "version"], "execution_id"
        )
        self._steps_written = WrittenRows(_STEP_UPDATED, "step_execution_id")
        self._partial: dict[tuple[int | str, ...], Prepared] = {}
        self._select_version = Prepared(_SELECT_VERSION, dialect)
        self._lease_expires_from_db = _X.lease_expires.type.dialect_impl(dialect).result_processor(
            dialect, None
        )
        self.documents: DocumentRepository = SqlDocuments(self)
        self.schedules: ScheduleRepository = SqlSchedules(self)
        self.commands: CommandRepository = SqlCommands(self)

    @property
    def url(self) -> str:
        """The database URL (other tables of the same database, e.g. parameters, use it)."""
        return self._engine.url.render_as_string(hide_password=False)

    @classmethod
    def open(cls, url: str) -> SqlStore:
        """Connect, and create or migrate the schema (see ``schema.migrate``)."""
        engine = create_store_engine(url)
        store = cls(engine)
        try:
            store._guard(store._migrate)
        except BaseException:
            store._close()
            raise
        return store

    def _migrate(self) -> None:
        with self._transaction() as conn:
            migrate(conn)

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[Connection]:
        if self._conn is not None:
            self._conn.info[WRITE] = write
            with self._conn.begin():
                yield self._conn
        elif not write:
            with self._reads.connect() as conn:
                yield conn
        else:
            with self._engine.connect() as conn, conn.begin():
                yield conn

    @contextmanager
    def _cursor_transaction(self) -> Iterator[Any]:
        """A write transaction on the driver's own cursor, for ``Prepared`` statements."""
        if self._conn is None:
            with self._transaction() as conn, closing(conn.connection.cursor()) as cursor:
                yield cursor
            return
        driver = self._conn.connection.driver_connection
        assert driver is not None
        driver.execute("BEGIN IMMEDIATE")
        try:
            with closing(driver.cursor()) as cursor:
                yield cursor
        except BaseException:
            driver.execute("ROLLBACK")
            raise
        driver.execute("COMMIT")

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        if self._inline:
            return self._guard(function, *args)
        return await anyio.to_thread.run_sync(
            partial(self._guard, function, *args), limiter=self._limiter
        )

    def _guard(self, function: Callable[..., T], *args: Any) -> T:
        """Run a database call; a driver or SQLAlchemy failure becomes a ``StoreError``."""
        try:
            return function(*args)
        except self._driver_errors as exc:
            cause = getattr(exc, "orig", None) or exc
            raise StoreError(f"state database error: {cause}".strip()) from exc

    # -- executions --------------------------------------------------------------------

    async def create_execution(
        self,
        record: ExecutionRecord,
        *,
        client_token: ClientToken | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        return await self._call(self._create_execution, record, client_token, dict(tags or {}))

    def _create_execution(
        self, record: ExecutionRecord, client_token: ClientToken | None, tags: dict[str, str]
    ) -> str:
        row, content = stored_row(execution_to_row(record))
        try:
            with self._transaction() as conn:
                self.texts.write(conn, row["document_digest"], content)
                if conn.execute(self._insert_execution, row).first() is None:
                    raise StoreError(f"execution {record.execution_id} already exists")
                if client_token is not None:
                    # After the execution (the token's foreign key needs it). A concurrent
                    # start with the same token waits here on PostgreSQL until the first
                    # commits, then finds the token taken and rolls its execution back.
                    token_row = token_row_of(client_token, record.execution_id)
                    if conn.execute(self._insert_token, token_row).first() is None:
                        raise _TokenTaken
                if tags:
                    conn.execute(EXECUTION_TAGS.insert(), tag_rows_of(record.execution_id, tags))
        except _TokenTaken:
            assert client_token is not None
            with self._transaction(write=False) as conn:
                return token_holder(conn, client_token)
        self._executions_written.remember(row, record.version)
        self.texts.remember(row["document_digest"], content)
        return record.execution_id

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        return await self._call(self._get_execution, execution_id)

    def _get_execution(self, execution_id: str) -> ExecutionRecord:
        with self._transaction(write=False) as conn:
            row = conn.execute(_SELECT_EXECUTION, {"b_id": execution_id}).mappings().first()
            if row is None:
                raise ExecutionNotFound(f"execution {execution_id} does not exist")
            return self.texts.record(conn, row)

    async def get_execution_and_steps(
        self, execution_id: str
    ) -> tuple[ExecutionRecord, list[StepRecord]]:
        return await self._call(read_execution_and_steps, self, execution_id)

    async def update_execution(
        self, record: ExecutionRecord, *, expected_version: int
    ) -> ExecutionRecord:
        return await self._call(self._update_execution, record, expected_version)

    def _update_execution(self, record: ExecutionRecord, expected_version: int) -> ExecutionRecord:
        row = execution_to_row(record)
        with self._cursor_transaction() as cursor:
            result = self._compare_and_set(cursor, record, row, expected_version)
        self._executions_written.remember(row, expected_version + 1)
        return result

    def _compare_and_set(
        self, cursor: Any, record: ExecutionRecord, row: dict[str, Any], expected_version: int
    ) -> ExecutionRecord:
        """The record as stored now; ``row`` is ``record`` encoded."""
        execution_id = record.execution_id
        row.update(version=expected_version + 1, b_id=execution_id, b_expected=expected_version)
        changed = self._executions_written.changed(row, expected_version)
        statement = (
            self._compare_and_set_sql
            if changed is None
            else self._statement(_COMPARE_AND_SET, (*changed, "version"))
        )
        lease = statement.execute(cursor, row).fetchone()
        if lease is None:
            stored = self._select_version.execute(cursor, row).fetchone()
            if stored is None:
                raise ExecutionNotFound(f"execution {execution_id} does not exist")
            raise StaleRecord(
                f"execution {execution_id} is at version {stored[0]}, not {expected_version}"
            )
        owner, lease_expires = lease
        if lease_expires is not None and self._lease_expires_from_db is not None:
            lease_expires = self._lease_expires_from_db(lease_expires)
        return evolve(
            record, version=expected_version + 1, owner=owner, lease_expires=lease_expires
        )

    def _statement(self, statement: Any, columns: tuple[str, ...]) -> Prepared:
        """``statement`` (an UPDATE) compiled to set ``columns`` only, once per set."""
        key: tuple[int | str, ...] = (id(statement), *columns)  # module constants
        prepared = self._partial.get(key)
        if prepared is None:
            if len(self._partial) > 256:  # a bound, never reached by the engine's writes
                self._partial.clear()
            prepared = self._partial[key] = Prepared(statement, self._engine.dialect, columns)
        return prepared

    async def list_executions(
        self,
        *,
        status: str | None = None,
        parent_execution_id: str | None = None,
        document_name_prefix: str | None = None,
        limit: int = 50,
        offset: int = 0,
        query: ExecutionQuery | None = None,
    ) -> list[ExecutionRecord]:
        statement = select(*_RECORD_COLUMNS).order_by(_X.id.desc()).limit(limit).offset(offset)
        if status is not None:
            statement = statement.where(_X.status == str(status))
        if parent_execution_id is not None:
            statement = statement.where(_X.parent_execution_id == parent_execution_id)
        if document_name_prefix is not None:
            statement = statement.where(
                _X.document_name.startswith(document_name_prefix, autoescape=True)
            )
        if query is not None:
            statement = statement.where(*execution_filters(query))
        return await self._call(self._fetch_records, statement)

    async def count_executions(self) -> Mapping[str, int]:
        rows = await self._call(self._fetch_rows, COUNT_BY_STATUS)
        return {str(status): int(count) for status, count in rows}

    def _fetch_rows(self, query: Any) -> list[Any]:
        with self._transaction(write=False) as conn:
            return list(conn.execute(query))

    def _fetch_records(self, query: Any) -> list[ExecutionRecord]:
        with self._transaction(write=False) as conn:
            return self.texts.records(conn, conn.execute(query).mappings())

    def _fetch_all(self, query: Any, params: dict[str, Any]) -> list[Any]:
        with self._transaction(write=False) as conn:
            return list(conn.execute(query, params).mappings())

    # -- steps ---------------------------------------------------------------------------

    async def put_step(self, step: StepRecord) -> None:
        await self._call(self._put_step, step)

    def _put_step(self, step: StepRecord) -> None:
        row = step_to_row(step)
        self._steps_written.forget(step.step_execution_id)
        try:
            with self._cursor_transaction() as cursor:
                self._upsert_step.execute(cursor, row)
        except self._integrity_errors as exc:  # the only constraint an upsert can break: FK
            raise ExecutionNotFound(f"execution {step.execution_id} does not exist") from exc

    async def get_steps(self, execution_id: str) -> list[StepRecord]:
        rows = await self._call(self._fetch_all, _SELECT_STEPS, {"b_id": execution_id})
        return [step_from_row(row) for row in rows]

    async def record_steps_and_execution(
        self,
        steps: Sequence[StepRecord],
        execution: ExecutionRecord,
        expected_version: int,
        consume: Sequence[int] = (),
    ) -> ExecutionRecord:
        return await self._call(
            self._record_transition, steps, execution, expected_version, consume
        )

    def _record_transition(
        self,
        steps: Sequence[StepRecord],
        execution: ExecutionRecord,
        expected_version: int,
        signal_ids: Sequence[int],
    ) -> ExecutionRecord:
        """One step transition: the execution's compare-and-set, then its step rows (and
        the signals it consumed), in one transaction."""
        step_rows = step_rows_of(steps, execution)
        row = execution_to_row(execution)
        with self._cursor_transaction() as cursor:
            result = self._compare_and_set(cursor, execution, row, expected_version)
            for step_row in step_rows:
                self._write_step(cursor, step_row, expected_version)
            if signal_ids:
                consume_signals_in(cursor, self._engine.dialect, signal_ids)
        self._executions_written.remember(row, expected_version + 1)
        for step_row in step_rows:
            self._steps_written.remember(step_row, expected_version + 1)
        return result

    def _write_step(self, cursor: Any, row: dict[str, Any], expected_version: int) -> None:
        """The step row, after a successful compare-and-set from ``expected_version``."""
        changed = self._steps_written.changed(row, expected_version)
        if changed is None:
            self._upsert_step.execute(cursor, row)
        elif changed:
            row["b_sid"] = row["step_execution_id"]
            if self._statement(_UPDATE_STEP, changed).execute(cursor, row).rowcount != 1:
                self._upsert_step.execute(cursor, row)  # not there after all: insert it


    # -- signals -------------------------------------------------------------------------

    async def add_signal(self, signal: SignalRecord) -> SignalRecord:
        return await self._call(self._add_signal, signal)

    def _add_signal(self, signal: SignalRecord) -> SignalRecord:
        row = signal_to_row(signal)
        try:
            with self._transaction() as conn:
                row["signal_id"] = conn.execute(_INSERT_SIGNAL, row).scalar_one()
        except self._integrity_errors as exc:
            raise ExecutionNotFound(f"execution {signal.execution_id} does not exist") from exc
        return signal_from_row(row)

    async def add_signal_and_wake(
        self,
        signal: SignalRecord,
        now: datetime | None = None,
        *,
        owner: str | None = None,
        lease_seconds: float = 0.0,
    ) -> ExecutionRecord | None:
        return await self._call(add_signal_and_wake, self, signal, now, owner, lease_seconds)

    async def get_signals(
        self, execution_id: str, *, unconsumed_only: bool = True
    ) -> list[SignalRecord]:
        query = UNCONSUMED_SIGNALS_OF if unconsumed_only else SIGNALS_OF  # built once
        rows = await self._call(self._fetch_all, query, {"b_id": execution_id})
        return [signal_from_row(row) for row in rows]

    async def consume_signals(self, signal_ids: Iterable[int]) -> None:
        ids = list(signal_ids)
        if ids:
            await self._call(self._execute, _CONSUME_SIGNALS, {"b_ids": ids})

    def _execute(self, statement: Any, params: dict[str, Any]) -> int:
        with self._transaction() as conn:
            return conn.execute(statement, params).rowcount

    # -- leases --------------------------------------------------------------------------

    async def claim(
        self,
        execution_id: str,
        owner: str,
        lease_seconds: float,
        now: datetime | None = None,
    ) -> ExecutionRecord | None:
        params = _lease_params(owner, lease_seconds, now, b_id=execution_id)
        return await self._call(self._claim, execution_id, params)

    def _claim(self, execution_id: str, params: dict[str, Any]) -> ExecutionRecord | None:
        with self._transaction() as conn:
            row = conn.execute(_CLAIM, params).mappings().first()
            if row is None:
                exists = conn.execute(_SELECT_VERSION, {"b_id": execution_id}).first()
                if exists is None:
                    raise ExecutionNotFound(f"execution {execution_id} does not exist")
                return None
            return self.texts.record(conn, row)

    async def renew(
        self,
        execution_id: str,
        owner: str,
        lease_seconds: float,
        now: datetime | None = None,
    ) -> bool:
        params = _lease_params(owner, lease_seconds, now, b_id=execution_id)
        return await self._call(self._execute, _RENEW, params) == 1

    async def release(self, execution_id: str, owner: str) -> None:
        await self._call(self._execute, _RELEASE, {"b_id": execution_id, "b_owner": owner})

    async def claim_next(
        self,
        owner: str,
        lease_seconds: float,
        now: datetime | None = None,
        statuses: Iterable[str] = RUNNABLE_STATUSES,
    ) -> ExecutionRecord | None:
        wanted = [str(status) for status in statuses]
        runnable = _claim_first(
            _X.status.in_(wanted) & or_(_X.wake_at.is_(None), _X.wake_at <= _NOW), [_X.id]
        )
        params = _lease_params(owner, lease_seconds, now)
        return await self._call(self._claim_next, runnable, params)

    def _claim_next(self, runnable: Any, params: dict[str, Any]) -> ExecutionRecord | None:
        with self._transaction() as conn:
            row = conn.execute(runnable, params).mappings().first()
            if row is None:
                row = conn.execute(_CLAIM_OVERDUE, params).mappings().first()
            return None if row is None else self.texts.record(conn, row)

    async def close(self) -> None:
        await self._call(self._close)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._engine.dispose()


def _lease_params(
    owner: str, lease_seconds: float, now: datetime | None, **extra: Any
) -> dict[str, Any]:
    moment = instant(now)
    expires = moment + timedelta(seconds=lease_seconds)
    return {"b_owner": owner, "b_now": moment, "b_expires": expires, **extra}
