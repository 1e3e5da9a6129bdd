"""Steps that only read (``Action.reads_only``: aws:executeAwsApi Describe/Get/List...):
their write-ahead record commits while their call runs, and an interrupted one runs again
on resume. Steps that may change something keep the write-ahead rule: the record first,
then the call."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from runbook_engine import Engine
from runbook_engine.errors import LeaseLost
from runbook_engine.in_flight import announcing
from runbook_engine.inputs import ActionSchema
from runbook_engine.plugin import ActionContext, ActionResult, SimpleAction
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.registry import default_registry
from runbook_engine.settings import Settings
from runbook_engine.status import Status
from runbook_engine.store import StateStore
from tests.aws_support import client, new_instance, settings, write


class Journal:
    """What happened, in order: calls starting on their thread, and commits."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def action(self, name: str, *, reads: bool) -> SimpleAction:
        async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
            def call() -> str:
                self.events.append(f"call {inputs['Name']}")
                time.sleep(0.05)  # long enough for a commit to land meanwhile
                self.events.append(f"answer {inputs['Name']}")
                return str(inputs["Name"])

            answer = await anyio.to_thread.run_sync(announcing(call))
            return ActionResult(outputs={"Answer": answer})

        return SimpleAction(
            name,
            ActionSchema(inputs={}, extra_inputs=True),
            run,
            reads_only=(lambda inputs: True) if reads else None,
        )

    def store(self, fail_on: str | None = None) -> Any:
        journal = self

        class JournalingStore:
            def __init__(self, inner: StateStore) -> None:
                self._inner = inner

            def __getattr__(self, name: str) -> Any:
                return getattr(self._inner, name)

            async def record_steps_and_execution(
                self,
                steps: Sequence[StepRecord],
                execution: ExecutionRecord,
                expected_version: int,
                consume: Sequence[int] = (),
            ) -> ExecutionRecord:
                names = ",".join(f"{s.step_name}:{s.status}" for s in steps)
                if fail_on is not None and f"{fail_on}:InProgress" in names:
                    raise LeaseLost(f"Execution {execution.execution_id} was taken over by B")
                saved = await self._inner.record_steps_and_execution(
                    steps, execution, expected_version, consume
                )
                journal.events.append(f"commit {names}")
                return saved

        return JournalingStore


TWO_KINDS = """
schemaVersion: '0.3'
mainSteps:
  - {name: first, action: test:read, inputs: {Name: first}}
  - {name: second, action: test:read, inputs: {Name: second}}
  - {name: write, action: test:write, inputs: {Name: write}}
  - {name: after, action: test:read, inputs: {Name: after}}
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both stores: SQLite commits on the event loop's thread, PostgreSQL on a worker."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


def run_journaled(
    tmp_path: Path, state: str, journal: Journal, fail_on: str | None = None
) -> Any:
    registry = default_registry().with_actions(
        journal.action("test:read", reads=True), journal.action("test:write", reads=False)
    )
    document = write(tmp_path, "two-kinds.yaml", TWO_KINDS)

    async def main() -> Any:
        async with Engine(
            state,
            registry=registry,
            settings=Settings(principal="test"),
            wrap_store=journal.store(fail_on),
        ) as engine:
            execution_id = await engine.start(document)
            try:
                await engine.wait(execution_id)
            except LeaseLost as lost:
                return lost, await engine.store.get_steps(execution_id)
            return await engine.get(execution_id)

    return anyio.run(main)


def test_a_read_commits_its_record_while_it_runs_a_write_commits_first(
    tmp_path: Path, state: str
) -> None:
    journal = Journal()
    view = run_journaled(tmp_path, state, journal)
    assert view.status == Status.SUCCESS
    assert [s.outputs["Answer"] for s in view.steps] == ["first", "second", "write", "after"]
    events = journal.events
    # A read: its call is on its thread first, and its record commits while the call runs
    # (with the final record of the read before it).
    assert events.index("call first") < events.index("commit first:InProgress")
    assert events.index("commit first:InProgress") < events.index("answer first")
    second = "commit first:Success,second:InProgress"
    assert events.index("call second") < events.index(second) < events.index("answer second")
    # A step that may change something: its record (with the read's result) committed
    # before its call.
    assert events.index("commit second:Success,write:InProgress") < events.index("call write")
    # A read after a write: the write's final record is not risked, it commits first.
    assert events.index("commit write:Success,after:InProgress") < events.index("call after")


def test_a_read_whose_record_cannot_be_committed_is_dropped(tmp_path: Path, state: str) -> None:
    journal = Journal()
    lost, steps = run_journaled(tmp_path, state, journal, fail_on="second")
    assert "taken over by B" in str(lost)
    # The read ran (it changes nothing), but nothing about it was recorded, and no step
    # after it started. The first read's result, held for that commit, is lost with it: it
    # is still InProgress, and runs again on resume.
    assert "call second" in journal.events and "call write" not in journal.events
    assert [(s.step_name, s.status) for s in steps] == [("first", Status.IN_PROGRESS)]


DESCRIBE_THEN_TAG = """
schemaVersion: '0.3'
parameters:
  InstanceId: {type: String}
mainSteps:
  - name: describe
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: DescribeInstances, InstanceIds: ['{{ InstanceId }}']}
    outputs: [{Name: State, Selector: '$.Reservations[0].Instances[0].State.Name'}]
  - name: tag
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: CreateTags
      Resources: ['{{ InstanceId }}']
      Tags: [{Key: Resumed, Value: 'yes'}]
"""


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize("interrupted", ["describe", "tag"])
def test_an_interrupted_read_runs_again_an_interrupted_write_does_not(
    tmp_path: Path, interrupted: str
) -> None:
    """A crash left the step InProgress (its call made or not, its answer lost)."""
    instance = new_instance()
    document = write(tmp_path, "d.yaml", DESCRIBE_THEN_TAG)

    async def main() -> Any:
        async with Engine(f"sqlite:///{tmp_path / 'state.db'}", settings=settings()) as engine:
            execution_id = await engine.start(document, {"InstanceId": instance})
            steps = (
                [] if interrupted == "describe" else [("describe", Status.SUCCESS)]
            ) + [(interrupted, Status.IN_PROGRESS)]
            inputs = {
                "describe": {"Service": "ec2", "Api": "DescribeInstances", "InstanceIds": [instance]},
                "tag": {
                    "Service": "ec2",
                    "Api": "CreateTags",
                    "Resources": [instance],
                    "Tags": [{"Key": "Resumed", "Value": "yes"}],
                },
            }
            for sequence, (name, status) in enumerate(steps, start=1):
                record = StepRecord(
                    execution_id,
                    f"step-{name}",
                    sequence,
                    name,
                    "aws:executeAwsApi",
                    status,
                    inputs=inputs[name],
                    outputs={"State": "running"} if status == Status.SUCCESS else {},
                )
                await engine.store.put_step(record)
            return await engine.resume(execution_id)

    view = anyio.run(main)
    tags = client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [instance]}])
    tagged = any(t["Key"] == "Resumed" for t in tags["Tags"])
    if interrupted == "describe":
        assert view.status == Status.SUCCESS, view.execution.failure_message
        assert view.step("describe").outputs == {"State": "running"}
        assert view.step("describe").attempt == 1
        assert tagged
    else:
        assert view.status == Status.FAILED
        assert "not safe to run twice" in (view.step("tag").failure_message or "")
        assert not tagged  # never sent again
