"""What only the SQL store has: a file or a server, a schema version, other processes."""

from __future__ import annotations

import multiprocessing
import queue
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy

from runbook_engine.errors import StoreError
from runbook_engine.store import default_state_path, open_store
from runbook_engine.store.schema import SCHEMA_VERSION
from tests import store_workers
from tests.store_examples import execution

RACE_ROUNDS = 20


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes URLs of new, empty databases of one kind."""
    if request.param == "sqlite":
        counter = iter(range(1000))
        return lambda: f"sqlite:///{tmp_path / f'state-{next(counter)}.db'}"
    server = request.getfixturevalue("postgres_server")
    return server.create_database  # type: ignore[no-any-return]


def reopen_and_get(url: str, execution_id: str) -> Any:
    async def main() -> Any:
        store = open_store(url)
        try:
            return await store.get_execution(execution_id)
        finally:
            await store.close()

    return anyio.run(main)


def create(url: str, *records: Any) -> None:
    async def main() -> None:
        store = open_store(url)
        try:
            for record in records:
                await store.create_execution(record)
        finally:
            await store.close()

    anyio.run(main)


def schema_rows(url: str) -> list[tuple[int, int]]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sqlalchemy.text("SELECT id, version FROM runbook_schema"))
            return [(row[0], row[1]) for row in rows]
    finally:
        engine.dispose()


def test_the_default_store_is_sqlite_under_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_state_path() == tmp_path / "state" / "runbook" / "state.db"
    create(None, execution())  # type: ignore[arg-type]
    database = tmp_path / "state" / "runbook" / "state.db"
    assert reopen_and_get(f"sqlite:///{database}", "exec-1") == execution()
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_without_xdg_state_home_the_store_lives_in_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_state_path() == tmp_path / ".local" / "state" / "runbook" / "state.db"


def test_records_outlive_the_process_that_wrote_them(empty_database: Callable[[], str]) -> None:
    url = empty_database()
    create(url, execution())
    assert reopen_and_get(url, "exec-1") == execution()


def test_opening_again_migrates_nothing_and_keeps_the_data(
    empty_database: Callable[[], str],
) -> None:
    url = empty_database()
    create(url, execution("a"))
    create(url, execution("b"))
    assert schema_rows(url) == [(1, SCHEMA_VERSION)]
    assert reopen_and_get(url, "a") == execution("a")


def test_a_database_from_a_newer_release_is_refused(empty_database: Callable[[], str]) -> None:
    url = empty_database()
    create(url)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE runbook_schema SET version = 99"))
    engine.dispose()
    with pytest.raises(StoreError, match=rf"schema version 99; .* understands up to {SCHEMA_VERSION}"):
        open_store(url)


def test_a_plain_postgresql_url_uses_psycopg(postgres_server: Any) -> None:
    url = postgres_server.create_database().replace("postgresql+psycopg://", "postgresql://")
    create(url, execution())
    assert reopen_and_get(url, "exec-1").execution_id == "exec-1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://localhost/db", "unsupported state database 'mysql'"),
        ("not a url", "not a state database URL"),
    ],
)
def test_unknown_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_claim_next_finds_due_executions_through_indexes(tmp_path: Path) -> None:
    async def main() -> list[str]:
        store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
        raw = store._conn.connection.dbapi_connection  # type: ignore[attr-defined]
        statements: list[str] = []
        raw.set_trace_callback(statements.append)
        await store.claim_next("worker", 30)
        raw.set_trace_callback(None)
        plans = [
            " / ".join(row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in statements
            if sql.startswith("UPDATE")
        ]
        await store.close()
        return plans

    plans = anyio.run(main)
    assert len(plans) == 2
    for plan in plans:
        assert "USING INDEX ix_runbook_executions_" in plan
        assert "SCAN runbook_executions" not in plan


# -- other processes -----------------------------------------------------------------------


def _race(target: Callable[..., None], jobs: list[tuple[Any, ...]]) -> list[Any]:
    """Run one spawned process per job, started together at a barrier; collect reports."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(jobs))
    results = context.Queue()
    processes = [context.Process(target=target, args=(*job, barrier, results)) for job in jobs]
    for process in processes:
        process.start()
    reports = []
    try:
        while any(process.is_alive() for process in processes) or not results.empty():
            try:
                reports.append(results.get(timeout=0.1))
            except queue.Empty:
                continue
    finally:
        for process in processes:
            process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0] * len(processes)
    return reports


def test_two_processes_racing_to_claim_an_execution_never_both_win(
    empty_database: Callable[[], str],
) -> None:
    url = empty_database()
    ids = [f"exec-{n}" for n in range(RACE_ROUNDS)]
    create(url, *(execution(i, owner=None, lease_expires=None) for i in ids))

    reports = _race(store_workers.claim_each, [(url, "a", ids), (url, "b", ids)])

    assert not [report for report in reports if isinstance(report[2], str)]
    winners = {i: [owner for (j, owner, won) in reports if j == i and won] for i in ids}
    assert all(len(winners[i]) == 1 for i in ids), winners
    assert len(reports) == 2 * RACE_ROUNDS
    for i in ids:
        assert reopen_and_get(url, i).owner == winners[i][0]


def test_workers_draining_due_executions_with_claim_next_share_them_out(
    empty_database: Callable[[], str],
) -> None:
    url = empty_database()
    ids = [f"exec-{n}" for n in range(30)]
    create(url, *(execution(i, owner=None, lease_expires=None, wake_at=None) for i in ids))

    reports = _race(store_workers.claim_until_none, [(url, "a"), (url, "b")])

    assert [report for report in reports if report[2] is not True] == []
    claimed = sorted(execution_id for execution_id, _, _ in reports)
    assert claimed == sorted(ids)  # every one claimed, none twice


def test_processes_opening_an_empty_database_together_create_it_once(
    empty_database: Callable[[], str],
) -> None:
    for _ in range(3):
        url = empty_database()
        ids = [f"exec-{n}" for n in range(3)]
        reports = _race(store_workers.open_and_create, [(url, i) for i in ids])
        assert sorted(reports) == [(i, "Race") for i in ids]
        assert schema_rows(url) == [(1, SCHEMA_VERSION)]
