"""Associations (schedules) through the daemon's API with boto3: created, fired by the
daemon's scheduler, described, listed and deleted; and two daemons on one PostgreSQL
firing a fast schedule once per firing between them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from runbook_engine.schedules import ASSOCIATION_TAG
from tests.services.daemon import DaemonProcess, Daemons, wait_for
from tests.test_daemon_workers import stored

ECHO = """\
schemaVersion: '0.3'
parameters:
  Word: {type: String, default: hi}
mainSteps:
  - name: say
    action: aws:runShellScript
    inputs: {Commands: ['echo {{ Word }}']}
outputs: [say.Output]
"""


@pytest.fixture
def documents(tmp_path: Path) -> Path:
    directory = tmp_path / "documents"
    directory.mkdir()
    (directory / "echo.yaml").write_text(ECHO)
    return directory


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("schedules")
    (root / "documents").mkdir()
    (root / "documents" / "echo.yaml").write_text(ECHO)
    process = DaemonProcess(
        root,
        {
            "state": f"sqlite:///{root / 'state.db'}",
            "documents": [str(root / "documents")],
            "workers": 2,
            "schedule_poll_seconds": 0.2,
        },
    )
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return str(info.value.response["Error"]["Code"])


def test_an_association_without_a_schedule_runs_once_and_reports_its_status(
    daemon: DaemonProcess,
) -> None:
    client = daemon.client()
    created = client.create_association(
        Name="echo", Parameters={"Word": ["once"]}, AssociationName="one-off"
    )["AssociationDescription"]
    association_id = created["AssociationId"]
    assert created["Overview"]["Status"] == "Pending" and created["Name"] == "echo"
    assert created["Parameters"] == {"Word": ["once"]}

    def succeeded() -> dict[str, Any] | None:
        shown: dict[str, Any] = client.describe_association(AssociationId=association_id)[
            "AssociationDescription"
        ]
        return shown if shown["Overview"]["Status"] == "Success" else None

    shown = wait_for(succeeded, what="the association's execution to succeed")
    assert "LastExecutionDate" in shown and "ScheduleExpression" not in shown
    executions = client.describe_automation_executions(
        Filters=[{"Key": "TagKey", "Values": [ASSOCIATION_TAG]}]
    )["AutomationExecutionMetadataList"]
    ours = [e for e in executions if e["DocumentName"] == "echo"]
    assert len(ours) == 1 and ours[0]["Outputs"]["say.Output"] == ["once\n"]

    listed = client.list_associations(
        AssociationFilterList=[{"key": "AssociationName", "value": "one-off"}]
    )["Associations"]
    assert [a["AssociationId"] for a in listed] == [association_id]
    assert listed[0]["Overview"]["Status"] == "Success"

    in_use = code(daemon.client().delete_document, Name="echo")
    assert in_use == "InvalidDocument"  # a file, not a stored document
    client.delete_association(AssociationId=association_id)
    gone = code(client.describe_association, AssociationId=association_id)
    assert gone == "AssociationDoesNotExist"


def test_create_association_refuses_what_it_cannot_run(daemon: DaemonProcess) -> None:
    client = daemon.client()
    assert code(client.create_association, Name="echo", ScheduleExpression="rate(2 seconds)") == (
        "InvalidSchedule"
    )
    assert code(client.create_association, Name="echo", ScheduleExpression="cron(0 2 * * * *)") == (
        "InvalidSchedule"
    )
    assert code(client.create_association, Name="missing-doc") == "InvalidDocument"
    assert code(client.create_association, Name="echo", Parameters={"Nope": ["x"]}) == (
        "InvalidParameters"
    )
    assert code(client.create_association, Name="echo", InstanceId="i-0123456789abcdef0") == (
        "ValidationException"
    )


def test_a_stored_document_with_an_association_cannot_be_deleted(daemon: DaemonProcess) -> None:
    client = daemon.client()
    client.create_document(Name="scheduled-doc", Content=ECHO, DocumentFormat="YAML")
    created = client.create_association(
        Name="scheduled-doc", ScheduleExpression="cron(0 2 ? * SUN *)", ApplyOnlyAtCronInterval=True
    )["AssociationDescription"]
    assert created["ApplyOnlyAtCronInterval"] is True
    assert code(client.delete_document, Name="scheduled-doc") == "AssociatedInstances"
    client.delete_association(AssociationId=created["AssociationId"])
    client.delete_document(Name="scheduled-doc")


def test_two_daemons_fire_a_fast_schedule_once_per_firing(
    daemons: Daemons, fresh_postgres_url: str, documents: Path
) -> None:
    settings = {
        "state": fresh_postgres_url,
        "documents": [str(documents)],
        "workers": 2,
        "allow_second_rates": True,
        "schedule_poll_seconds": 0.1,
    }
    first, second = daemons.start("first", **settings), daemons.start("second", **settings)
    client = first.client()
    association_id = client.create_association(Name="echo", ScheduleExpression="rate(1 second)")[
        "AssociationDescription"
    ]["AssociationId"]

    def fired() -> list[dict[str, Any]]:
        return [
            e
            for daemon in (first, second)
            for e in daemon.events("schedule_fired")
            if e["association_id"] == association_id
        ]

    wait_for(lambda: len(fired()) >= 6, timeout=30, what="six firings")
    client.delete_association(AssociationId=association_id)
    events = fired()
    times = [e["scheduled_time"] for e in events]
    assert len(times) == len(set(times))  # no firing recorded twice
    found = client.describe_automation_executions(
        Filters=[{"Key": "TagKey", "Values": [ASSOCIATION_TAG]}]
    )["AutomationExecutionMetadataList"]
    assert sorted(e["AutomationExecutionId"] for e in found) == sorted(
        e["execution_id"] for e in events
    )
    for execution_id in [e["execution_id"] for e in events][:3]:
        execution, _steps = stored(fresh_postgres_url, execution_id)
        assert execution.document_name == "echo"
