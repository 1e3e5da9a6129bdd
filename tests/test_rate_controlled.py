"""Rate-controlled automations: one child execution per target (ssm-reference §5.5).

Real children run real shell steps (locally, or over the test sshd for ``tag:`` targets);
the CLI runs as the installed console script, and the daemon is driven through boto3.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from runbook_engine.api import automation_execution
from runbook_engine.engine import Engine, ExecutionView, StartOptions
from runbook_engine.errors import ParameterError
from runbook_engine.inventory import parse_inventory
from runbook_engine.plugin import ChildRequest
from runbook_engine.records import StepRecord
from runbook_engine.settings import Settings
from runbook_engine.status import Status
from tests.services.daemon import DaemonProcess, wait_for
from tests.services.sshd import SshServer
from tests.test_cli_executions import Cli

# Values starting with "bad" fail; the step's output names the value and the host.
PER_ITEM = """\
schemaVersion: '0.3'
parameters:
  Item: {type: String}
  Greeting: {type: String, default: hello}
mainSteps:
  - name: work
    action: aws:runShellScript
    inputs:
      Commands:
        - 'case "{{ Item }}" in bad*) echo "{{ Item }} failed" >&2; exit 1;; esac'
        - 'echo "{{ Greeting }} {{ Item }}"'
"""
# Runs on the instance the target value names.
PER_INSTANCE = """\
schemaVersion: '0.3'
parameters:
  InstanceId: {type: String}
mainSteps:
  - name: work
    action: aws:runCommand
    inputs:
      DocumentName: AWS-RunShellScript
      InstanceIds: ['{{ InstanceId }}']
      Parameters: {commands: ['echo "on {{ InstanceId }}"']}
