"""One contract for the document and schedule repositories of every store: in-memory,
SQLite and PostgreSQL (``store.documents``, ``store.schedules``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from runbook_engine.errors import (
    ConcurrentUpdate,
    DocumentExists,
    DocumentMissing,
    DocumentVersionMissing,
    DocumentVersionNameTaken,
    ScheduleMissing,
)
from runbook_engine.store import StateStore, open_store
from runbook_engine.store.documents import DocumentRecord, DocumentVersionRecord
from runbook_engine.store.schedules import Firing, ScheduleRecord

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


def document(name: str = "doc", **tags: str) -> DocumentRecord:
    return DocumentRecord(name, "Automation", "000000000000", T0, tags=tags)


def version(
    number: int, name: str = "doc", version_name: str | None = None
) -> DocumentVersionRecord:
    return DocumentVersionRecord(
        name, number, f"content {number}", "YAML", f"hash{number}", T0, version_name, "Shown", "/x"
    )


async def test_a_document_and_its_versions_come_back_as_written(store: StateStore) -> None:
    documents = store.documents
    await documents.create(document(team="ops"), version(1, version_name="one"))
    found = await documents.find("doc")
    assert found.document == document(team="ops")
    assert found.version == version(1, version_name="one")
    added = await documents.add_version(version(2, version_name="two"))
    assert (added.document.latest_version, added.document.default_version) == (2, 1)
    assert (await documents.find("doc", "$LATEST")).version.version == 2
    assert (await documents.find("doc", "$DEFAULT")).version.version == 1
    assert (await documents.find("doc", version_name="two")).version.version == 2
    assert (await documents.find("doc", "2", "two")).version.content == "content 2"
    with pytest.raises(DocumentVersionMissing):
        await documents.find("doc", "1", "two")
    with pytest.raises(DocumentVersionMissing):
        await documents.find("doc", "3")
    with pytest.raises(DocumentMissing):
        await documents.find("other")
    with pytest.raises(DocumentExists):
        await documents.create(document(), version(1))


async def test_versions_are_added_in_order_and_names_stay_unique(store: StateStore) -> None:
    documents = store.documents
    await documents.create(document(), version(1, version_name="one"))
    with pytest.raises(ConcurrentUpdate):
        await documents.add_version(version(3))
    with pytest.raises(DocumentVersionNameTaken):
        await documents.add_version(version(2, version_name="one"))
    await documents.add_version(version(2))  # the refused ones left nothing behind
    with pytest.raises(DocumentMissing):
        await documents.add_version(version(1, name="missing"))
    assert [v.version for v in await documents.list_versions("doc")] == [1, 2]


async def test_default_version_listing_and_deletion(store: StateStore) -> None:
    documents = store.documents
    await documents.create(document("b-doc"), version(1, "b-doc"))
    await documents.create(document("a-doc"), version(1, "a-doc"))
    await documents.add_version(version(2, "a-doc"))
    changed = await documents.set_default_version("a-doc", 2)
    assert changed.document.default_version == 2 and changed.version.version == 2
    with pytest.raises(DocumentVersionMissing):
        await documents.set_default_version("a-doc", 5)
    listed = await documents.list_documents()
    assert [(s.document.name, s.version.version) for s in listed] == [("a-doc", 2), ("b-doc", 1)]
    with pytest.raises(DocumentVersionMissing):
        await documents.delete("a-doc", 2)  # the default
    await documents.delete("a-doc", 1)
    assert [v.version for v in await documents.list_versions("a-doc")] == [2]
    await documents.delete("a-doc")
    with pytest.raises(DocumentMissing):
        await documents.list_versions("a-doc")
    assert [s.document.name for s in await documents.list_documents()] == ["b-doc"]


async def test_of_updates_racing_on_one_document_exactly_one_wins(store: StateStore) -> None:
    documents = store.documents
    await documents.create(document(), version(1))
    outcomes: list[str] = []

    async def update(index: int) -> None:
        try:
            await documents.add_version(version(2, version_name=f"racer{index}"))
            outcomes.append("added")
        except ConcurrentUpdate:
            outcomes.append("refused")

    async with anyio.create_task_group() as group:
        for index in range(6):
            group.start_soon(update, index)
    assert sorted(outcomes) == ["added"] + ["refused"] * 5
    assert [v.version for v in await documents.list_versions("doc")] == [1, 2]


def schedule(association_id: str, next_run: datetime | None) -> ScheduleRecord:
    return ScheduleRecord(
        association_id=association_id,
        document_name="doc",
        schedule_expression="rate(1 hour)",
        created_by="alice",
        created=T0,
        next_run=next_run,
        association_name="nightly",
        document_version="$LATEST",
        parameters={"Word": ["hi", "there"]},
        targets=({"Key": "tag:Role", "Values": ["web"]},),
        automation_target_parameter_name="InstanceId",
        apply_only_at_cron_interval=True,
        max_concurrency="2",
        max_errors="1",
    )


async def test_schedules_come_back_as_written_and_only_due_ones_are_due(
    store: StateStore,
) -> None:
    schedules = store.schedules
    await schedules.create(schedule("later", T0 + timedelta(hours=1)))
    await schedules.create(schedule("now", T0))
    await schedules.create(schedule("never", None))
    assert await schedules.get("now") == schedule("now", T0)
    assert [s.association_id for s in await schedules.list_all()] == ["later", "never", "now"]
    assert [s.association_id for s in await schedules.due(T0)] == ["now"]
    assert [s.association_id for s in await schedules.due(T0 + timedelta(hours=2))] == [
        "now",
        "later",
    ]
    await schedules.delete("later")
    with pytest.raises(ScheduleMissing):
        await schedules.get("later")
    with pytest.raises(ScheduleMissing):
        await schedules.delete("later")


async def test_a_firing_is_recorded_once_and_only_from_the_time_that_fired(
    store: StateStore,
) -> None:
    schedules = store.schedules
    await schedules.create(schedule("s", T0))
    following = T0 + timedelta(hours=1)
    assert await schedules.advance("s", Firing(T0, following, "exec-1"))
    assert not await schedules.advance("s", Firing(T0, following, "exec-2"))
    stored = await schedules.get("s")
    assert (stored.next_run, stored.last_run, stored.last_execution_id) == (following, T0, "exec-1")
    assert await schedules.advance("s", Firing(following, None, None, "Document doc is gone"))
    stored = await schedules.get("s")
    assert (stored.next_run, stored.last_execution_id, stored.last_error) == (
        None,
        "exec-1",
        "Document doc is gone",
    )
    assert not await schedules.advance("missing", Firing(T0, None, None))
