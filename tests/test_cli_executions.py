"""``runbook run | get | list | resume | signal | stop`` against cli-contract.md.

Every test runs the installed console script in a subprocess on a SQLite file of its
own (``--state sqlite:///<tmp>``): exit codes 0/1/2/3, the JSON shapes scripts depend
on (``AutomationExecution``, ``AutomationExecutionMetadataList``, ``{"__type": ...}``),
and the waits that span processes (``--no-wait``, ``signal``, ``resume``, ``stop``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = ROOT / "runbooks"
RUNBOOK = Path(sys.executable).parent / "runbook"  # the installed console script

AUTOMATION_EXECUTION_KEYS = {
    "AutomationExecutionId",
    "DocumentName",
    "AutomationExecutionStatus",
    "Mode",
    "ExecutionStartTime",
    "Parameters",
    "Outputs",
    "StepExecutions",
}
STEP_EXECUTION_KEYS = {"StepName", "Action", "StepStatus", "StepExecutionId", "Inputs"}

# A runbook that keeps its parameters in variables: AutomationExecution.Variables then
# shows the typed values the steps received (aws:updateVariable refuses a value whose
# type differs from the variable's, so "3" for an Integer would fail the step).
PARAMETERS_RUNBOOK = """\
schemaVersion: '0.3'
description: Keeps its parameters in variables, so that their typed values show.
parameters:
  Items:
    type: StringList
  Count:
    type: Integer
    default: 1
  Label:
    type: String
    default: none
variables:
  SeenItems:
    type: StringList
    default: []
  SeenCount:
    type: Integer
    default: 0
mainSteps:
  - name: keepItems
    action: aws:updateVariable
    inputs:
      Name: variable:SeenItems
      Value: '{{ Items }}'
  - name: keepCount
    action: aws:updateVariable
    inputs:
      Name: variable:SeenCount
      Value: '{{ Count }}'
