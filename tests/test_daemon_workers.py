"""Several ``runbook serve`` processes on one PostgreSQL database share the executions.

Side effects go to a file (one line per step that ran), so a step run twice shows.
A daemon killed with SIGKILL keeps its lease until it expires (``lease_seconds: 2``
here); one stopped with SIGTERM releases it at once (the lease of 60 seconds would
otherwise outlast the test's wait).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.store import open_store
from runbook_engine.store.schema import SCHEMA_VERSION
from tests.services.daemon import ALICE, DaemonProcess, Daemons, wait_for

SIDE_EFFECTS = """\
schemaVersion: '0.3'
parameters:
  Log: {type: String}
  Pause: {type: String, default: PT3S}
  Label: {type: String, default: x}
mainSteps:
  - name: before
    action: aws:runShellScript
    inputs: {Commands: ['echo before {{ Label }} >> {{ Log }}']}
  - name: pause
    action: aws:sleep
    inputs: {Duration: '{{ Pause }}'}
  - name: after
    action: aws:runShellScript
    inputs: {Commands: ['echo after {{ Label }} >> {{ Log }}']}
"""
GATED = """\
schemaVersion: '0.3'
parameters:
  Log: {type: String}
  Label: {type: String}
mainSteps:
  - name: gate
    action: aws:approve
    inputs: {Approvers: [alice]}
  - name: after
    action: aws:runShellScript
    inputs: {Commands: ['echo after {{ Label }} >> {{ Log }}']}
