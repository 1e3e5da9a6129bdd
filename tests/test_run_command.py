"""aws:runCommand (and aws:runShellScript over instances) end to end: a real engine and
store, Command documents by name, a real sshd standing in for many hosts, real containers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from runbook_engine import Engine, ExecutionView
from runbook_engine.inventory import parse_inventory
from runbook_engine.settings import Settings
from runbook_engine.status import Status
from tests.services.docker import DockerEngine
from tests.services.sshd import SshServer

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def runbook(tmp_path: Path, steps: list[dict[str, Any]], name: str = "fleet") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"schemaVersion": "0.3", "mainSteps": steps}))
    return str(path)


def run_command_step(**inputs: Any) -> dict[str, Any]:
    return {"name": "rc", "action": "aws:runCommand", "inputs": inputs}


def execute(
    tmp_path: Path, document: str, inventory: dict[str, Any], documents: tuple[str, ...] = ()
) -> ExecutionView:
    async def main() -> ExecutionView:
        async with Engine(
            f"sqlite:///{tmp_path / 'state.db'}",
            settings=Settings(poll_interval=0.05, principal="tester"),
            inventory=parse_inventory(inventory),
            documents=documents,
        ) as engine:
            return await engine.run(document)

    return anyio.run(main)


def invocations(view: ExecutionView) -> dict[str, dict[str, Any]]:
    return {i["InstanceId"]: i for i in view.step("rc").response["CommandInvocations"]}


def ssh_fleet(sshd: SshServer, names: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "instances": [{**sshd.inventory_entry(n, **extra), "tags": {"Role": "web"}} for n in names]
    }


def test_run_shell_script_document_over_ssh_hosts_with_max_concurrency(
    sshd: SshServer, tmp_path: Path
) -> None:
    """Six inventory hosts on one sshd, MaxConcurrency 2: never more than two at once,
    every host's own output recorded."""
    log = tmp_path / "spans"
    log.mkdir()
    commands = [
        f'echo "start $(date +%s.%N)" >> {log}/$AWS_SSM_INSTANCE_ID',
        "sleep 0.3",
        f'echo "end $(date +%s.%N)" >> {log}/$AWS_SSM_INSTANCE_ID',
        'echo "hello from $AWS_SSM_INSTANCE_ID"',
    ]
    names = [f"web-{n}" for n in range(6)]
    document = runbook(
        tmp_path,
        [
            run_command_step(
                DocumentName="AWS-RunShellScript",
                Targets=[{"Key": "tag:Role", "Values": ["web"]}],
                MaxConcurrency="2",
                Parameters={"commands": commands},
            )
        ],
    )
    view = execute(tmp_path, document, ssh_fleet(sshd, names))
    assert view.status == Status.SUCCESS, view.execution.failure_message
    found = invocations(view)
    assert list(found) == names
    for name in names:
        assert found[name]["Status"] == "Success" and found[name]["ResponseCode"] == 0
        assert found[name]["StandardOutputContent"] == f"hello from {name}\n"
        assert found[name]["CommandPlugins"][0]["Name"] == "runShellScript"
    events = []
    for name in names:
        for line in (log / name).read_text().split("\n"):
            if line:
                kind, moment = line.split()
                events.append((float(moment), 1 if kind == "start" else -1))
    running = peak = 0
    for _, change in sorted(events):
        running += change
        peak = max(peak, running)
    assert peak <= 2  # (equal to 2 unless the machine is too slow for the sleeps to overlap)
    outputs = view.step("rc").outputs
    assert outputs["Status"] == "Success" and outputs["ResponseCode"] == 0
    assert "----- web-0 -----\nhello from web-0" in outputs["Output"]
    assert "===== web-5: Success (exit 0) =====" in view.step("rc").logs


