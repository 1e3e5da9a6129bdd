"""One contract for the command repository of every store (``store.commands``): in-memory,
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest
import sqlalchemy

from runbook_engine.store import StateStore, open_store
from runbook_engine.store.commands import (
    ALL_INSTANCES,
    CommandMissing,
    CommandQuery,
    CommandRecord,
    InvocationRecord,
    Progress,
)
from runbook_engine.store.schema import SCHEMA_VERSION

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'state.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    opened = open_store(url)
    yield opened
    await opened.close()


def command(
    command_id: str, minutes: int = 0, document: str = "AWS-RunShellScript"
) -> CommandRecord:
    return CommandRecord(
        command_id,
        document,
        "1",
        "schemaVersion: '2.2'",
        T0 + timedelta(minutes=minutes),
        "arn:aws:iam::000000000000:user/alice",
        comment="say hi",
        parameters={"commands": ["echo hi"]},
        instance_ids=("web-1", "web-2"),
        targets=(),
        timeout_seconds=60,
        target_count=2,
        owner="daemon-a",
        lease_expires=T0 + timedelta(minutes=minutes, seconds=30),
    )


def invocations(command_id: str, *ids: str) -> list[InvocationRecord]:
    return [InvocationRecord(command_id, i, n, instance_name=i) for n, i in enumerate(ids)]


async def test_a_command_and_its_invocations_come_back_as_written(store: StateStore) -> None:
    commands = store.commands
    await commands.create(command("c1"), invocations("c1", "web-1", "web-2"))
    assert await commands.get("c1") == command("c1")
    with pytest.raises(CommandMissing):
        await commands.get("nope")
    finished = InvocationRecord(
        "c1",
        "web-2",
        1,
        "web-2",
        "Failed",
        "Failed",
        3,
        T0,
        T0 + timedelta(seconds=2),
        "out" * 10_000,
        "err",
        ({"Name": "runShellScript", "Status": "Failed", "ResponseCode": 3},),
        True,
    )
    await commands.save_invocation(finished)
    found = await commands.list_invocations(CommandQuery(command_id="c1"), limit=10)
    assert found == [invocations("c1", "web-1")[0], finished]
    await commands.record_progress("c1", Progress("Failed", "Incomplete", 2, 2, 1, 0))
    stored = await commands.get("c1")
    assert (stored.status, stored.status_details, stored.error_count) == ("Failed", "Incomplete", 1)


async def test_queries_filter_and_page_newest_first(store: StateStore) -> None:
    commands = store.commands
    await commands.create(command("c1", 0), invocations("c1", "web-1"))
    await commands.create(command("c2", 10, "other-doc"), invocations("c2", "web-2"))
    await commands.create(command("c3", 20), invocations("c3", "web-1", "web-2"))
    await commands.record_progress("c3", Progress("Success", "Success", 2, 2, 0, 0))

    async def ids(query: CommandQuery, limit: int = 10, offset: int = 0) -> list[str]:
        return [
            c.command_id for c in await commands.list_commands(query, limit=limit, offset=offset)
        ]

    assert await ids(CommandQuery()) == ["c3", "c2", "c1"]
    assert await ids(CommandQuery(), limit=2, offset=1) == ["c2", "c1"]
    assert await ids(CommandQuery(instance_id="web-1")) == ["c3", "c1"]
    assert await ids(CommandQuery(statuses=("Success",))) == ["c3"]
    assert await ids(CommandQuery(document_name="other-doc")) == ["c2"]
    assert await ids(CommandQuery(invoked_after=T0 + timedelta(minutes=5))) == ["c3", "c2"]
    assert await ids(CommandQuery(invoked_before=T0 + timedelta(minutes=5))) == ["c1"]
    pairs = [
        (i.command_id, i.instance_id)
        for i in await commands.list_invocations(CommandQuery(), limit=10)
    ]
    assert pairs == [("c3", "web-1"), ("c3", "web-2"), ("c2", "web-2"), ("c1", "web-1")]
    web2 = await commands.list_invocations(CommandQuery(instance_id="web-2"), limit=1, offset=1)
    assert [(i.command_id, i.instance_id) for i in web2] == [("c2", "web-2")]


async def test_cancellation_requests_accumulate_and_leave_finished_commands(
    store: StateStore,
) -> None:
    commands = store.commands
    await commands.create(command("c1"), invocations("c1", "web-1", "web-2"))
    first = await commands.request_cancel("c1", ["web-1"])
    assert (first.status, first.cancel_requested) == ("Cancelling", ("web-1",))
    assert first.cancels("web-1") and not first.cancels("web-2")
    everything = await commands.request_cancel("c1", [])
    assert everything.cancel_requested == (ALL_INSTANCES,) and everything.cancels("web-2")
    await commands.create(command("c2"), [])
    await commands.record_progress("c2", Progress("Success", "Success", 0, 0, 0, 0))
    assert (await commands.request_cancel("c2", [])).cancel_requested is None


async def test_leases_are_renewed_released_and_adopted_once(store: StateStore) -> None:
    commands = store.commands
    await commands.create(command("c1"), invocations("c1", "web-1"))
    later = T0 + timedelta(minutes=5)
    assert await commands.adopt("daemon-b", later, T0) is None  # a live lease
    renewed = await commands.renew("c1", "daemon-a", later)
    assert renewed is not None and renewed.lease_expires == later
    assert await commands.renew("c1", "daemon-b", later) is None
    adopted = await commands.adopt(
        "daemon-b", later + timedelta(minutes=1), later + timedelta(seconds=1)
    )
    assert adopted is not None and adopted.owner == "daemon-b"
    assert await commands.adopt("daemon-c", later, later + timedelta(seconds=1)) is None
    await commands.release("c1", "daemon-b")
    again = await commands.adopt("daemon-c", later, T0)
    assert again is not None and again.owner == "daemon-c"
    await commands.record_progress("c1", Progress("Success", "Success", 1, 1, 0, 0))
    await commands.release("c1", "daemon-c")
    assert await commands.adopt("daemon-d", later, later) is None  # finished: nothing to adopt


def test_a_version_5_database_gets_the_command_tables_when_opened(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    for url in (
        f"sqlite:///{tmp_path_factory.mktemp('old') / 'old.db'}",
        request.getfixturevalue("fresh_postgres_url"),
    ):
        anyio.run(_open_and_close, url)
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("DROP TABLE runbook_command_invocations"))
            conn.execute(sqlalchemy.text("DROP TABLE runbook_commands"))
            conn.execute(sqlalchemy.text("UPDATE runbook_schema SET version = 5"))
        assert anyio.run(_create_and_read, url) == command("c1")
        with engine.connect() as conn:
            version = conn.execute(sqlalchemy.text("SELECT version FROM runbook_schema")).scalar()
        engine.dispose()
        assert version == SCHEMA_VERSION


async def _open_and_close(url: str) -> None:
    await open_store(url).close()


async def _create_and_read(url: str) -> CommandRecord:
    store = open_store(url)
    try:
        await store.commands.create(command("c1"), invocations("c1", "web-1"))
        return await store.commands.get("c1")
    finally:
        await store.close()
