"""What the daemon's API needs from every state store: ClientToken idempotency, tags,
the DescribeAutomationExecutions filters, counts by status; and the schema migration
that added them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import pytest
import sqlalchemy

from runbook_engine.errors import IdempotencyMismatch
from runbook_engine.records import ExecutionRecord
from runbook_engine.status import Status
from runbook_engine.store import ClientToken, ExecutionQuery, StateStore, open_store
from runbook_engine.store.schema import SCHEMA_VERSION
from tests.store_examples import T0, execution

pytestmark = pytest.mark.anyio
TOKEN = "6f1c0a52-3b9e-4d7a-9c1e-2a4b5c6d7e8f"


def fresh(execution_id: str, **changes: object) -> ExecutionRecord:
    fields: dict[str, object] = {"owner": None, "lease_expires": None, "version": 0}
    fields.update(changes)
    return execution(execution_id, **fields)


async def ids(store: StateStore, query: ExecutionQuery) -> list[str]:
    return [r.execution_id for r in await store.list_executions(query=query)]


async def test_a_client_token_gives_back_the_first_execution(store: StateStore) -> None:
    token = ClientToken(TOKEN, "digest-a")
    assert await store.create_execution(fresh("a"), client_token=token) == "a"
    again = ClientToken(TOKEN.upper(), "digest-a")
    assert await store.create_execution(fresh("b"), client_token=again) == "a"
    assert [r.execution_id for r in await store.list_executions()] == ["a"]
    with pytest.raises(IdempotencyMismatch):
        await store.create_execution(fresh("c"), client_token=ClientToken(TOKEN, "digest-b"))
    assert await store.create_execution(fresh("d")) == "d"


async def test_concurrent_starts_with_one_token_create_one_execution(store: StateStore) -> None:
    winners: list[str] = []

    async def start(n: int) -> None:
        record = fresh(f"racer-{n}")
        winners.append(await store.create_execution(record, client_token=ClientToken(TOKEN, "d")))

    async with anyio.create_task_group() as group:
        for n in range(6):
            group.start_soon(start, n)
    assert len(set(winners)) == 1
    assert len(await store.list_executions()) == 1


async def test_execution_filters_combine_like_the_api_says(store: StateStore) -> None:
    await store.create_execution(
        fresh("a", document_name="Deploy_Web", status=Status.SUCCESS, start_time=T0),
        tags={"team": "web", "env": "prod"},
    )
    await store.create_execution(
        fresh(
            "b",
            document_name="Deploy%Db",
            status=Status.FAILED,
            start_time=T0 + timedelta(hours=1),
            current_action="aws:sleep",
            parent_execution_id="a",
        ),
        tags={"team": "db"},
    )
    await store.create_execution(
        fresh("c", document_name="DeployXWeb", status=Status.PENDING, start_time=None)
    )
    assert await ids(store, ExecutionQuery()) == ["c", "b", "a"]
    assert await ids(store, ExecutionQuery(statuses=("Success", "Failed"))) == ["b", "a"]
    assert await ids(store, ExecutionQuery(document_name_prefixes=("Deploy_",))) == ["a"]
    assert await ids(store, ExecutionQuery(document_name_prefixes=("Deploy%", "DeployX"))) == [
        "c",
        "b",
    ]
    assert await ids(store, ExecutionQuery(tag_keys=("env",))) == ["a"]
    assert await ids(store, ExecutionQuery(tag_keys=("team", "nope"))) == ["b", "a"]
    assert await ids(store, ExecutionQuery(current_actions=("aws:sleep",))) == ["b"]
    assert await ids(store, ExecutionQuery(parent_execution_ids=("a",))) == ["b"]
    assert await ids(store, ExecutionQuery(execution_ids=("a", "c"))) == ["c", "a"]
    halfway = T0 + timedelta(minutes=30)
    assert await ids(store, ExecutionQuery(started_before=halfway)) == ["a"]
    assert await ids(store, ExecutionQuery(started_after=halfway)) == ["b"]
    both = ExecutionQuery(tag_keys=("team",), statuses=("Success",))
    assert await ids(store, both) == ["a"]
    page = await store.list_executions(query=ExecutionQuery(), limit=1, offset=1)
    assert [r.execution_id for r in page] == ["b"]
    assert await store.count_executions() == {"Success": 1, "Failed": 1, "Pending": 1}


def test_a_version_1_database_gets_the_new_tables_when_opened(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    for url in (
        f"sqlite:///{tmp_path / 'old.db'}",
        request.getfixturevalue("fresh_postgres_url"),
    ):

        async def create_and_close(url: str = url) -> None:
            store = open_store(url)
            await store.create_execution(fresh("old"))
            await store.close()

        anyio.run(create_and_close)
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("DROP TABLE runbook_client_tokens"))
            conn.execute(sqlalchemy.text("DROP TABLE runbook_execution_tags"))
            conn.execute(sqlalchemy.text("UPDATE runbook_schema SET version = 1"))

        async def use_new_tables(url: str = url) -> list[str]:
            store = open_store(url)
            try:
                await store.create_execution(
                    fresh("new"), client_token=ClientToken(TOKEN, "x"), tags={"k": "v"}
                )
                return await ids(store, ExecutionQuery(tag_keys=("k",)))
            finally:
                await store.close()

        assert anyio.run(use_new_tables) == ["new"]
        with engine.connect() as conn:
            version = conn.execute(sqlalchemy.text("SELECT version FROM runbook_schema")).scalar()
        engine.dispose()
        assert version == SCHEMA_VERSION