def test_max_errors_stops_launching_and_names_unreachable_hosts(
    sshd: SshServer, tmp_path: Path
) -> None:
    port = closed_port()
    inventory = {
        "instances": [
            {**sshd.inventory_entry("bad-1", port=port)},
            {**sshd.inventory_entry("bad-2", port=port)},
            {**sshd.inventory_entry("ok-1")},
            {**sshd.inventory_entry("ok-2")},
        ]
    }
    document = runbook(
        tmp_path,
        [
            run_command_step(
                DocumentName="AWS-RunShellScript",
                InstanceIds=["bad-1", "bad-2", "ok-1", "ok-2"],
                MaxConcurrency="1",
                MaxErrors="1",
                Parameters={"commands": ["echo ran"]},
            )
        ],
    )
    view = execute(tmp_path, document, inventory)
    assert view.status == Status.FAILED
    step = view.step("rc")
    found = invocations(view)
    assert [found[i]["Status"] for i in ("bad-1", "bad-2", "ok-1", "ok-2")] == [
        "Failed",
        "Failed",
        "Cancelled",
        "Cancelled",
    ]
    assert found["ok-1"]["StatusDetails"] == "Terminated"
    assert (
        f"cannot connect to {sshd.user}@127.0.0.1:{port}: Connection refused"
        in (found["bad-1"]["StandardErrorContent"])
    )
    message = step.failure_message or ""
    assert "aws:runCommand failed on 2 of 4 instance(s)" in message
    assert f"bad-1: failed: cannot connect to {sshd.user}@127.0.0.1:{port}" in message
    assert "MaxErrors=1 exceeded, 2 instance(s) not started" in message
    assert step.response["Status"] == "Failed" and step.outputs["Status"] == "Failed"


def test_below_the_threshold_every_host_runs_but_the_command_is_incomplete(
    sshd: SshServer, tmp_path: Path
) -> None:
    document = runbook(
        tmp_path,
        [
            run_command_step(
                DocumentName="AWS-RunShellScript",
                InstanceIds=["a", "b", "c"],
                MaxErrors="50%",
                Parameters={
                    "commands": ['[ "$AWS_SSM_INSTANCE_ID" != b ] || { echo no b >&2; exit 7; }']
                },
            )
        ],
    )
    view = execute(tmp_path, document, ssh_fleet(sshd, ["a", "b", "c"]))
    found = invocations(view)
    assert [found[i]["Status"] for i in "abc"] == ["Success", "Failed", "Success"]
    assert found["b"]["ResponseCode"] == 7 and found["b"]["StandardErrorContent"] == "no b\n"
    step = view.step("rc")
    assert step.status == Status.FAILED
    assert step.response["StatusDetails"] == "Incomplete"
    assert "b: exit code 7: no b" in (step.failure_message or "")
    assert step.outputs["ResponseCode"] == 7


ENV_VAR_DOCUMENT = {
    "schemaVersion": "2.2",
    "description": "Echo a message without pasting it into the script.",
    "parameters": {
        "Message": {"type": "String", "interpolationType": "ENV_VAR", "allowedPattern": '^[^"]*$'},
        "Name": {"type": "String", "default": "plain", "allowedPattern": "^[a-z]+$"},
    },
    "mainSteps": [
        {
            "action": "aws:runShellScript",
            "name": "linuxOnly",
            "precondition": {"StringEquals": ["platformType", "Linux"]},
            "inputs": {
                "runCommand": [
                    "echo {{ Message }}",
                    'printf "%s\\n" "$SSM_Message"',
                    "echo name={{ Name }}",
                    'cat "$0" >&2',
                ]
            },
        },
        {
            "action": "aws:runShellScript",
            "name": "windowsOnly",
            "precondition": {"StringEquals": ["platformType", "Windows"]},
            "inputs": {"runCommand": ["echo never"]},
        },
    ],
}


