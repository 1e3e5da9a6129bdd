"""Step transitions write only the changed columns: what a fresh reader sees is still
every field of every record written, whoever wrote in between."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from runbook_engine.errors import StaleRecord
from runbook_engine.record_copies import evolve
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.status import Status
from runbook_engine.store import StateStore, open_store
from tests.store_examples import T0, execution, step


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    server = request.getfixturevalue("postgres_server")
    return str(server.create_database())


def without_lease(record: ExecutionRecord) -> ExecutionRecord:
    return replace(record, owner=None, lease_expires=None)


async def stored(url: str, execution_id: str) -> tuple[ExecutionRecord, list[StepRecord]]:
    """What a store opened afresh reads: nothing remembered from the writes."""
    reader = open_store(url)
    try:
        return await reader.get_execution(execution_id), await reader.get_steps(execution_id)
    finally:
        await reader.close()


def run(main: Callable[[], Any]) -> Any:
    return anyio.run(main)


def test_every_field_of_a_chain_of_transitions_reaches_the_database(database_url: str) -> None:
    async def main() -> None:
        store = open_store(database_url)
        try:
            record = execution(version=0, owner=None, lease_expires=None)
            await store.create_execution(record)
            ahead = step(status=Status.IN_PROGRESS, end_time=None, outputs={})
            changes: list[dict[str, Any]] = [
                {"current_step_name": "a", "status": Status.WAITING},
                {"current_step_name": "b", "failure_message": None, "variables": {}},
                {"outputs": {"x": 1}, "end_time": None, "wake_at": T0 + timedelta(hours=2)},
                {"status": Status.SUCCESS, "end_time": T0 + timedelta(hours=3)},
            ]
            step_changes: list[dict[str, Any]] = [
                {},
                {"status": Status.SUCCESS, "end_time": T0, "outputs": {"y": [1, 2]}},
                {"message": "", "loop": None, "logs": "more\n", "cancel_run": False},
                {"failure_details": {}, "target": None, "response": None},
            ]
            for execution_change, step_change in zip(changes, step_changes, strict=True):
                record = replace(record, **execution_change)
                ahead = replace(ahead, **step_change)
                record = await store.record_steps_and_execution([ahead], record, record.version)
                fresh_execution, fresh_steps = await stored(database_url, record.execution_id)
                assert without_lease(fresh_execution) == without_lease(record)
                assert fresh_steps == [ahead]
            record = await store.update_execution(
                replace(record, stop_requested=None), expected_version=record.version
            )
            fresh_execution, _ = await stored(database_url, record.execution_id)
            assert fresh_execution.stop_requested is None
            assert without_lease(fresh_execution) == without_lease(record)
        finally:
            await store.close()

    run(main)


def test_a_write_by_another_store_in_between_is_not_taken_for_ours(database_url: str) -> None:
    async def main() -> None:
        ours, theirs = open_store(database_url), open_store(database_url)
        try:
            record = execution(version=0, owner=None, lease_expires=None, current_step_name="a")
            await ours.create_execution(record)
            record = await ours.update_execution(
                replace(record, current_step_name="b"), expected_version=0
            )
            other = await theirs.get_execution(record.execution_id)
            await theirs.update_execution(
                replace(other, current_step_name="theirs", variables={"v": 2}),
                expected_version=other.version,
            )
            with pytest.raises(StaleRecord):
                await ours.update_execution(
                    replace(record, current_step_name="c"), expected_version=record.version
                )
            fresh = await ours.get_execution(record.execution_id)
            # back to our values: columns equal to what *we* last wrote must still be written
            record = await ours.update_execution(
                replace(record, current_step_name="b", version=fresh.version),
                expected_version=fresh.version,
            )
            stored_execution, _ = await stored(database_url, record.execution_id)
            assert stored_execution.current_step_name == "b"
            assert stored_execution.variables == execution().variables
        finally:
            await ours.close()
            await theirs.close()

    run(main)


def test_a_step_put_in_between_is_written_over_in_full(database_url: str) -> None:
    async def main() -> None:
        store: StateStore = open_store(database_url)
        try:
            record = execution(version=0, owner=None, lease_expires=None)
            await store.create_execution(record)
            ahead = step(status=Status.IN_PROGRESS, message="first")
            record = await store.record_steps_and_execution([ahead], record, 0)
            await store.put_step(replace(ahead, message="put", attempt=9))
            await store.record_steps_and_execution([ahead], record, record.version)
            _, steps = await stored(database_url, record.execution_id)
            assert steps == [ahead]
        finally:
            await store.close()

    run(main)


@pytest.mark.parametrize("record", [execution(), step()], ids=["execution", "step"])
def test_evolve_copies_like_dataclasses_replace(record: Any) -> None:
    changes = {"status": Status.FAILED, "execution_id": "other"}
    copied = evolve(record, **changes)
    assert copied == replace(record, **changes)
    assert type(copied) is type(record)
    assert record.status != Status.FAILED  # the original is untouched
    with pytest.raises(TypeError, match="no field nonsense"):
        evolve(record, nonsense=1)
