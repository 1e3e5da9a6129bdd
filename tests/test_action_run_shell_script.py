"""aws:runShellScript as a step: real /bin/sh processes on this host."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from actions.run_shell_script import ACTION, SCHEMA, truncate_output
from runbook_engine.inputs import normalize_inputs
from runbook_engine.plugin import ActionError, ActionResult, ActionTimeout
from tests.action_context import FakeContext

pytestmark = pytest.mark.anyio


async def run(inputs: dict[str, object]) -> ActionResult:
    assert SCHEMA.check(inputs, static=False) == []
    result = await ACTION.run(normalize_inputs(SCHEMA, inputs), FakeContext())
    assert isinstance(result, ActionResult)
    return result


def process_alive(pid: int) -> bool:
    """Running or stopped; a zombie (killed, not yet reaped by init) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_commands_run_as_one_script_and_outputs_follow_run_command() -> None:
    result = await run({"Commands": ["GREETING=hello", "echo $GREETING world", "echo oops >&2"]})
    assert result.outputs == {
        "ResponseCode": 0,
        "Output": "hello world\n\n----------ERROR-------\noops\n",
        "Status": "Success",
    }
    assert "hello world" in result.logs and "oops" in result.logs
    assert result.logs.index("--- stdout ---") < result.logs.index("--- stderr ---")


async def test_a_failing_earlier_line_does_not_fail_the_script() -> None:
    result = await run({"Commands": ["false", "echo still here"]})
    assert result.outputs["Status"] == "Success"
    assert result.outputs["Output"] == "still here\n"


async def test_a_multi_line_string_is_one_script() -> None:
    result = await run({"Commands": "for i in 1 2 3; do\n  echo line $i\ndone"})
    assert result.outputs["Output"] == "line 1\nline 2\nline 3\n"


async def test_non_zero_exit_fails_with_code_and_stderr_tail() -> None:
    with pytest.raises(ActionError) as caught:
        await run({"Commands": ["echo partial", "echo 'disk full' >&2", "exit 3"]})
    error = caught.value
    assert not error.timed_out
    assert error.message == "command exited with code 3: disk full"
    assert error.outputs == {
        "ResponseCode": 3,
        "Output": "partial\n\n----------ERROR-------\ndisk full\n",
        "Status": "Failed",
    }
    assert error.details["stderr"] == ["disk full\n"]


async def test_working_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "here.txt").write_text("x")
    result = await run({"Commands": ["ls"], "WorkingDirectory": str(tmp_path)})
    assert result.outputs["Output"] == "here.txt\n"


async def test_missing_working_directory_is_a_clear_failure(tmp_path: Path) -> None:
    with pytest.raises(ActionError, match=r"WorkingDirectory .* does not exist"):
        await run({"Commands": ["pwd"], "WorkingDirectory": str(tmp_path / "nope")})


async def test_full_output_is_kept_in_logs_while_output_is_truncated() -> None:
    loop = "i=0; while [ $i -lt 1000 ]; do echo line$i; i=$((i+1)); done"
    result = await run({"Commands": [loop]})
    output = result.outputs["Output"]
    assert len(output) == 2500
    assert output.endswith("\n---Output truncated---")
    assert output.startswith("line0\nline1\n")
    assert "line999" in result.logs


async def test_timeout_seconds_kills_the_script(tmp_path: Path) -> None:
    marker = tmp_path / "after-sleep"
    with pytest.raises(ActionTimeout) as caught:
        await run({"Commands": ["echo started", f"sleep 30; touch {marker}"], "TimeoutSeconds": 1})
    assert caught.value.outputs["Status"] == "TimedOut"
    assert caught.value.outputs["ResponseCode"] == -1
    assert caught.value.outputs["Output"] == "started\n"
    assert "TimeoutSeconds=1" in caught.value.message
    assert not marker.exists()


async def test_cancellation_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file, marker = tmp_path / "pid", tmp_path / "after-sleep"
    commands = [f"sleep 30 & echo $! > {pid_file}", "wait", f"touch {marker}"]
    with anyio.move_on_after(0.5):
        await ACTION.run({"Commands": commands}, FakeContext())
        pytest.fail("the script should still be sleeping")
    sleeper = int(pid_file.read_text())
    assert not process_alive(sleeper)
    assert not marker.exists()


async def test_remote_instances_are_refused_honestly() -> None:
    with pytest.raises(ActionError, match="remote targets arrive with the fleet support"):
        await run({"Commands": ["true"], "InstanceIds": ["i-0123456789abcdef0"]})
    with pytest.raises(ActionError, match=r"asked for tag:Role"):
        await run({"Commands": ["true"], "Targets": [{"Key": "tag:Role", "Values": ["web"]}]})


async def test_localhost_instance_ids_run_here() -> None:
    result = await run({"Commands": ["echo here"], "InstanceIds": ["localhost"]})
    assert result.outputs["Output"] == "here\n"


def test_static_checks() -> None:
    assert SCHEMA.check({"Commands": []}, static=True)[0].message == (
        "Commands needs at least one command"
    )
    assert SCHEMA.check({}, static=True)[0].message == "missing required input 'Commands'"
    assert SCHEMA.check({"Commands": "{{ cmds }}", "TimeoutSeconds": "{{ t }}"}, static=True) == []


@pytest.mark.parametrize(
    ("stdout", "stderr", "expected"),
    [
        ("", "", ""),
        ("out", "", "out"),
        ("", "err", "\n----------ERROR-------\nerr"),
        ("o" * 100, "", "o" * 77 + "\n---Output truncated---"),
        ("", "e" * 100, "\n----------ERROR-------\n" + "e" * 53 + "\n---Error truncated----"),
        (
            "o" * 100,
            "e" * 100,
            "o" * 15 + "\n---Output truncated---\n----------ERROR-------\n"
            + "e" * 15 + "\n---Error truncated----",
        ),
    ],
)
def test_truncation_matches_the_agent(stdout: str, stderr: str, expected: str) -> None:
    assert truncate_output(stdout, stderr, capacity=100) == expected