def test_env_var_parameters_are_not_pasted_and_preconditions_pick_plugins(
    sshd: SshServer, tmp_path: Path
) -> None:
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "Echo-Message.yaml").write_text(yaml.safe_dump(ENV_VAR_DOCUMENT))
    trap = tmp_path / "pwned"
    message = f"$(touch {trap}); `touch {trap}` it's"
    document = runbook(
        tmp_path,
        [
            run_command_step(
                DocumentName="Echo-Message",
                InstanceIds=["web-1"],
                Parameters={"Message": message, "Name": "abc"},
            )
        ],
    )
    view = execute(tmp_path, document, ssh_fleet(sshd, ["web-1"]), (str(documents),))
    assert view.status == Status.SUCCESS, view.execution.failure_message
    found = invocations(view)["web-1"]
    assert found["StandardOutputContent"] == f"{message}\n{message}\nname=abc\n"
    assert not trap.exists()
    assert "echo ${SSM_Message}" in found["StandardErrorContent"]  # the script holds a reference
    assert message not in found["StandardErrorContent"]
    linux, windows = found["CommandPlugins"]
    assert (linux["Status"], windows["Status"], windows["StatusDetails"]) == (
        "Success",
        "Success",
        "Skipped",
    )


def test_allowed_pattern_refuses_the_command_before_anything_runs(
    sshd: SshServer, tmp_path: Path
) -> None:
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "Echo-Message.yaml").write_text(yaml.safe_dump(ENV_VAR_DOCUMENT))
    document = runbook(
        tmp_path,
        [
            run_command_step(
                DocumentName="Echo-Message",
                InstanceIds=["web-1"],
                Parameters={"Message": "hi", "Name": "Not-Allowed!"},
            )
        ],
    )
    view = execute(tmp_path, document, ssh_fleet(sshd, ["web-1"]), (str(documents),))
    step = view.step("rc")
    assert step.status == Status.FAILED and step.failure_stage == "InputValidation"
    assert (
        "InvalidParameters for Echo-Message: parameter 'Name': 'Not-Allowed!' does not "
        "match the pattern ^[a-z]+$" in (step.failure_message or "")
    )
    assert step.response is None  # no invocation was made


def test_unknown_instances_and_documents_fail_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    steps = [
        run_command_step(
            DocumentName="AWS-RunShellScript",
            InstanceIds=["here", "i-0ghost"],
            Parameters={"commands": [f"touch {marker}"]},
        )
    ]
    view = execute(tmp_path, runbook(tmp_path, steps), {"instances": [{"id": "here", "local": {}}]})
    assert "Instance ids not in the inventory (<inventory>): i-0ghost" in (
        view.step("rc").failure_message or ""
    )
    assert not marker.exists()
    steps = [run_command_step(DocumentName="No-Such-Document", InstanceIds=["localhost"])]
    view = execute(tmp_path, runbook(tmp_path, steps, "nodoc"), {})
    assert "InvalidDocument: Document No-Such-Document was not found" in (
        view.step("rc").failure_message or ""
    )


def test_execution_timeout_and_output_limits(tmp_path: Path) -> None:
    inventory = {"instances": [{"id": "slow", "local": {}}, {"id": "loud", "local": {}}]}
    commands = [
        'if [ "$AWS_SSM_INSTANCE_ID" = slow ]; then echo waiting; sleep 30; fi',
        "i=0; while [ $i -lt 300 ]; do printf '%0100d\\n' $i; i=$((i+1)); done",
        "i=0; while [ $i -lt 100 ]; do printf '%0100d\\n' $i >&2; i=$((i+1)); done",
    ]
    steps = [
        run_command_step(
            DocumentName="AWS-RunShellScript",
            InstanceIds=["slow", "loud"],
            MaxErrors="1",
            Parameters={"commands": commands, "executionTimeout": "2"},
        )
    ]
    view = execute(tmp_path, runbook(tmp_path, steps), inventory)
    found = invocations(view)
    assert (found["slow"]["Status"], found["slow"]["StatusDetails"]) == (
        "TimedOut",
        "Execution Timed Out",
    )
    assert found["slow"]["StandardOutputContent"] == "waiting\n"  # kept though killed
    loud = found["loud"]
    assert loud["Status"] == "Success"
    assert len(loud["StandardOutputContent"]) == 24_000  # 30,300 produced
    assert len(loud["StandardErrorContent"]) == 8_000  # 10,100 produced
    assert len(loud["CommandPlugins"][0]["Output"]) <= 2500
    logs = view.step("rc").logs
    assert logs.count("\n" + "0" * 97 + "299\n") == 1  # the full stdout is in the logs
    assert "slow: timed out" in (view.step("rc").failure_message or "")


