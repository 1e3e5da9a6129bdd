"""Schedules fired by the daemon's scheduler, driven with a fake clock: once per firing
across daemons (two schedulers racing on one PostgreSQL), missed firings, firings that
cannot start, and the ``runbook schedule`` command.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from runbook_engine.cli import main
from runbook_engine.daemon.schedule_runner import ScheduleRunner
from runbook_engine.engine import Engine
from runbook_engine.errors import DocumentMissing, ScheduleError
from runbook_engine.schedules import (
    ASSOCIATION_TAG,
    InvalidParameters,
    create_schedule,
    last_status,
)
from runbook_engine.store import ExecutionQuery
from runbook_engine.store.documents import DocumentRecord, DocumentVersionRecord

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
ECHO = """\
schemaVersion: '0.3'
parameters:
  Word: {type: String, default: hi}
mainSteps:
  - name: say
    action: aws:runShellScript
    inputs: {Commands: ['echo {{ Word }}']}
"""


class ClockEngine(Engine):
    """An engine whose clock the test sets."""

    clock = T0

    def now(self) -> datetime:
        return self.clock


@pytest.fixture
def documents(tmp_path: Path) -> Path:
    directory = tmp_path / "documents"
    directory.mkdir()
    (directory / "echo.yaml").write_text(ECHO)
    return directory


@pytest.fixture
async def engine(documents: Path) -> AsyncIterator[ClockEngine]:
    async with ClockEngine("memory://", documents=[documents]) as opened:
        yield opened


async def fired_executions(engine: Engine) -> list[str]:
    query = ExecutionQuery(tag_keys=(ASSOCIATION_TAG,))
    return [e.execution_id for e in await engine.store.list_executions(query=query, limit=500)]


async def test_a_rate_fires_at_creation_then_every_interval(engine: ClockEngine) -> None:
    record = await create_schedule(
        engine,
        document_name="echo",
        expression="rate(1 hour)",
        created_by="alice",
        parameters={"Word": ["scheduled"]},
    )
    runner = ScheduleRunner(engine, lambda: None)
    first = await runner.tick(T0)
    assert len(first) == 1 and await runner.tick(T0 + timedelta(minutes=59)) == []
    second = await runner.tick(T0 + timedelta(hours=1))
    assert len(second) == 1
    execution = await engine.store.get_execution(second[0])
    assert execution.supplied_parameters == {"Word": ["scheduled"]}
    assert execution.executed_by == "alice"
    stored = await engine.store.schedules.get(record.association_id)
    assert stored.next_run == T0 + timedelta(hours=2)
    assert (stored.last_run, stored.last_execution_id) == (T0 + timedelta(hours=1), second[0])


async def test_missed_firings_fire_once_then_the_schedule_goes_on(engine: ClockEngine) -> None:
    record = await create_schedule(
        engine, document_name="echo", expression="rate(1 hour)", created_by="alice"
    )
    runner = ScheduleRunner(engine, lambda: None)
    late = T0 + timedelta(hours=5, minutes=30)  # five firings were missed
    assert len(await runner.tick(late)) == 1
    assert await runner.tick(late + timedelta(minutes=1)) == []
    stored = await engine.store.schedules.get(record.association_id)
    assert (stored.last_run, stored.next_run) == (T0, T0 + timedelta(hours=6))
    assert len(await fired_executions(engine)) == 1


async def test_a_cron_schedule_waits_for_its_time_when_asked_to(engine: ClockEngine) -> None:
    record = await create_schedule(
        engine,
        document_name="echo",
        expression="cron(30 3 ? * * *)",
        created_by="alice",
        apply_only_at_cron_interval=True,
    )
    assert record.next_run == T0 + timedelta(hours=1, minutes=30)
    runner = ScheduleRunner(engine, lambda: None)
    assert await runner.tick(T0) == []
    assert len(await runner.tick(T0 + timedelta(hours=2))) == 1
    stored = await engine.store.schedules.get(record.association_id)
    assert stored.next_run == T0 + timedelta(days=1, hours=1, minutes=30)


async def test_a_firing_that_cannot_start_is_recorded_and_the_schedule_goes_on(
    engine: ClockEngine,
) -> None:
    stored_doc = DocumentRecord("stored-echo", "Automation", "000000000000", T0)
    await engine.store.documents.create(
        stored_doc, DocumentVersionRecord("stored-echo", 1, ECHO, "YAML", "h", T0)
    )
    record = await create_schedule(
        engine, document_name="stored-echo", expression="rate(1 day)", created_by="alice"
    )
    await engine.store.documents.delete("stored-echo")
    runner = ScheduleRunner(engine, lambda: None)
    assert await runner.tick(T0) == []
    stored = await engine.store.schedules.get(record.association_id)
    assert stored.last_error is not None and "stored-echo" in stored.last_error
    assert stored.next_run == T0 + timedelta(days=1)
    assert (await last_status(engine, stored))[0] == "Failed"


async def test_creating_checks_expression_document_and_parameters(engine: ClockEngine) -> None:
    with pytest.raises(ScheduleError):
        await create_schedule(engine, document_name="echo", expression="rate(1 s)", created_by="a")
    with pytest.raises(DocumentMissing):
        await create_schedule(
            engine, document_name="nothing", expression="rate(1 day)", created_by="a"
        )
    with pytest.raises(InvalidParameters, match="Colour"):
        await create_schedule(
            engine,
            document_name="echo",
            expression="rate(1 day)",
            created_by="a",
            parameters={"Colour": ["red"]},
        )
    assert await engine.store.schedules.list_all() == []


async def test_two_schedulers_racing_on_postgres_start_one_execution_per_firing(
    fresh_postgres_url: str, documents: Path
) -> None:
    async with (
        ClockEngine(fresh_postgres_url, documents=[documents]) as first,
        ClockEngine(fresh_postgres_url, documents=[documents]) as second,
    ):
        record = await create_schedule(
            first, document_name="echo", expression="rate(1 minute)", created_by="alice"
        )
        runners = [ScheduleRunner(first, lambda: None), ScheduleRunner(second, lambda: None)]
        recorded: list[str] = []

        async def tick(runner: ScheduleRunner, now: datetime) -> None:
            recorded.extend(await runner.tick(now))

        minutes = 15
        for minute in range(minutes):
            now = T0 + timedelta(minutes=minute)
            # Both at the same instant (the tightest race), or the second a moment later.
            later = now + timedelta(seconds=minute % 3 * 20)
            async with anyio.create_task_group() as group:
                group.start_soon(tick, runners[0], now)
                group.start_soon(tick, runners[1], later)

        executions = await fired_executions(first)
        assert len(executions) == minutes
        assert sorted(recorded) == sorted(executions)  # each firing recorded by one daemon
        stored = await first.store.schedules.get(record.association_id)
        assert stored.next_run == T0 + timedelta(minutes=minutes)

        # A daemon that started a firing's execution and died before recording it: the
        # next look finds the same execution and creates none.
        due = (await first.store.schedules.due(stored.next_run))[0]
        firing = await runners[0].fire(due, stored.next_run)
        assert await runners[1].tick(stored.next_run) == [firing.execution_id]
        assert len(await fired_executions(first)) == minutes + 1


def test_the_schedule_command_creates_lists_and_deletes(tmp_path: Path, documents: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, [*args, "--state", state], prog_name="runbook")
        return result.exit_code, result.output

    code, output = invoke(
        "schedule", "create", "echo", "--documents", str(documents), "--schedule",
        "cron(0 2 ? * SUN *)", "--name", "weekly", "-p", "Word=sunday",
        "--apply-only-at-cron-interval", "--output", "json",
    )  # fmt: skip
    assert code == 0, output
    created = json.loads(output)["AssociationDescription"]
    assert created["ScheduleExpression"] == "cron(0 2 ? * SUN *)"
    assert created["Parameters"] == {"Word": ["sunday"]} and created["AssociationName"] == "weekly"

    code, output = invoke("schedule", "list")
    assert code == 0 and created["AssociationId"] in output
    assert "cron(0 2 ? * SUN *)" in output and "Pending" in output

    code, output = invoke(
        "schedule", "create", "echo", "--documents", str(documents), "--schedule", "rate(5 weeks)",
        "--output", "json",
    )  # fmt: skip
    assert code == 2 and json.loads(output)["__type"] == "InvalidSchedule"

    code, output = invoke("schedule", "delete", created["AssociationId"])
    assert code == 0
    code, output = invoke("schedule", "list", "--output", "json")
    assert json.loads(output) == {"Associations": []}
    code, output = invoke("schedule", "delete", created["AssociationId"])
    assert code == 2 and "does not exist" in output