"""


@pytest.fixture
def per_item(tmp_path: Path) -> str:
    path = tmp_path / "per-item.yaml"
    path.write_text(PER_ITEM)
    return str(path)


def values(*items: str) -> list[dict[str, Any]]:
    return [{"Key": "ParameterValues", "Values": list(items)}]


def run_parent(
    tmp_path: Path,
    document: str,
    options: StartOptions,
    parameters: dict[str, Any] | None = None,
    inventory: dict[str, Any] | None = None,
) -> tuple[ExecutionView, list[ExecutionView]]:
    """Run a rate-controlled parent to its end; the parent and its children."""

    async def main() -> tuple[ExecutionView, list[ExecutionView]]:
        async with Engine(
            f"sqlite:///{tmp_path / 'state.db'}",
            settings=Settings(poll_interval=0.05, principal="tester"),
            inventory=parse_inventory(inventory or {"instances": []}),
        ) as engine:
            execution_id = await engine.start(document, parameters, options=options)
            parent = await engine.wait(execution_id)
            found = await engine.store.list_executions(parent_execution_id=execution_id)
            children = [await engine.get(c.execution_id) for c in found]
            return parent, children

    return anyio.run(main)


def by_target(children: list[ExecutionView], name: str) -> dict[str, ExecutionView]:
    return {c.execution.parameters[name]: c for c in children}


def test_parameter_values_start_one_child_per_value_with_the_parents_parameters(
    tmp_path: Path, per_item: str
) -> None:
    options = StartOptions(target_parameter_name="Item", targets=values("a", "b", "c"))
    parent, children = run_parent(tmp_path, per_item, options, {"Greeting": ["hi"]})
    assert parent.status == Status.SUCCESS
    assert parent.execution.resolved_targets == ("a", "b", "c")
    assert [s.step_name for s in parent.steps] == ["a", "b", "c"]
    assert {s.action for s in parent.steps} == {"aws:executeAutomation"}
    assert [s.status for s in parent.steps] == [Status.SUCCESS] * 3
    kids = by_target(children, "Item")
    assert sorted(kids) == ["a", "b", "c"]
    for value, child in kids.items():
        assert child.status == Status.SUCCESS
        assert child.execution.parent_execution_id == parent.execution_id
        assert child.execution.parameters["Greeting"] == "hi"
        assert f"hi {value}" in child.step("work").outputs["Output"]
        assert parent.step(value).child_execution_id == child.execution_id

    shape = automation_execution(parent.execution, parent.steps)
    assert shape["TargetParameterName"] == "Item"
    assert shape["Targets"] == values("a", "b", "c")
    assert shape["ResolvedTargets"]["ParameterValues"] == ["a", "b", "c"]
    assert shape["StepExecutions"][0]["Inputs"] == {"Item": "a"}  # raw, not JSON-encoded
    assert shape["StepExecutions"][0]["Action"] == "aws:executeAutomation"


def test_max_errors_stops_launching_and_records_later_targets_cancelled(
    tmp_path: Path, per_item: str
) -> None:
    options = StartOptions(
        target_parameter_name="Item",
        targets=values("ok-1", "bad-1", "ok-2", "ok-3"),
        max_concurrency="1",
        max_errors="0",
    )
    parent, children = run_parent(tmp_path, per_item, options)
    assert parent.status == Status.FAILED
    assert "error threshold exceeded" in (parent.execution.failure_message or "")
    statuses = {s.step_name: s.status for s in parent.steps}
    assert statuses == {
        "ok-1": Status.SUCCESS,
        "bad-1": Status.FAILED,
        "ok-2": Status.CANCELLED,
        "ok-3": Status.CANCELLED,
    }
    assert sorted(by_target(children, "Item")) == ["bad-1", "ok-1"]  # nothing else started


def test_percentages_count_against_the_resolved_targets(tmp_path: Path, per_item: str) -> None:
    """25% of 4 targets: one at a time, one error tolerated; the second error stops it."""
    options = StartOptions(
        target_parameter_name="Item",
        targets=values("bad-1", "bad-2", "ok-1", "ok-2"),
        max_concurrency="25%",
        max_errors="25%",
    )
    parent, children = run_parent(tmp_path, per_item, options)
    assert parent.status == Status.FAILED
    assert [s.status for s in parent.steps] == [
        Status.FAILED,
        Status.FAILED,
        Status.CANCELLED,
        Status.CANCELLED,
    ]
    assert len(children) == 2


def test_errors_below_the_threshold_run_every_target_and_fail_the_parent(
    tmp_path: Path, per_item: str
) -> None:
    options = StartOptions(
        target_parameter_name="Item", targets=values("bad-1", "ok-1", "ok-2"), max_errors="1"
    )
    parent, children = run_parent(tmp_path, per_item, options)
    assert parent.status == Status.FAILED
    assert [s.status for s in parent.steps] == [Status.FAILED, Status.SUCCESS, Status.SUCCESS]
    assert len(children) == 3


def test_target_maps_give_each_child_its_parameter_set(tmp_path: Path, per_item: str) -> None:
    maps = [{"Item": ["x"], "Greeting": ["hey"]}, {"Item": ["y"]}]
    parent, children = run_parent(tmp_path, per_item, StartOptions(target_maps=maps))
    assert parent.status == Status.SUCCESS
    kids = by_target(children, "Item")
    assert kids["x"].execution.parameters["Greeting"] == "hey"
    assert kids["y"].execution.parameters["Greeting"] == "hello"
    assert "hey x" in kids["x"].step("work").outputs["Output"]
    assert len(parent.steps) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (StartOptions(target_parameter_name="Nope", targets=values("a")), "not a parameter"),
        (StartOptions(target_parameter_name="Item"), "must be given together"),
        (
            StartOptions(target_parameter_name="Item", targets=values("a"), max_concurrency="0"),
            "MaxConcurrency",
        ),
        (
            StartOptions(
                target_parameter_name="Item", targets=values("a"), target_maps=[{"Item": ["a"]}]
            ),
            "cannot be given together",
        ),
    ],
)
def test_invalid_rate_control_starts_nothing(
    tmp_path: Path, per_item: str, options: StartOptions, message: str
) -> None:
    async def main() -> None:
        async with Engine("memory://") as engine:
            with pytest.raises(ParameterError, match=message):
                await engine.start(per_item, options=options)
            assert await engine.store.list_executions() == []

    anyio.run(main)


def test_a_resumed_parent_reuses_the_child_started_before_the_crash(
    tmp_path: Path, per_item: str
) -> None:
    """A crash between writing a target's record and noting its child: the resumed parent
    finds that child through the parent step execution and starts no second one."""

    async def main() -> None:
        async with Engine(
            f"sqlite:///{tmp_path / 'state.db'}", settings=Settings(poll_interval=0.05)
        ) as engine:
            options = StartOptions(target_parameter_name="Item", targets=values("a", "b"))
            parent_id = await engine.start(per_item, options=options)
            parent = await engine.store.get_execution(parent_id)
            record = StepRecord(
                parent_id,
                "step-a",
                0,
                "a",
                "aws:executeAutomation",
                Status.IN_PROGRESS,
                inputs={"Item": "a"},
                target="a",
            )
            await engine.store.put_step(record)
            request = ChildRequest(per_item, None, {"Item": ["a"]})
            first_child = await engine.children.start(parent, record, request)

            view = await engine.resume(parent_id)
            assert view.status == Status.SUCCESS
            children = await engine.store.list_executions(parent_execution_id=parent_id)
            assert len(children) == 2
            assert view.step("a").child_execution_id == first_child
            assert [s.step_name for s in view.steps] == ["a", "b"]

    anyio.run(main)


def test_cancelling_the_parent_cancels_it_and_its_targets(tmp_path: Path) -> None:
    document = tmp_path / "slow.yaml"
    document.write_text(
        "schemaVersion: '0.3'\nparameters:\n  Item: {type: String}\nmainSteps:\n"
        "  - name: wait\n    action: aws:sleep\n    inputs: {Duration: PT30S}\n"
    )

    async def main() -> None:
        async with Engine(
            f"sqlite:///{tmp_path / 'state.db'}", settings=Settings(poll_interval=0.05)
        ) as engine:
            options = StartOptions(
                target_parameter_name="Item", targets=values("a", "b", "c"), max_concurrency="1"
            )
            parent_id = await engine.start(str(document), options=options)
            async with anyio.create_task_group() as group:
                group.start_soon(engine.wait, parent_id)
                while True:
                    if await engine.store.list_executions(parent_execution_id=parent_id):
                        break
                    await anyio.sleep(0.05)
                await engine.stop(parent_id)
            view = await engine.get(parent_id)
            assert view.status == Status.CANCELLED
            assert {s.status for s in view.steps} == {Status.CANCELLED}
            children = await engine.store.list_executions(parent_execution_id=parent_id)
            assert [c.status for c in children] == [Status.CANCELLED]

    anyio.run(main)


def ssh_inventory(sshd: SshServer) -> dict[str, Any]:
    roles = {"web-1": "web", "web-2": "web", "db-1": "db", "web-3": "web"}
    return {
        "instances": [
            {**sshd.inventory_entry(name), "tags": {"Role": role}} for name, role in roles.items()
        ],
        "groups": {"pair": ["db-1", "web-1"]},
    }


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ([{"Key": "tag:Role", "Values": ["web"]}], ["web-1", "web-2", "web-3"]),
        ([{"Key": "ResourceGroup", "Values": ["pair"]}], ["db-1", "web-1"]),
        ([{"Key": "AWS::EC2::Instance", "Values": ["*"]}], ["web-1", "web-2", "db-1", "web-3"]),
    ],
)
def test_inventory_targets_resolve_to_instance_ids_run_over_ssh(
    sshd: SshServer, tmp_path: Path, targets: list[dict[str, Any]], expected: list[str]
) -> None:
    document = tmp_path / "per-instance.yaml"
    document.write_text(PER_INSTANCE)
    options = StartOptions(target_parameter_name="InstanceId", targets=targets, max_concurrency="2")
    parent, children = run_parent(tmp_path, str(document), options, inventory=ssh_inventory(sshd))
    assert parent.status == Status.SUCCESS, parent.execution.failure_message
    assert list(parent.execution.resolved_targets) == expected
    kids = by_target(children, "InstanceId")
    assert sorted(kids) == sorted(expected)
    for instance_id, child in kids.items():
        response = child.step("work").response
        [invocation] = response["CommandInvocations"]
        assert invocation["InstanceId"] == instance_id
        assert f"on {instance_id}" in json.dumps(response)


def test_unknown_resource_group_fails_the_parent(sshd: SshServer, tmp_path: Path) -> None:
    document = tmp_path / "per-instance.yaml"
    document.write_text(PER_INSTANCE)
    options = StartOptions(
        target_parameter_name="InstanceId",
        targets=[{"Key": "ResourceGroup", "Values": ["nowhere"]}],
    )
    parent, children = run_parent(tmp_path, str(document), options, inventory=ssh_inventory(sshd))
    assert parent.status == Status.FAILED
    assert "nowhere" in (parent.execution.failure_message or "")
    assert children == []


# -- the command line and the daemon ---------------------------------------------------------


def test_cli_runs_targets_and_reports_exit_codes_and_json(tmp_path: Path, per_item: str) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'state.db'}", tmp_path)
    shape = cli.json(
        "run",
        per_item,
        "--target-parameter-name",
        "Item",
        "--targets",
        "Key=ParameterValues,Values=a,b",
        "--max-concurrency",
        "50%",
        "--max-errors",
        "0",
        code=0,
    )
    assert shape["AutomationExecutionStatus"] == "Success"
    assert shape["MaxConcurrency"] == "50%"
    assert shape["ResolvedTargets"]["ParameterValues"] == ["a", "b"]
    assert [s["StepName"] for s in shape["StepExecutions"]] == ["a", "b"]
    assert shape["StepExecutions"][1]["Inputs"] == {"Item": "b"}

    failed = cli.json(
        "run",
        per_item,
        "--target-parameter-name",
        "Item",
        "--targets",
        "Key=ParameterValues,Values=bad,later",
        "--max-concurrency",
        "1",
        code=1,
    )
    assert [s["StepStatus"] for s in failed["StepExecutions"]] == ["Failed", "Cancelled"]

    refused = cli("run", per_item, "--targets", "Values=a", code=2)
    assert "Key=K,Values=V1,V2" in refused.stderr


def test_daemon_starts_rate_controlled_automations_through_boto3(tmp_path: Path) -> None:
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "per-item.yaml").write_text(PER_ITEM)
    daemon = DaemonProcess(
        tmp_path,
        {
            "state": f"sqlite:///{tmp_path / 'daemon.db'}",
            "documents": [str(documents)],
            "workers": 2,
        },
    )
    try:
        client = daemon.wait_ready().client()
        started = client.start_automation_execution(
            DocumentName="per-item",
            TargetParameterName="Item",
            Targets=[{"Key": "ParameterValues", "Values": ["one", "two", "three"]}],
            MaxConcurrency="2",
            MaxErrors="1",
        )
        execution_id = started["AutomationExecutionId"]

        def ended() -> dict[str, Any] | None:
            shape: dict[str, Any] = client.get_automation_execution(
                AutomationExecutionId=execution_id
            )["AutomationExecution"]
            return shape if shape["AutomationExecutionStatus"] in ("Success", "Failed") else None

        done: dict[str, Any] = wait_for(ended, what="the parent to end")
        assert done["AutomationExecutionStatus"] == "Success", done.get("FailureMessage")
        assert done["TargetParameterName"] == "Item"
        assert done["MaxErrors"] == "1"
        assert done["ResolvedTargets"]["ParameterValues"] == ["one", "two", "three"]
        assert [s["StepName"] for s in done["StepExecutions"]] == ["one", "two", "three"]
        children = client.describe_automation_executions(
            Filters=[{"Key": "ParentExecutionId", "Values": [execution_id]}]
        )["AutomationExecutionMetadataList"]
        assert len(children) == 3
        assert {c["AutomationExecutionStatus"] for c in children} == {"Success"}
    finally:
        daemon.stop()