def test_reboot_exit_code_restarts_the_container_and_runs_again(
    docker_engine: DockerEngine, container: Callable[..., str], tmp_path: Path
) -> None:
    name = container()
    started = docker_engine.client.inspect_container(name)["State"]["StartedAt"]
    commands = [
        "if [ ! -f /root/rebooted ]; then touch /root/rebooted; echo before reboot; exit 194; fi",
        "echo after reboot",
    ]
    inventory = {
        "instances": [{"id": "box-1", "docker": {"container": name, "url": docker_engine.url}}]
    }
    steps = [
        run_command_step(
            DocumentName="AWS-RunShellScript",
            InstanceIds=["box-1"],
            Parameters={"commands": commands},
        )
    ]
    view = execute(tmp_path, runbook(tmp_path, steps), inventory)
    assert view.status == Status.SUCCESS, view.execution.failure_message
    found = invocations(view)["box-1"]
    assert found["StandardOutputContent"] == "before reboot\nafter reboot\n"
    assert found["ResponseCode"] == 0
    assert docker_engine.client.inspect_container(name)["State"]["StartedAt"] != started


def test_run_shell_script_step_accepts_instance_ids(sshd: SshServer, tmp_path: Path) -> None:
    steps = [
        {
            "name": "rc",
            "action": "aws:runShellScript",
            "inputs": {
                "InstanceIds": ["web-1", "web-2"],
                "Commands": ["echo $AWS_SSM_INSTANCE_ID"],
                "WorkingDirectory": "/tmp",
                "MaxConcurrency": "1",
            },
        }
    ]
    view = execute(tmp_path, runbook(tmp_path, steps), ssh_fleet(sshd, ["web-1", "web-2"]))
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert [i["StandardOutputContent"] for i in invocations(view).values()] == [
        "web-1\n",
        "web-2\n",
    ]
    assert set(view.step("rc").outputs) == {"Status", "ResponseCode", "Output"}


# -- resume after a crash ------------------------------------------------------------------


async def resume_after_crash(state: str, inventory: Path) -> ExecutionView:
    """Free the lease the killed process still holds (30 s), then resume here."""
    async with Engine(state, settings=Settings(poll_interval=0.05), inventory=inventory) as engine:
        [execution] = await engine.list()
        assert execution.owner is not None and execution.status == Status.IN_PROGRESS
        await engine.store.release(execution.execution_id, execution.owner)
        return await engine.resume(execution.execution_id)


@pytest.mark.parametrize(
    ("kill_after", "ran_before", "interrupted"),
    [(4, "", None), (7, "ab", "c"), (8, "abc", "d")],
)
def test_resume_does_not_rerun_finished_invocations(
    tmp_path: Path, kill_after: int, ran_before: str, interrupted: str | None
) -> None:
    """A real ``runbook run`` killed (SIGKILL) after N store writes: execution, start,
    step write-ahead, instance list (4: nothing started yet), then one write per
    invocation start, which also carries the invocation finished before it (MaxConcurrency
    1): after 7, a and b have finished and c is marked started (the kill comes before its
    command runs, so it ran nowhere yet it must not run after the resume); after 8, the
    same with c finished and d marked started."""
    counts = tmp_path / "counts"
    counts.mkdir()
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump({"instances": [{"id": n, "local": {}} for n in ("a", "b", "c", "d")]})
    )
    steps = [
        run_command_step(
            DocumentName="AWS-RunShellScript",
            InstanceIds=["a", "b", "c", "d"],
            MaxConcurrency="1",
            MaxErrors="4",
            Parameters={"commands": [f"echo x >> {counts}/$AWS_SSM_INSTANCE_ID"]},
        )
    ]
    document = runbook(tmp_path, steps)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    env = {**os.environ, "RUNBOOK_KILL_AFTER_WRITES": str(kill_after)}
    crashed = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "run",
            document,
            "--inventory",
            str(inventory),
            "--state",
            state,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert crashed.returncode == -9, crashed.stderr
    before = {p.name for p in counts.iterdir()}
    assert before == set(ran_before)
    view = anyio.run(resume_after_crash, state, inventory)
    ran = {p.name: p.read_text().count("x") for p in counts.iterdir()}
    found = invocations(view)
    if interrupted is None:
        assert view.status == Status.SUCCESS, view.execution.failure_message
        assert ran == {"a": 1, "b": 1, "c": 1, "d": 1}
    else:
        assert view.status == Status.FAILED
        # the interrupted one had started: it is not run (again); the others run once
        assert ran == {i: 1 for i in "abcd" if i != interrupted or i in ran_before}
        assert found[interrupted]["Status"] == "Failed"
        message = f"{interrupted}: failed: interrupted: the engine stopped while the command ran"
        assert message in (view.step("rc").failure_message or "")
    finished = [i for i in "abcd" if i != interrupted]
    assert [found[i]["Status"] for i in finished] == ["Success"] * len(finished)
    assert len({found[i]["CommandId"] for i in "abcd"}) == 1  # one command, resumed


