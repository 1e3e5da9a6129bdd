"""Tags aws:createTags gives a running container are what ``Targets: tag:Key=Value`` sees
afterwards, though Docker cannot relabel a running container (a real engine,
tests/services/docker.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import yaml

from runbook_engine import Engine, ExecutionView
from runbook_engine.fleet import Fleet
from runbook_engine.inventory import parse_inventory
from runbook_engine.settings import Settings
from runbook_engine.status import Status
from tests.services.docker import DockerEngine


def execute(
    docker_engine: DockerEngine,
    steps: list[dict[str, Any]],
    tmp_path: Path,
    inventory: dict[str, Any] | None = None,
) -> ExecutionView:
    document = tmp_path / "tagged.yaml"
    document.write_text(yaml.safe_dump({"schemaVersion": "0.3", "mainSteps": steps}))
    inventory = inventory or {"discover": {"docker": {"url": docker_engine.url}}}

    async def main() -> ExecutionView:
        async with Engine(
            f"sqlite:///{tmp_path / 'state.db'}",
            settings=Settings(poll_interval=0.05, principal="tester"),
            inventory=parse_inventory(inventory),
        ) as engine:
            return await engine.run(str(document))

    return anyio.run(main)


def test_run_command_by_tag_reaches_the_container_tagged_during_the_run(
    docker_engine: DockerEngine, tmp_path: Path
) -> None:
    """Launch two containers, tag one Role=canary, run a command on tag:Role=canary: only
    the tagged one runs it."""
    canary, other = "{{ canary.InstanceIds }}", "{{ other.InstanceIds }}"
    steps = [
        {"name": "canary", "action": "aws:runInstances",
         "inputs": {"ImageId": docker_engine.image}},
        {"name": "other", "action": "aws:runInstances",
         "inputs": {"ImageId": docker_engine.image}},
        {"name": "tag", "action": "aws:createTags",
         "inputs": {"ResourceIds": canary, "Tags": [{"Key": "Role", "Value": "canary"}]}},
        {"name": "rc", "action": "aws:runCommand",
         "inputs": {"DocumentName": "AWS-RunShellScript",
                    "Targets": [{"Key": "tag:Role", "Values": ["canary"]}],
                    "Parameters": {"commands": ['echo "canary $AWS_SSM_INSTANCE_ID"']}}},
        {"name": "terminate", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": canary, "DesiredState": "terminated"}},
        {"name": "terminateOther", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": other, "DesiredState": "terminated"}},
    ]  # fmt: skip
    view = execute(docker_engine, steps, tmp_path)
    assert view.status == Status.SUCCESS, [
        (r.step_name, r.status, r.failure_message) for r in view.steps
    ]
    [tagged] = view.step("canary").outputs["InstanceIds"]
    [untagged] = view.step("other").outputs["InstanceIds"]
    invocations = view.step("rc").response["CommandInvocations"]
    assert [i["InstanceId"] for i in invocations] == [tagged]
    assert invocations[0]["StandardOutputContent"] == f"canary {tagged}\n"
    assert view.step("rc").outputs["Status"] == "Success"
    assert untagged != tagged


def test_discovery_lays_created_tags_over_the_labels(
    docker_engine: DockerEngine, tmp_path: Path
) -> None:
    """A tag key the container's labels already have is replaced by the created tag."""
    from runbook_engine.compute_docker import DockerCompute

    compute = DockerCompute(docker_engine.url)
    [instance_id] = anyio.run(compute.run_instances, {"ImageId": docker_engine.image}, (1, 1), "t1")
    try:
        inventory = parse_inventory({"discover": {"docker": {"url": docker_engine.url}}})
        fleet = Fleet(inventory)
        before = anyio.run(fleet.resolve, None, [{"Key": "tag:Stage", "Values": ["blue"]}])
        assert before == []
        anyio.run(compute.create_tags, [instance_id], {"Stage": "blue"})
        anyio.run(compute.create_tags, [instance_id], {"runbook.client-token": "relabelled"})
        found = anyio.run(fleet.resolve, None, [{"Key": "tag:Stage", "Values": ["blue"]}])
        assert [i.id for i in found] == [instance_id]
        assert found[0].tags["runbook.client-token"] == "relabelled"
        assert found[0].tags["runbook.instance"] == instance_id
    finally:
        anyio.run(compute.change_state, [instance_id], "terminated", True)


def test_containers_the_inventory_file_lists_take_created_tags_too(
    docker_engine: DockerEngine, container: Callable[..., str], tmp_path: Path
) -> None:
    """Instances of the inventory file (no discovery label): tagged on their own engine,
    and the tag is what the next step's Targets match."""
    names = {"box-1": container(), "box-2": container()}
    inventory = {
        "instances": [
            {
                "id": i,
                "tags": {"Role": "worker"},
                "docker": {"container": n, "url": docker_engine.url},
            }
            for i, n in names.items()
        ]
    }
    steps = [
        {"name": "tag", "action": "aws:createTags",
         "inputs": {"ResourceIds": ["box-2"], "Tags": [{"Key": "Role", "Value": "canary"}]}},
        {"name": "rc", "action": "aws:runCommand",
         "inputs": {"DocumentName": "AWS-RunShellScript",
                    "Targets": [{"Key": "tag:Role", "Values": ["canary"]}],
                    "Parameters": {"commands": ['echo "canary $AWS_SSM_INSTANCE_ID"']}}},
        {"name": "workers", "action": "aws:runCommand",
         "inputs": {"DocumentName": "AWS-RunShellScript",
                    "Targets": [{"Key": "tag:Role", "Values": ["worker"]}],
                    "Parameters": {"commands": ["true"]}}},
    ]  # fmt: skip
    view = execute(docker_engine, steps, tmp_path, inventory)
    assert view.status == Status.SUCCESS, [
        (r.step_name, r.status, r.failure_message) for r in view.steps
    ]
    [found] = view.step("rc").response["CommandInvocations"]
    assert (found["InstanceId"], found["StandardOutputContent"]) == ("box-2", "canary box-2\n")
    workers = view.step("workers").response["CommandInvocations"]
    assert [i["InstanceId"] for i in workers] == ["box-1"]  # the created tag replaced Role
