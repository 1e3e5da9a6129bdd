"""aws:runCommand on SSM through commands that run for a while, fail, print more than the
API keeps, or are cancelled: moto_server behind the scripted front of tests/ssm_front.py
(moto alone ends every command at once with exit code 0)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import yaml

from runbook_engine import Engine, ExecutionView
from runbook_engine.status import Status
from tests.aws_support import client, new_instance, settings
from tests.services.moto import MotoServer
from tests.ssm_front import Node, RunCommandFront, Script, running_front

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def front(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunCommandFront]:
    with running_front(aws_env.url) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", server.url)
        yield server


def runbook(tmp_path: Path, steps: list[dict[str, Any]]) -> str:
    path = tmp_path / "ssm.yaml"
    path.write_text(yaml.safe_dump({"schemaVersion": "0.3", "mainSteps": steps}))
    return str(path)


def step_(comment: str, instance_ids: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "DocumentName": "AWS-RunShellScript",
        "Comment": comment,
        "Parameters": {"commands": ["./build.sh"]},
    }
    if instance_ids is not None:
        inputs["InstanceIds"] = instance_ids
    inputs.update(extra.pop("inputs", {}))
    return {"name": "rc", "action": "aws:runCommand", "inputs": inputs, **extra}


def execute(document: str, tmp_path: Path, parameters: Any = None) -> ExecutionView:
    async def main() -> ExecutionView:
        async with Engine(f"sqlite:///{tmp_path / 'state.db'}", settings=settings()) as engine:
            return await engine.run(document, parameters)

    return anyio.run(main)


def test_a_running_command_is_polled_until_it_ends_and_its_output_kept(
    front: RunCommandFront, tmp_path: Path
) -> None:
    instance_id = new_instance()
    front.scripts["slow"] = Script(polls=3, nodes={instance_id: Node(stdout="built\n")})
    view = execute(runbook(tmp_path, [step_("slow", [instance_id])]), tmp_path)
    step = view.step("rc")
    assert step.status == Status.SUCCESS, step.failure_message
    command_id = step.outputs["CommandId"]
    assert front.polls(command_id) == 4  # three answers InProgress, then Success
    assert step.outputs["Output"] == "built\n"
    assert step.outputs["ResponseCode"] == 0
    assert not front.cancelled(command_id)


def test_a_poll_that_fails_for_a_passing_reason_is_retried(
    front: RunCommandFront, tmp_path: Path
) -> None:
    instance_id = new_instance()
    errors = ((500, "InternalServerError"), (503, "ServiceUnavailable"))
    front.scripts["flaky"] = Script(polls=1, poll_errors=errors)
    view = execute(runbook(tmp_path, [step_("flaky", [instance_id])]), tmp_path)
    step = view.step("rc")
    assert step.status == Status.SUCCESS, step.failure_message
    assert front.commands[step.outputs["CommandId"]].errors == 2
    assert front.polls(step.outputs["CommandId"]) == 2


def test_a_poll_refused_for_lack_of_permission_fails_the_step(
    front: RunCommandFront, tmp_path: Path
) -> None:
    instance_id = new_instance()
    front.scripts["denied"] = Script(poll_errors=((400, "AccessDeniedException"),))
    view = execute(runbook(tmp_path, [step_("denied", [instance_id])]), tmp_path)
    step = view.step("rc")
    assert step.status == Status.FAILED
    assert step.failure_type == "Permission"
    assert f"{instance_id} not in the inventory" in (step.failure_message or "")
    assert "ssm.ListCommands failed: AccessDeniedException" in (step.failure_message or "")


def test_send_command_is_signed_with_the_runbooks_assume_role(
    front: RunCommandFront, tmp_path: Path
) -> None:
    instance_id = new_instance()
    role = "arn:aws:iam::123456789012:role/run-command-operator"
    document = tmp_path / "role.yaml"
    document.write_text(
        yaml.safe_dump(
            {"schemaVersion": "0.3", "assumeRole": role,
             "mainSteps": [step_("as-role", [instance_id])]}
        )
    )  # fmt: skip
    front.scripts["as-role"] = Script()
    view = execute(str(document), tmp_path)
    assert view.step("rc").status == Status.SUCCESS, view.step("rc").failure_message
    (key,) = front.access_keys
    assert key.startswith("ASIA") and key != "testing"  # STS credentials, not the caller's


def test_a_failed_command_fails_the_step_with_the_outputs_ssm_gives(
    front: RunCommandFront, tmp_path: Path
) -> None:
    instance_id = new_instance()
    stdout = "".join(f"{i:099d}\n" for i in range(300))  # 30,000 characters
    node = Node("Failed", 2, stdout, "make: *** [all] Error 2\n")
    front.scripts["fails"] = Script(status="Failed", nodes={instance_id: node})
    view = execute(runbook(tmp_path, [step_("fails", [instance_id])]), tmp_path)
    step = view.step("rc")
    assert step.status == Status.FAILED
    assert step.outputs["Status"] == "Failed"
    assert step.outputs["ResponseCode"] == 2
    output = step.outputs["Output"]
    assert len(output) <= 2500 and output.startswith(stdout[:1000])
    assert "make: *** [all] Error 2" in output  # stderr kept after the stdout cut
    message = step.failure_message or ""
    assert f"command {step.outputs['CommandId']} ended Failed" in message
    assert f"{instance_id}: exit code 2: make: *** [all] Error 2" in message
    (record,) = step.response["CommandInvocations"]
    assert len(record["StandardOutputContent"]) == 24_000  # GetCommandInvocation's limit


def test_a_step_timeout_cancels_the_command(front: RunCommandFront, tmp_path: Path) -> None:
    instance_id = new_instance()
    front.scripts["forever"] = Script(polls=None)
    view = execute(runbook(tmp_path, [step_("forever", [instance_id], timeoutSeconds=2)]), tmp_path)
    step = view.step("rc")
    assert step.status == Status.TIMED_OUT
    (command_id,) = [c for c in front.commands]
    assert front.cancelled(command_id)
    assert "CancelCommand" in front.calls


def test_a_timeout_while_send_command_is_on_its_way_still_cancels_the_command(
    front: RunCommandFront, tmp_path: Path
) -> None:
    instance_id = new_instance()
    front.scripts["slow-send"] = Script(polls=None, send_delay=2.0)
    steps = [step_("slow-send", [instance_id], timeoutSeconds=1)]
    view = execute(runbook(tmp_path, steps), tmp_path)
    assert view.step("rc").status == Status.TIMED_OUT
    (command_id,) = list(front.commands)
    assert front.cancelled(command_id)
    assert front.polls(command_id) == 0  # cancelled as soon as it was known


def test_stopping_the_execution_cancels_the_command(front: RunCommandFront, tmp_path: Path) -> None:
    instance_id = new_instance()
    front.scripts["stopped"] = Script(polls=None)
    document = runbook(tmp_path, [step_("stopped", [instance_id])])

    async def main() -> ExecutionView:
        async with Engine(f"sqlite:///{tmp_path / 'state.db'}", settings=settings()) as engine:
            execution_id = await engine.start(document)
            async with anyio.create_task_group() as group:
                group.start_soon(engine.wait, execution_id)
                assert await anyio.to_thread.run_sync(front.wait_for_polls, 2)
                await engine.stop(execution_id)
            return await engine.get(execution_id)

    view = anyio.run(main)
    assert view.status == Status.CANCELLED
    assert view.step("rc").status == Status.CANCELLED
    (command_id,) = list(front.commands)
    assert front.cancelled(command_id)


def test_targets_ssm_resolves_are_read_with_list_command_invocations(
    front: RunCommandFront, tmp_path: Path
) -> None:
    """As SSM shows a command sent by Targets (no InstanceIds), the nodes come from
    ListCommandInvocations; one of two fails, so the command is Failed."""
    first, second = new_instance(), new_instance()
    ec2 = client("ec2")
    ec2.create_tags(Resources=[first, second], Tags=[{"Key": "Fleet", "Value": "blue-9"}])
    front.scripts["fleet"] = Script(
        status="Failed",
        hide_instance_ids=True,
        nodes={first: Node(stdout="ok\n"), second: Node("Failed", 1, "", "disk full\n")},
    )
    targets = [{"Key": "tag:Fleet", "Values": ["blue-9"]}]
    view = execute(runbook(tmp_path, [step_("fleet", inputs={"Targets": targets})]), tmp_path)
    step = view.step("rc")
    assert step.status == Status.FAILED
    assert "ListCommandInvocations" in front.calls and "GetCommandInvocation" not in front.calls
    records = {r["InstanceId"]: r for r in step.response["CommandInvocations"]}
    assert set(records) == {first, second}
    assert records[second]["ResponseCode"] == 1
    assert records[first]["InstanceName"] == f"name-of-{first}"
    assert step.outputs["ResponseCode"] == 1
    assert f"----- {first} -----" in step.outputs["Output"]
    assert f"{second}: exit code 1" in (step.failure_message or "")


def test_a_document_with_several_plugins_is_read_plugin_by_plugin(
    front: RunCommandFront, tmp_path: Path
) -> None:
    instance_id = new_instance()
    front.scripts["two-plugins"] = Script(
        plugins=("install", "verify"), nodes={instance_id: Node(stdout="done\n")}
    )
    view = execute(runbook(tmp_path, [step_("two-plugins", [instance_id])]), tmp_path)
    step = view.step("rc")
    assert step.status == Status.SUCCESS, step.failure_message
    (record,) = step.response["CommandInvocations"]
    assert [p["Name"] for p in record["CommandPlugins"]] == ["install", "verify"]
    assert step.outputs["Output"] == "[install] done\n[verify] done\n"


def test_the_golden_ami_build_cleans_up_when_the_configuration_fails(
    front: RunCommandFront, tmp_path: Path
) -> None:
    iam = client("iam")
    profiles = {p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]}
    if "golden-build-ssm" not in profiles:
        iam.create_instance_profile(InstanceProfileName="golden-build-ssm")
    failed = Node("Failed", 1, "", "No package nginx available.\n")
    front.scripts["golden AMI build from ami-12345678"] = Script("Failed", 1, others=failed)
    parameters = {"BaseImageId": "ami-12345678", "IamInstanceProfileName": "golden-build-ssm"}
    images_before = len(client("ec2").describe_images(Owners=["self"])["Images"])
    view = execute(str(ROOT / "runbooks" / "golden-image-ec2.yaml"), tmp_path, parameters)
    assert view.status == Status.FAILED
    assert view.step("configure").status == Status.FAILED
    assert "exit code 1: No package nginx available." in (
        view.step("configure").failure_message or ""
    )
    assert view.step("terminateAfterFailure").status == Status.SUCCESS
    (instance_id,) = view.step("launch").outputs["InstanceIds"]
    described = client("ec2").describe_instances(InstanceIds=[instance_id])
    assert described["Reservations"][0]["Instances"][0]["State"]["Name"] == "terminated"
    assert len(client("ec2").describe_images(Owners=["self"])["Images"]) == images_before
    assert "test" not in {s.step_name for s in view.steps}
