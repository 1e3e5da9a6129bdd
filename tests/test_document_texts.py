"""Runbook texts are stored once per distinct text, outside the execution rows that a
step transition rewrites (schema version 7); a version 6 database, which kept the text
in every execution row, migrates on open and its executions still run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import anyio
import pytest
import sqlalchemy

from runbook_engine import Engine
from runbook_engine.settings import Settings
from runbook_engine.status import Status
from runbook_engine.store import StateStore, open_store
from runbook_engine.store.schema import SCHEMA_VERSION, text_digest
from tests.store_examples import execution

RUNBOOK = """\
schemaVersion: '0.3'
parameters:
  Greeting: {type: String, default: hello}
mainSteps:
  - name: say
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: handler
      Script: |
        def handler(events, context):
            return {"said": events["greeting"]}
      InputPayload: {greeting: '{{ Greeting }}'}
    outputs:
      - {Name: Said, Selector: $.Payload.said, Type: String}
outputs: [say.Said]
"""


@pytest.mark.anyio
async def test_the_text_an_execution_runs_never_changes(store: StateStore) -> None:
    record = execution(status=Status.PENDING)
    await store.create_execution(record)
    other_text = replace(record, document_content="schemaVersion: '0.3'\nmainSteps: [x]\n")
    await store.update_execution(
        replace(other_text, status=Status.IN_PROGRESS), expected_version=record.version
    )
    stored = await store.get_execution(record.execution_id)
    assert (stored.status, stored.document_content) == (
        Status.IN_PROGRESS,
        record.document_content,
    )


def _sql_urls(tmp_path: Path, request: pytest.FixtureRequest) -> list[str]:
    return [f"sqlite:///{tmp_path / 'state.db'}", request.getfixturevalue("fresh_postgres_url")]


def test_executions_of_one_text_share_one_stored_copy(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    for url in _sql_urls(tmp_path, request):

        async def create(url: str = url) -> list[str]:
            store = open_store(url)
            try:
                for n in range(3):
                    await store.create_execution(execution(f"exec-{n}"))
                await store.create_execution(
                    execution("exec-other", document_content="schemaVersion: '0.3'\n")
                )
                listed = await store.list_executions()
                return [record.document_content for record in listed]
            finally:
                await store.close()

        contents = anyio.run(create)
        assert contents == ["schemaVersion: '0.3'\n"] + [execution().document_content] * 3
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as conn:
            texts = conn.execute(
                sqlalchemy.text("SELECT digest, content FROM runbook_document_texts ORDER BY 2")
            ).all()
            digests = conn.execute(
                sqlalchemy.text("SELECT document_digest FROM runbook_executions ORDER BY id")
            ).scalars()
            columns = {
                c["name"] for c in sqlalchemy.inspect(conn).get_columns("runbook_executions")
            }
            assert list(digests) == [text_digest(execution().document_content)] * 3 + [
                text_digest("schemaVersion: '0.3'\n")
            ]
        engine.dispose()
        assert [content for _, content in texts] == [
            "schemaVersion: '0.3'\n",
            execution().document_content,
        ]
        assert "document_content" not in columns


def _make_version_6(url: str) -> None:
    """Turn a database into what release 6 left behind: each execution row holding its
    text, no table of texts."""
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        for statement in (
            "ALTER TABLE runbook_executions ADD COLUMN document_content TEXT NOT NULL DEFAULT ''",
            "UPDATE runbook_executions SET document_content = (SELECT content"
            " FROM runbook_document_texts t WHERE t.digest = runbook_executions.document_digest)",
            "ALTER TABLE runbook_executions DROP COLUMN document_digest",
            "DROP TABLE runbook_document_texts",
            "UPDATE runbook_schema SET version = 6",
        ):
            conn.execute(sqlalchemy.text(statement))
    engine.dispose()


def test_a_version_6_database_moves_its_texts_and_its_executions_still_run(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    document = tmp_path / "greet.yaml"
    document.write_text(RUNBOOK)
    for url in _sql_urls(tmp_path, request):

        async def start(url: str = url) -> tuple[str, str]:
            async with Engine(url, settings=Settings(principal="alice")) as engine:
                done = await engine.run(str(document), {"Greeting": "before"})
                assert done.status == Status.SUCCESS
                pending = await engine.start(str(document), {"Greeting": "after"})
                return done.execution.execution_id, pending

        done_id, pending_id = anyio.run(start)
        _make_version_6(url)

        async def finish(url: str, done_id: str, pending_id: str) -> tuple[str, str, object]:
            async with Engine(url, settings=Settings(principal="alice")) as engine:
                old = await engine.get(done_id)
                finished = await engine.wait(pending_id)
                return old.execution.document_content, finished.status, finished.execution.outputs

        content, status, outputs = anyio.run(finish, url, done_id, pending_id)
        assert content == RUNBOOK
        assert (status, outputs) == (Status.SUCCESS, {"say.Said": "after"})
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as conn:
            version = conn.execute(sqlalchemy.text("SELECT version FROM runbook_schema")).scalar()
            texts = conn.execute(sqlalchemy.text("SELECT content FROM runbook_document_texts"))
            assert list(texts.scalars()) == [RUNBOOK]  # two executions, one copy
            columns = {
                c["name"] for c in sqlalchemy.inspect(conn).get_columns("runbook_executions")
            }
        engine.dispose()
        assert version == SCHEMA_VERSION == 7
        assert "document_content" not in columns
