"""A ``runbook run`` whose aws:runCommand goes to SSM, killed (SIGKILL) after every store
write in turn and resumed with ``runbook resume``: never a second SendCommand.

Each kill point gets its own command comment, so the emulator's commands of one point are
told apart (the emulator lists every instance of the region as a node of every command).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from actions._ssm_route import STATE_KEY
from runbook_engine.status import Status
from runbook_engine.store import open_store
from tests.aws_support import client, new_instance
from tests.runbook_processes import Workspace, parameters

pytestmark = pytest.mark.usefixtures("aws_env")
MAX_KILL_POINTS = 12

RUNBOOK = {
    "schemaVersion": "0.3",
    "parameters": {"Instance": {"type": "String"}, "Comment": {"type": "String"}},
    "mainSteps": [
        {
            "name": "rc",
            "action": "aws:runCommand",
            "inputs": {
                "DocumentName": "AWS-RunShellScript",
                "InstanceIds": ["{{ Instance }}"],
                "Comment": "{{ Comment }}",
                "Parameters": {"commands": ["echo configured"]},
            },
        }
    ],
}


def sent_with(comment: str) -> int:
    return sum(1 for c in client("ssm").list_commands()["Commands"] if c["Comment"] == comment)


def step_state(workspace: Workspace) -> dict[str, Any] | None:
    """The step's saved state; None when the run died before it recorded the step."""

    async def read() -> dict[str, Any] | None:
        store = open_store(workspace.state)
        try:
            (execution,) = await store.list_executions(limit=10)
            steps = await store.get_steps(execution.execution_id)
            return dict(steps[0].state) if steps else None
        finally:
            await store.close()

    return anyio.run(read)


def test_a_killed_and_resumed_step_sends_at_most_one_command(tmp_path: Path) -> None:
    document = tmp_path / "rc.yaml"
    document.write_text(yaml.safe_dump(RUNBOOK))
    instance_id = new_instance()
    seen: set[str] = set()
    for kill_after in range(1, MAX_KILL_POINTS + 1):  # until the step has sent its command
        workspace = Workspace(tmp_path / f"kill-{kill_after}")
        comment = f"crash-{kill_after}-{uuid.uuid4().hex[:8]}"
        args = parameters({"Instance": instance_id, "Comment": comment})
        first = workspace.cli("run", str(document), *args, kill_after=kill_after)
        if not first.killed:
            assert first.returncode == 0, first.stderr
            assert sent_with(comment) == 1
            break
        state = step_state(workspace)
        if state is None:
            continue  # killed before the step was recorded: resume just runs it
        recorded = dict(state.get(STATE_KEY) or {})
        execution_id = workspace.snapshot().top.execution_id
        resumed = workspace.cli("resume", execution_id)
        final = workspace.snapshot()
        rc = final.step("rc")
        if recorded.get("CommandId"):
            seen.add("sent and recorded")
            assert resumed.returncode == 0, resumed.stderr
        elif recorded.get("sending"):
            seen.add("about to send")
            assert resumed.returncode == 1
            assert "interrupted while sending" in (rc.failure_message or "")
        else:  # killed as the step started: recorded interrupted, nothing sent
            seen.add("before sending")
            assert rc.status == Status.FAILED
        assert sent_with(comment) == (1 if rc.status == Status.SUCCESS else 0)
        if "sent and recorded" in seen:
            break  # later kills come after the step ended
    else:
        pytest.fail(f"the step had not sent its command after {MAX_KILL_POINTS} writes")
    assert seen == {"before sending", "about to send", "sent and recorded"}
