"""Schema version 3 adds the Parameter Store's table: a version 1 database migrates on open
and keeps its executions."""

from __future__ import annotations

from pathlib import Path

import anyio
import sqlalchemy

from runbook_engine.records import ExecutionRecord
from runbook_engine.status import Status
from runbook_engine.store import open_store
from runbook_engine.store.schema import SCHEMA_VERSION


def test_a_version_1_database_gets_the_parameters_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"

    async def create() -> None:
        store = open_store(url)
        await store.create_execution(
            ExecutionRecord(
                execution_id="old",
                document_name="Doc",
                document_content="schemaVersion: '0.3'",
                status=Status.SUCCESS,
            )
        )
        await store.close()

    anyio.run(create)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:  # make it what release 1 left behind
        conn.execute(sqlalchemy.text("DROP TABLE runbook_parameters"))
        conn.execute(sqlalchemy.text("UPDATE runbook_schema SET version = 1"))

    async def reopen() -> str:
        store = open_store(url)
        record = await store.get_execution("old")
        await store.close()
        return record.execution_id

    assert anyio.run(reopen) == "old"
    with engine.connect() as conn:
        assert sqlalchemy.inspect(conn).has_table("runbook_parameters")
        version = conn.execute(sqlalchemy.text("SELECT version FROM runbook_schema")).scalar()
    engine.dispose()
    assert version == SCHEMA_VERSION
