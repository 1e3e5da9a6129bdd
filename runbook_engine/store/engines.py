"""Engines for the state database URLs: SQLite set up for durability and concurrency,
PostgreSQL through psycopg 3.

SQLite: WAL with ``synchronous=NORMAL`` (a commit survives a process crash; a power
loss may lose the last commits, never corrupt the file), ``busy_timeout`` so that
writers from other processes queue instead of failing, foreign keys on. The driver's
own transaction handling is off: write transactions start with ``BEGIN IMMEDIATE``, so
two processes never both read and then both try to upgrade to the write lock; reads
start with a plain ``BEGIN``. Which one is taken from ``Connection.info[WRITE]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError

from runbook_engine.errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_POOL_SIZE = 8
WRITE = "runbook_write_transaction"  # Connection.info key: the next BEGIN is for a write


def create_store_engine(url: str) -> Engine:
    """An engine for ``sqlite:///PATH`` (parent directories created) or PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a state database URL: {url!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "postgresql+psycopg":
        return create_engine(
            parsed,
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=0,
            connect_args={"options": "-c timezone=UTC"},
        )
    if parsed.drivername != "sqlite":
        raise StoreError(
            f"unsupported state database {parsed.drivername!r}:"
            " use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the begin hook issues BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _begin_sqlite(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get(WRITE, True) else "BEGIN")