def test_powershell_document_says_when_pwsh_is_missing(tmp_path: Path) -> None:
    steps = [
        run_command_step(
            DocumentName="AWS-RunPowerShellScript",
            InstanceIds=["here"],
            Parameters={"commands": ["Write-Output hi"]},
        )
    ]
    view = execute(tmp_path, runbook(tmp_path, steps), {"instances": [{"id": "here", "local": {}}]})
    found = invocations(view)["here"]
    if shutil.which("pwsh"):  # a machine with PowerShell runs it
        assert found["StandardOutputContent"] == "hi\n"
    else:
        assert found["Status"] == "Failed" and found["ResponseCode"] == 127
        assert "PowerShell (pwsh) is not installed on here" in found["StandardErrorContent"]


@pytest.mark.parametrize("kill_after", [6, 8])
def test_a_concurrent_fan_out_killed_mid_way_runs_nothing_twice(
    tmp_path: Path, kill_after: int
) -> None:
    """Three at a time (starts of a wave share a write): whatever the kill interrupts,
    after the resume no command has run twice, every ``Success`` ran exactly once, and an
    invocation that never ran is either run now or recorded interrupted."""
    counts = tmp_path / "counts"
    counts.mkdir()
    names = [f"n{i}" for i in range(6)]
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"instances": [{"id": n, "local": {}} for n in names]}))
    steps = [
        run_command_step(
            DocumentName="AWS-RunShellScript",
            InstanceIds=names,
            MaxConcurrency="3",
            MaxErrors="6",
            Parameters={"commands": [f"echo x >> {counts}/$AWS_SSM_INSTANCE_ID", "sleep 0.2"]},
        )
    ]
    state = f"sqlite:///{tmp_path / 'state.db'}"
    crashed = subprocess.run(
        [
            *(sys.executable, "-m", "runbook_engine", "run", runbook(tmp_path, steps)),
            *("--inventory", str(inventory), "--state", state),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "RUNBOOK_KILL_AFTER_WRITES": str(kill_after)},
        cwd=ROOT,
        timeout=60,
    )
    assert crashed.returncode == -9, crashed.stderr
    assert len(list(counts.iterdir())) < len(names)  # the kill came mid-way
    view = anyio.run(resume_after_crash, state, inventory)
    ran = {n: (counts / n).read_text().count("x") if (counts / n).exists() else 0 for n in names}
    found = invocations(view)
    assert max(ran.values()) == 1, ran
    interrupted = {n for n in names if found[n]["Status"] != "Success"}
    assert interrupted  # the kill always leaves a started invocation unfinished
    assert all(ran[n] == 1 for n in names if n not in interrupted)
    message = view.step("rc").failure_message or ""
    assert all(f"{n}: failed: interrupted" in message for n in interrupted)
    assert view.status == Status.FAILED