"""


@pytest.fixture
def documents(tmp_path: Path) -> Path:
    directory = tmp_path / "documents"
    directory.mkdir()
    (directory / "side-effects.yaml").write_text(SIDE_EFFECTS)
    (directory / "gated.yaml").write_text(GATED)
    return directory


def stored(url: str, execution_id: str) -> tuple[ExecutionRecord, list[StepRecord]]:
    async def read() -> tuple[ExecutionRecord, list[StepRecord]]:
        store = open_store(url)
        try:
            return await store.get_execution(execution_id), await store.get_steps(execution_id)
        finally:
            await store.close()

    return anyio.run(read)


def start(daemon: DaemonProcess, log: Path, pause: str, label: str = "x") -> str:
    result = daemon.client(ALICE).start_automation_execution(
        DocumentName="side-effects",
        Parameters={"Log": [str(log)], "Pause": [pause], "Label": [label]},
    )
    return str(result["AutomationExecutionId"])


def finished(daemon: DaemonProcess, execution_id: str, timeout: float = 30.0) -> dict[str, Any]:
    client = daemon.client(ALICE)

    def done() -> dict[str, Any] | None:
        shape: dict[str, Any] = client.get_automation_execution(AutomationExecutionId=execution_id)[
            "AutomationExecution"
        ]
        terminal = shape["AutomationExecutionStatus"] in ("Success", "Failed", "Cancelled")
        return shape if terminal else None

    result: dict[str, Any] = wait_for(done, timeout, f"{execution_id} to finish")
    return result


def pausing_owner(url: str, execution_id: str) -> str:
    """Wait until the execution sleeps in its middle step; who holds it then."""

    def sleeping() -> str | None:
        execution, steps = stored(url, execution_id)
        names = [(s.step_name, s.status.value) for s in steps]
        if names == [("before", "Success"), ("pause", "InProgress")] and execution.owner:
            return execution.owner
        return None

    owner: str = wait_for(sleeping, 30, "the execution to reach its pause")
    return owner


def pid_of(owner: str) -> int:
    return int(owner.split(":")[1])  # Engine.owner is host:pid:random


def test_two_daemons_share_the_executions(
    daemons: Daemons, fresh_postgres_url: str, documents: Path, tmp_path: Path
) -> None:
    settings = {"state": fresh_postgres_url, "documents": [str(documents)], "workers": 1}
    first, second = daemons.start("first", **settings), daemons.start("second", **settings)
    log = tmp_path / "shared.log"
    ids = [start(first, log, "PT1S", label=str(n)) for n in range(4)]
    for execution_id in ids:
        assert finished(second, execution_id)["AutomationExecutionStatus"] == "Success"
    claimed = {
        daemon.name: [e["execution_id"] for e in daemon.events("claimed")]
        for daemon in (first, second)
    }
    assert claimed["first"] and claimed["second"], claimed
    assert sorted(claimed["first"] + claimed["second"]) == sorted(ids)
    lines = log.read_text().splitlines()
    assert sorted(lines) == sorted(f"{when} {n}" for n in range(4) for when in ("before", "after"))


def test_a_killed_daemons_execution_is_finished_by_another_without_repeating_steps(
    daemons: Daemons, fresh_postgres_url: str, documents: Path, tmp_path: Path
) -> None:
    settings = {
        "state": fresh_postgres_url,
        "documents": [str(documents)],
        "workers": 2,
        "lease_seconds": 2,
    }
    first, second = daemons.start("first", **settings), daemons.start("second", **settings)
    log = tmp_path / "killed.log"
    execution_id = start(first, log, "PT4S")
    owner = pausing_owner(fresh_postgres_url, execution_id)
    victim, survivor = (first, second) if pid_of(owner) == first.pid else (second, first)
    assert pid_of(owner) == victim.pid
    victim.kill()

    result = finished(survivor, execution_id)
    assert result["AutomationExecutionStatus"] == "Success"
    assert log.read_text().splitlines() == ["before x", "after x"]
    execution, steps = stored(fresh_postgres_url, execution_id)
    assert [s.step_name for s in steps] == ["before", "pause", "after"]
    assert execution.owner is None  # released by the survivor
    takeovers = [e for e in survivor.events("claimed") if e["execution_id"] == execution_id]
    assert takeovers and takeovers[0]["taken_over"] is True
    _, metrics = survivor.get("/metrics")
    assert "runbook_lease_takeovers_total 1.0" in metrics


def test_sigterm_releases_the_leases_so_another_daemon_goes_on_at_once(
    daemons: Daemons, fresh_postgres_url: str, documents: Path, tmp_path: Path
) -> None:
    settings = {
        "state": fresh_postgres_url,
        "documents": [str(documents)],
        "lease_seconds": 60,
        "shutdown_grace_seconds": 0.5,
    }
    first, second = daemons.start("first", **settings), daemons.start("second", **settings)
    log = tmp_path / "terminated.log"
    execution_id = start(first, log, "PT3S")
    owner = pausing_owner(fresh_postgres_url, execution_id)
    leaving, staying = (first, second) if pid_of(owner) == first.pid else (second, first)
    assert leaving.terminate() == 0
    events = [e["event"] for e in leaving.lines if "event" in e]
    assert events[-2:] == ["stopping", "stopped"], leaving.log()
    execution, _ = stored(fresh_postgres_url, execution_id)
    assert execution.owner != owner  # released (or already taken by the other daemon)

    # Well inside the 60-second lease: only a released lease lets this finish in time.
    result = finished(staying, execution_id, timeout=30)
    assert result["AutomationExecutionStatus"] == "Success"
    assert log.read_text().splitlines() == ["before x", "after x"]


def test_two_daemons_starting_together_on_an_empty_database(
    daemons: Daemons, fresh_postgres_url: str, documents: Path, tmp_path: Path
) -> None:
    settings = {"state": fresh_postgres_url, "documents": [str(documents)]}
    racing = [daemons.start(name, wait=False, **settings) for name in ("first", "second")]
    for daemon in racing:
        daemon.wait_ready()
    plain = fresh_postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        rows = conn.execute("SELECT id, version FROM runbook_schema").fetchall()
    assert rows == [(1, SCHEMA_VERSION)]
    for index, daemon in enumerate(racing):
        execution_id = start(daemon, tmp_path / f"race-{index}.log", "PT0S")
        assert finished(daemon, execution_id)["AutomationExecutionStatus"] == "Success"


def test_a_signal_drives_its_execution_once_while_another_daemon_polls_for_it(
    daemons: Daemons, fresh_postgres_url: str, documents: Path, tmp_path: Path
) -> None:
    """The daemon receiving a signal drives the execution at once (a hand-off), while the
    other daemon's poller, looking every 20 ms, claims the same due executions: each
    execution is driven by one of the two, and its step after the approval runs once."""
    settings: dict[str, Any] = {
        "state": fresh_postgres_url,
        "documents": [str(documents)],
        "workers": 2,
    }
    receiving = daemons.start("receiving", **settings)
    daemons.start("polling", **{**settings, "poll_seconds": 0.02})
    log = tmp_path / "gated.log"
    client = receiving.client(ALICE)
    ids = [
        client.start_automation_execution(
            DocumentName="gated", Parameters={"Log": [str(log)], "Label": [str(n)]}
        )["AutomationExecutionId"]
        for n in range(6)
    ]
    for execution_id in ids:
        wait_for(
            lambda i=execution_id: stored(fresh_postgres_url, i)[0].status.value == "Waiting",
            30,
            f"{execution_id} to wait for its approval",
        )
    for execution_id in ids:
        client.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Approve")
    for execution_id in ids:
        assert finished(receiving, execution_id)["AutomationExecutionStatus"] == "Success"
    assert sorted(log.read_text().splitlines()) == sorted(f"after {n}" for n in range(6))
    handed = [
        e["execution_id"] for e in receiving.events("released") if e.get("handed_off") is True
    ]
    assert handed, receiving.log()
