"""The EC2-shaped actions on Docker: containers as instances, local images as AMIs, with
a real engine (tests/services/docker.py) and the bundled golden-image runbook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from runbook_engine import Engine, ExecutionView
from runbook_engine.compute import image_backend
from runbook_engine.compute_docker import DockerCompute
from runbook_engine.inventory import parse_inventory
from runbook_engine.plugin import ActionError
from runbook_engine.settings import Settings
from runbook_engine.status import Status
from tests.services.docker import DockerEngine

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = str(ROOT / "runbooks" / "golden-image.yaml")


def execute(
    docker_engine: DockerEngine, document: str, parameters: dict[str, Any], tmp_path: Path
) -> ExecutionView:
    inventory = {"discover": {"docker": {"url": docker_engine.url}}}

    async def main() -> ExecutionView:
        async with Engine(
            f"sqlite:///{tmp_path / 'state.db'}",
            settings=Settings(poll_interval=0.05, principal="tester"),
            inventory=parse_inventory(inventory),
        ) as engine:
            return await engine.run(document, parameters)

    return anyio.run(main)


def runbook(tmp_path: Path, steps: list[dict[str, Any]]) -> str:
    path = tmp_path / "compute.yaml"
    path.write_text(yaml.safe_dump({"schemaVersion": "0.3", "mainSteps": steps}))
    return str(path)


def containers_named(docker_engine: DockerEngine, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = docker_engine.client.containers(all=True, filters={"name": name})
    return found


def test_golden_image_runbook_end_to_end(docker_engine: DockerEngine, tmp_path: Path) -> None:
    """Launch a container, configure and test it over exec, commit it, remove it: the new
    image holds the configuration and the temporary container is gone."""
    view = execute(
        docker_engine,
        GOLDEN,
        {"BaseImageId": docker_engine.image, "ImageName": "golden/app"},
        tmp_path,
    )
    assert view.status == Status.SUCCESS, view.failure_message
    instance_id = view.step("launch").outputs["InstanceIds"][0]
    image_id = view.step("createImage").outputs["ImageId"]
    assert view.step("createImage").outputs["ImageState"] == "available"
    assert view.step("terminate").outputs["InstanceStates"] == ["terminated"]
    assert containers_named(docker_engine, instance_id) == []
    client = docker_engine.client
    probe = client.create_container(image_id, ["cat", "/opt/app/app.conf"])
    try:
        client.start(probe["Id"])
        assert client.wait(probe["Id"])["StatusCode"] == 0
        assert client.logs(probe["Id"]).decode().strip() == "version=1"
    finally:
        client.remove_container(probe["Id"], force=True)
    assert any("golden/app:latest" in tag for tag in client.inspect_image(image_id)["RepoTags"])
    client.remove_image(image_id, force=True)


def test_failed_test_terminates_the_instance_and_fails(
    docker_engine: DockerEngine, tmp_path: Path
) -> None:
    view = execute(
        docker_engine,
        GOLDEN,
        {"BaseImageId": docker_engine.image, "TestCommands": ["test -e /missing"]},
        tmp_path,
    )
    assert view.status == Status.FAILED
    assert "createImage" not in {record.step_name for record in view.steps}
    assert view.step("test").status == Status.FAILED
    instance_id = view.step("launch").outputs["InstanceIds"][0]
    assert view.step("terminateAfterFailure").outputs["InstanceStates"] == ["terminated"]
    assert containers_named(docker_engine, instance_id) == []


def test_stop_start_check_state_only_tags_and_delete_image(
    docker_engine: DockerEngine, tmp_path: Path
) -> None:
    ids = "{{ launch.InstanceIds }}"
    steps = [
        {"name": "launch", "action": "aws:runInstances",
         "inputs": {"ImageId": docker_engine.image, "MinInstanceCount": 2,
                    "MaxInstanceCount": 2}},
        {"name": "stop", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": ids, "DesiredState": "stopped", "Force": True}},
        {"name": "checkStopped", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": ids, "DesiredState": "stopped", "CheckStateOnly": True}},
        {"name": "start", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": ids, "DesiredState": "running"}},
        {"name": "tag", "action": "aws:createTags",
         "inputs": {"ResourceIds": ids, "Tags": [{"Key": "Role", "Value": "web"}]}},
        {"name": "tagAgain", "action": "aws:createTags",
         "inputs": {"ResourceIds": ids, "Tags": [{"Key": "Team", "Value": "ops"}]}},
        {"name": "single", "action": "aws:runInstances",
         "inputs": {"ImageId": docker_engine.image}},
        {"name": "image", "action": "aws:createImage",
         "inputs": {"InstanceId": "{{ single.InstanceIds }}", "ImageName": "scratch"}},
        {"name": "deleteImage", "action": "aws:deleteImage",
         "inputs": {"ImageId": "{{ image.ImageId }}"}},
        {"name": "deleteAgain", "action": "aws:deleteImage",
         "inputs": {"ImageId": "{{ image.ImageId }}"}},
        {"name": "terminate", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": ids, "DesiredState": "terminated"}},
        {"name": "terminateSingle", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": "{{ single.InstanceIds }}", "DesiredState": "terminated"}},
    ]  # fmt: skip
    view = execute(docker_engine, runbook(tmp_path, steps), {}, tmp_path)
    launched = view.step("launch").outputs["InstanceIds"]
    assert len(launched) == 2
    assert view.step("stop").outputs["InstanceStates"] == ["stopped", "stopped"]
    assert view.status == Status.SUCCESS, [
        (r.step_name, r.status, r.failure_message) for r in view.steps
    ]
    assert view.step("checkStopped").outputs["InstanceStates"] == ["stopped", "stopped"]
    assert view.step("start").outputs["InstanceStates"] == ["running", "running"]
    image_id = view.step("image").outputs["ImageId"]
    assert anyio.run(DockerCompute(docker_engine.url).image_state, image_id) == "deregistered"
    compute = DockerCompute(docker_engine.url)
    tags = anyio.run(compute.tags, launched[0])
    assert tags == {"Role": "web", "Team": "ops"}
    assert view.step("terminate").outputs["InstanceStates"] == ["terminated", "terminated"]
    for instance_id in launched:
        assert containers_named(docker_engine, instance_id) == []


def test_check_state_only_waits_without_changing(
    docker_engine: DockerEngine, tmp_path: Path
) -> None:
    """CheckStateOnly for 'stopped' on a running container waits (here: until the step
    times out) and does not stop it."""
    steps = [
        {"name": "launch", "action": "aws:runInstances",
         "inputs": {"ImageId": docker_engine.image}},
        {"name": "wait", "action": "aws:changeInstanceState", "timeoutSeconds": 1,
         "inputs": {"InstanceIds": "{{ launch.InstanceIds }}", "DesiredState": "stopped",
                    "CheckStateOnly": True}},
    ]  # fmt: skip
    view = execute(docker_engine, runbook(tmp_path, steps), {}, tmp_path)
    assert view.step("wait").status == Status.TIMED_OUT
    instance_id = view.step("launch").outputs["InstanceIds"][0]
    assert containers_named(docker_engine, instance_id)[0]["State"] == "running"
    docker_engine.remove(instance_id)


def test_resume_does_not_start_a_second_container(docker_engine: DockerEngine) -> None:
    """The same client token again (a step run a second time) returns the first launch."""
    compute = DockerCompute(docker_engine.url)
    inputs = {"ImageId": docker_engine.image}
    first = anyio.run(compute.run_instances, inputs, (1, 1), "rb-token-resume")
    again = anyio.run(compute.run_instances, inputs, (1, 1), "rb-token-resume")
    assert first == again
    assert (
        len(
            docker_engine.client.containers(
                filters={"label": "runbook.client-token=rb-token-resume"}
            )
        )
        == 1
    )
    docker_engine.remove(first[0])


@pytest.mark.parametrize(
    ("image", "backend"),
    [
        ("ami-0123456789abcdef0", ("ec2", "ami-0123456789abcdef0")),
        ("busybox:latest", ("docker", "busybox:latest")),
        ("docker:ami-0123456789abcdef0", ("docker", "ami-0123456789abcdef0")),
        ("sha256:abc", ("docker", "sha256:abc")),
    ],
)
def test_image_ids_name_one_backend(image: str, backend: tuple[str, str]) -> None:
    assert image_backend(image) == backend


def test_ami_like_name_that_is_no_ami_id_is_an_error() -> None:
    with pytest.raises(ActionError, match="docker:ami-web"):
        image_backend("ami-web")


def test_unknown_instance_id_is_a_clear_error(docker_engine: DockerEngine, tmp_path: Path) -> None:
    steps = [
        {"name": "stop", "action": "aws:changeInstanceState",
         "inputs": {"InstanceIds": ["web-1"], "DesiredState": "stopped"}},
    ]  # fmt: skip
    view = execute(docker_engine, runbook(tmp_path, steps), {}, tmp_path)
    assert view.status == Status.FAILED
    assert "names no compute backend" in (view.step("stop").failure_message or "")


def test_ec2_form_id_listed_as_a_container_is_ambiguous() -> None:
    from runbook_engine.compute import instance_backend
    from runbook_engine.fleet import Fleet
    from tests.action_context import FakeContext

    inventory = parse_inventory(
        {
            "instances": [
                {"id": "i-0123456789abcdef0", "docker": {"container": "box"}},
                {"id": "i-0fedcba987654321f", "local": {}},
                {"id": "web-box", "docker": {"container": "box2"}},
            ]
        }
    )
    ctx = FakeContext(targets=Fleet(inventory))
    with pytest.raises(ActionError, match="ambiguous"):
        anyio.run(instance_backend, ctx, ["i-0123456789abcdef0"])
    # listed with local access: the EC2 instance reached that way
    assert anyio.run(instance_backend, ctx, ["i-0fedcba987654321f"]) == "ec2"
    with pytest.raises(ActionError, match="mix EC2 instances and Docker"):
        anyio.run(instance_backend, ctx, ["i-0fedcba987654321f", "web-box"])