"""


@dataclass
class Cli:
    """The ``runbook`` command bound to one state database and one scratch directory."""

    state: str
    home: Path

    def __call__(self, *args: str, code: int | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``runbook ARGS --state URL``; fail the test when the exit code is not ``code``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
        env["XDG_STATE_HOME"] = str(self.home / "xdg-state")  # never the user's own state
        done = subprocess.run(
            [str(RUNBOOK), *args, "--state", self.state],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.home,
            timeout=120,
            check=False,
        )
        if code is not None and done.returncode != code:
            pytest.fail(
                f"runbook {' '.join(args)}: exit code {done.returncode}, expected {code}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    def json(self, *args: str, code: int) -> Any:
        """Run with ``--output json``; exactly one JSON document on stdout."""
        return json.loads(self(*args, "--output", "json", code=code).stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
        env["XDG_STATE_HOME"] = str(self.home / "xdg-state")
        return subprocess.Popen(
            [str(RUNBOOK), *args, "--state", self.state],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=self.home,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    if not RUNBOOK.is_file():
        pytest.fail(f"the runbook console script is not installed next to {sys.executable}")
    return Cli(f"sqlite:///{tmp_path / 'state.db'}", tmp_path)


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, dict[str, Any]]:
    """One run of the bundled hello-world runbook, shared by the shape tests."""
    home = tmp_path_factory.mktemp("hello")
    runner = Cli(f"sqlite:///{home / 'state.db'}", home)
    shape = runner.json("run", str(RUNBOOKS / "hello-world.yaml"), "-p", "Name=Ada", code=0)
    return runner, shape


def iso(value: Any) -> datetime:
    """An ISO-8601 timestamp with its UTC offset (the CLI form, not epoch seconds)."""
    assert isinstance(value, str), value
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, value
    return moment


def assert_api_map(values: Any) -> None:
    """A map of name to a list of strings (Parameters, Outputs, Variables)."""
    assert isinstance(values, dict)
    for name, items in values.items():
        assert isinstance(name, str)
        assert isinstance(items, list) and all(isinstance(i, str) for i in items), (name, items)


def assert_automation_execution(shape: dict[str, Any]) -> None:
    """The parts of the AutomationExecution shape every run/get/resume/stop answer has."""
    assert shape.keys() >= AUTOMATION_EXECUTION_KEYS, sorted(shape)
    assert len(shape["AutomationExecutionId"]) == 36
    assert_api_map(shape["Parameters"])
    assert_api_map(shape["Outputs"])
    started = iso(shape["ExecutionStartTime"])
    terminal = shape["AutomationExecutionStatus"] in ("Success", "Failed", "TimedOut", "Cancelled")
    assert ("ExecutionEndTime" in shape) == terminal
    if terminal:
        assert iso(shape["ExecutionEndTime"]) >= started
    previous = started
    for step in shape["StepExecutions"]:
        assert step.keys() >= STEP_EXECUTION_KEYS, sorted(step)
        assert all(isinstance(v, str) for v in step["Inputs"].values())
        for text in step["Inputs"].values():
            json.loads(text)  # every input value is JSON text, as in the API
        assert_api_map(step.get("Outputs", {}))
        step_started = iso(step["ExecutionStartTime"])
        assert step_started >= previous  # in order of start
        previous = step_started


def steps_of(shape: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["StepName"], s["StepStatus"]) for s in shape["StepExecutions"]]


def wait_for_status(cli: Cli, wanted: str, timeout: float = 60.0) -> dict[str, Any]:
    """The newest execution once it has status ``wanted`` (polling ``runbook list``)."""
    deadline = time.monotonic() + timeout
    while True:
        listed = cli.json("list", "--limit", "1", code=0)["AutomationExecutionMetadataList"]
        if listed and listed[0]["AutomationExecutionStatus"] == wanted:
            return dict(listed[0])
        if time.monotonic() > deadline:
            pytest.fail(f"no execution reached {wanted} within {timeout} s: {listed}")
        time.sleep(0.2)


# -- run: the AutomationExecution shape ---------------------------------------------------


def test_run_prints_the_automation_execution(hello: tuple[Cli, dict[str, Any]]) -> None:
    _, shape = hello
    assert_automation_execution(shape)
    assert shape["AutomationExecutionStatus"] == "Success"
    assert shape["DocumentName"] == "hello-world"
    assert shape["Mode"] == "Auto"
    assert "FailureMessage" not in shape
    assert shape["Parameters"] == {"Name": ["Ada"]}  # as supplied; defaults are not echoed
    assert shape["Outputs"] == {"shout.Shout": ["HELLO, ADA!"], "shout.Length": ["11"]}
    assert steps_of(shape) == [("greet", "Success"), ("shout", "Success"), ("rest", "Success")]


def test_step_executions_carry_api_values(hello: tuple[Cli, dict[str, Any]]) -> None:
    _, shape = hello
    greet, shout, rest = shape["StepExecutions"]
    assert greet["Action"] == "aws:runShellScript"
    assert json.loads(greet["Inputs"]["Commands"]) == [
        'echo "Hello, Ada!"',
        'echo "running as $(id -un) on $(uname -s)"',
    ]
    assert greet["Outputs"]["ResponseCode"] == ["0"]  # an Integer output as a string
    assert greet["Outputs"]["Output"][0].startswith("Hello, Ada!\n")
    assert greet["ValidNextSteps"] == ["shout"]
    assert json.loads(shout["Outputs"]["Payload"][0]) == {"shout": "HELLO, ADA!", "length": 11}
    assert shout["Outputs"]["Length"] == ["11"]
    assert rest["Inputs"] == {"Duration": '"PT1S"'}  # a string input is JSON-quoted
    assert rest["ValidNextSteps"] == []
    assert len({s["StepExecutionId"] for s in shape["StepExecutions"]}) == 3


def test_get_prints_the_same_execution(hello: tuple[Cli, dict[str, Any]]) -> None:
    runner, shape = hello
    assert runner.json("get", shape["AutomationExecutionId"], code=0) == shape


def test_list_status_and_limit(hello: tuple[Cli, dict[str, Any]]) -> None:
    runner, shape = hello
    runner("run", "hello-world", "-p", "Name=Bob", code=0)  # by name: the bundled runbook
    listed = runner.json("list", "--status", "Success", "--limit", "1", code=0)
    assert list(listed) == ["AutomationExecutionMetadataList"]
    (newest,) = listed["AutomationExecutionMetadataList"]
    assert newest["AutomationExecutionId"] != shape["AutomationExecutionId"]  # newest first
    assert newest["AutomationExecutionStatus"] == "Success"
    assert newest["DocumentName"] == "hello-world"
    assert newest["Outputs"] == {"shout.Shout": ["HELLO, BOB!"], "shout.Length": ["11"]}
    iso(newest["ExecutionStartTime"])
    iso(newest["ExecutionEndTime"])
    everything = runner.json("list", code=0)["AutomationExecutionMetadataList"]
    assert len(everything) == 2
    assert runner.json("list", "--status", "Failed", code=0) == {
        "AutomationExecutionMetadataList": []
    }


def test_failed_execution_exits_1(cli: Cli) -> None:
    shape = cli.json("run", str(RUNBOOKS / "health-check.yaml"), "-p", "CriticalPercent=0", code=1)
    assert_automation_execution(shape)
    assert shape["AutomationExecutionStatus"] == "Failed"
    assert steps_of(shape) == [
        ("measure", "Success"),
        ("decide", "Success"),
        ("critical", "Failed"),
    ]
    critical = shape["StepExecutions"][-1]
    assert critical["FailureMessage"].startswith("Step critical failed: command exited with code 1")
    assert critical["FailureDetails"]["FailureType"] == "Action"
    assert shape["FailureMessage"] == critical["FailureMessage"]
    assert shape["Parameters"] == {"CriticalPercent": ["0"]}
    text = cli("run", str(RUNBOOKS / "health-check.yaml"), "-p", "CriticalPercent=0", code=1)
    assert "critically full" in text.stdout + text.stderr


# -- parameters ------------------------------------------------------------------------------


@pytest.fixture
def parameters_runbook(tmp_path: Path) -> Path:
    path = tmp_path / "parameters.yaml"
    path.write_text(PARAMETERS_RUNBOOK, encoding="utf-8")
    return path


def test_string_list_by_comma_and_repeated_p(cli: Cli, parameters_runbook: Path) -> None:
    shape = cli.json(
        "run",
        str(parameters_runbook),
        "-p", "Items=a,b",
        "-p", "Items=c",
        "-p", "Count=3",
        "-p", "Label=x,y",  # a String keeps its comma
        code=0,
    )  # fmt: skip
    assert shape["Parameters"] == {"Items": ["a", "b", "c"], "Count": ["3"], "Label": ["x,y"]}
    assert shape["Variables"] == {"SeenItems": ["a", "b", "c"], "SeenCount": ["3"]}


def test_parameters_file_json(cli: Cli, parameters_runbook: Path, tmp_path: Path) -> None:
    spaces = tmp_path / "spaces.json"
    spaces.write_text(json.dumps({"Items": ["x", "y"], "Count": 5}), encoding="utf-8")
    shape = cli.json("run", str(parameters_runbook), "--parameters-file", str(spaces), code=0)
    assert shape["Variables"] == {"SeenItems": ["x", "y"], "SeenCount": ["5"]}
    assert shape["Parameters"] == {"Items": ["x", "y"], "Count": ["5"]}
    tabs = tmp_path / "tabs.json"  # valid JSON that a YAML 1.1 reader refuses
    tabs.write_text('{\n\t"Items": ["t"],\n\t"Count": 6\n}\n', encoding="utf-8")
    shape = cli.json("run", str(parameters_runbook), "--parameters-file", str(tabs), code=0)
    assert shape["Variables"] == {"SeenItems": ["t"], "SeenCount": ["6"]}


def test_parameters_file_yaml_under_p(cli: Cli, parameters_runbook: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("Items:\n  - p\n  - q\nCount: 9\nLabel: from-file\n", encoding="utf-8")
    shape = cli.json(
        "run", str(parameters_runbook), "--parameters-file", str(values), "-p", "Count=10", code=0
    )
    assert shape["Variables"] == {"SeenItems": ["p", "q"], "SeenCount": ["10"]}  # -p wins
    assert shape["Parameters"] == {"Items": ["p", "q"], "Count": ["10"], "Label": ["from-file"]}


def test_invalid_parameters_start_nothing(
    cli: Cli, parameters_runbook: Path, tmp_path: Path
) -> None:
    hello = str(RUNBOOKS / "hello-world.yaml")
    error = cli.json("run", hello, "-p", "Name=not valid!", code=2)
    assert error["__type"] == "InvalidAutomationExecutionParametersException"
    assert "Name" in error["message"]
    error = cli.json("run", hello, "-p", "Nobody=1", code=2)
    assert error["__type"] == "InvalidAutomationExecutionParametersException"
    error = cli.json("run", str(parameters_runbook), "-p", "Items=a", "-p", "Count=three", code=2)
    assert error["__type"] == "InvalidAutomationExecutionParametersException"
    broken = tmp_path / "broken.json"
    broken.write_text('{"Items": ', encoding="utf-8")
    error = cli.json("run", str(parameters_runbook), "--parameters-file", str(broken), code=2)
    assert error["__type"] == "InvalidAutomationExecutionParametersException"
    text = cli("run", str(parameters_runbook), code=2)  # Items is required
    assert "Items" in text.stderr and text.stdout == ""
    assert cli.json("list", code=0) == {"AutomationExecutionMetadataList": []}


# -- documents and ids that do not exist -----------------------------------------------------


def test_unknown_document(cli: Cli) -> None:
    error = cli.json("run", "NoSuchRunbook", code=2)
    assert error["__type"] == "AutomationDefinitionNotFoundException"
    assert "NoSuchRunbook" in error["message"]
    error = cli.json("run", str(cli.home / "missing.yaml"), code=2)
    assert error["__type"] == "AutomationDefinitionNotFoundException"


def test_invalid_document(cli: Cli) -> None:
    document = cli.home / "broken.yaml"
    document.write_text(
        "schemaVersion: '0.3'\nmainSteps:\n  - name: wait\n    action: aws:sleep\n"
        "    inputs:\n      Duration: soon\n",
        encoding="utf-8",
    )
    error = cli.json("run", str(document), code=2)
    assert error["__type"] == "InvalidDocumentContent"
    assert "Duration 'soon'" in error["message"]
    text = cli("run", str(document), code=2)
    assert f"{document.name}:6:17: error:" in text.stderr  # compiler style, on stderr
    assert cli.json("list", code=0) == {"AutomationExecutionMetadataList": []}


def test_get_unknown_execution(cli: Cli) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    error = cli.json("get", missing, code=2)
    assert error == {
        "__type": "AutomationExecutionNotFoundException",
        "message": f"execution {missing} does not exist",
    }
    for command in (
        ["resume", missing],
        ["stop", missing],
        ["signal", missing, "--type", "Approve"],
    ):
        assert cli.json(*command, code=2)["__type"] == "AutomationExecutionNotFoundException"


# -- waits across processes: --no-wait, signal, resume, stop --------------------------------


def start_approval(cli: Cli, approver: str = "alice") -> dict[str, Any]:
    marker = cli.home / "approved.txt"
    return dict(
        cli.json(
            "run",
            str(RUNBOOKS / "approval-gate.yaml"),
            "--no-wait",
            "-p", f"Approver={approver}",
            "-p", f"Marker={marker}",
            code=3,
        )
    )  # fmt: skip


def test_approval_no_wait_signal_resume(cli: Cli) -> None:
    waiting = start_approval(cli)
    execution_id = waiting["AutomationExecutionId"]
    assert_automation_execution(waiting)
    assert waiting["AutomationExecutionStatus"] == "Waiting"
    assert steps_of(waiting) == [("askForApproval", "Waiting")]  # steps not run: not listed
    assert json.loads(waiting["StepExecutions"][0]["Inputs"]["Approvers"]) == ["alice"]
    assert not (cli.home / "approved.txt").exists()

    refused = cli.json("signal", execution_id, "--type", "Approve", "--as", "mallory", code=2)
    assert refused["__type"] == "InvalidAutomationSignalException"
    assert "mallory" in refused["message"]
    text = cli("signal", execution_id, "--type", "Approve", "--as", "mallory", code=2)
    assert "mallory" in text.stderr

    assert cli.json("signal", execution_id, "--type", "Approve", "--as", "alice", code=0) == {}
    done = cli.json("resume", execution_id, code=0)
    assert_automation_execution(done)
    assert done["AutomationExecutionStatus"] == "Success"
    assert steps_of(done) == [("askForApproval", "Success"), ("makeTheChange", "Success")]
    assert done["Outputs"] == {"askForApproval.ApprovalStatus": ["Approved"]}
    assert "approved by" in (cli.home / "approved.txt").read_text(encoding="utf-8")
    assert cli.json("get", execution_id, code=0) == done
    again = cli.json("resume", execution_id, code=0)  # a terminal execution: shown as is
    assert again == done


def test_foreground_run_picks_up_a_signal_from_another_process(cli: Cli) -> None:
    marker = cli.home / "approved.txt"
    foreground = cli.popen(
        "run",
        str(RUNBOOKS / "approval-gate.yaml"),
        "-p", "Approver=alice",
        "-p", f"Marker={marker}",
        "--output", "json",
    )  # fmt: skip
    try:
        waiting = wait_for_status(cli, "Waiting")
        assert foreground.poll() is None  # still in the foreground, waiting
        cli(
            "signal", waiting["AutomationExecutionId"], "--type", "Approve", "--as", "alice", code=0
        )
        stdout, stderr = foreground.communicate(timeout=60)
    finally:
        if foreground.poll() is None:
            foreground.kill()
            foreground.communicate()
    assert foreground.returncode == 0, stderr
    shape = json.loads(stdout)
    assert shape["AutomationExecutionId"] == waiting["AutomationExecutionId"]
    assert shape["AutomationExecutionStatus"] == "Success"
    assert marker.is_file()


def test_stop_a_waiting_execution(cli: Cli) -> None:
    execution_id = start_approval(cli)["AutomationExecutionId"]
    stopped = cli.json("stop", execution_id, code=1)  # it ended Cancelled
    assert_automation_execution(stopped)
    assert stopped["AutomationExecutionStatus"] == "Cancelled"
    assert steps_of(stopped) == [("askForApproval", "Cancelled")]
    assert not (cli.home / "approved.txt").exists()
    error = cli.json("stop", execution_id, code=2)
    assert error["__type"] == "InvalidAutomationStatusUpdateException"
    listed = cli.json("list", "--status", "Cancelled", code=0)["AutomationExecutionMetadataList"]
    assert [e["AutomationExecutionId"] for e in listed] == [execution_id]


def test_interactive_start_step_then_complete(cli: Cli) -> None:
    health = str(RUNBOOKS / "health-check.yaml")
    waiting = cli.json("run", health, "--mode", "Interactive", "--no-wait", code=3)
    execution_id = waiting["AutomationExecutionId"]
    assert waiting["Mode"] == "Interactive"
    assert waiting["AutomationExecutionStatus"] == "Waiting"
    assert waiting["StepExecutions"] == []

    early = cli.json("signal", execution_id, "--type", "StartStep", "--step", "decide", code=2)
    assert early["__type"] == "InvalidAutomationSignalException"  # only measure may run first
    unknown = cli.json("signal", execution_id, "--type", "StartStep", "--step", "nosuch", code=2)
    assert unknown["__type"] == "AutomationStepNotFoundException"

    cli("signal", execution_id, "--type", "StartStep", "--step", "measure", code=0)
    after = cli.json("resume", execution_id, "--no-wait", code=3)  # ran it, waits again
    assert after["AutomationExecutionStatus"] == "Waiting"
    assert steps_of(after) == [("measure", "Success")]
    assert after["StepExecutions"][0]["ValidNextSteps"] == ["decide"]

    done = cli.json("stop", execution_id, "--type", "Complete", code=0)
    assert_automation_execution(done)
    assert done["AutomationExecutionStatus"] == "Success"
    assert steps_of(done) == [("measure", "Success")]  # the steps not run stay unlisted
    assert int(done["Outputs"]["measure.Percent"][0]) in range(101)
