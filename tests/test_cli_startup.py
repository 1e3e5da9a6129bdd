"""What a ``runbook`` process leaves out of its start-up, and that it still does its work.

Each test runs the command the way the console script does (``main()`` reading
``sys.argv``, the process's own command) in a fresh interpreter, then reports which
libraries it imported and whether the garbage collector is back on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runbook_engine.cli import main

STRAIGHT = """\
schemaVersion: '0.3'
mainSteps:
  - name: nap
    action: aws:sleep
    inputs:
      Duration: PT0S
"""

PROBE = """\
import gc, json, sys
sys.argv = ["runbook", *json.loads(sys.argv[1])]
from runbook_engine.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
report = {
    "code": code,
    "gc": gc.isenabled(),
    "networkx": "networkx" in sys.modules,
    "rich": "rich" in sys.modules,
}
print(json.dumps(report), file=sys.stderr)
"""


def probe(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """Run ``runbook ARGS`` in a new interpreter: (what it imported, its stdout)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    report: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    return report, done.stdout


@pytest.fixture
def straight(tmp_path: Path) -> Path:
    path = tmp_path / "Straight.yaml"
    path.write_text(STRAIGHT)
    return path


def test_json_run_skips_rich_and_networkx(tmp_path: Path, straight: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    report, stdout = probe(tmp_path, "run", str(straight), "--output", "json", "--state", state)
    assert report == {"code": 0, "gc": True, "networkx": False, "rich": False}
    execution = json.loads(stdout)
    assert execution["DocumentName"] == "Straight"
    assert execution["AutomationExecutionStatus"] == "Success"
    steps = execution["StepExecutions"]
    assert [(s["StepName"], s["Action"], s["StepStatus"]) for s in steps] == [
        ("nap", "aws:sleep", "Success")
    ]


def test_text_run_shows_progress_with_rich(tmp_path: Path, straight: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    report, stdout = probe(tmp_path, "run", str(straight), "--state", state)
    assert report == {"code": 0, "gc": True, "networkx": False, "rich": True}
    assert stdout.startswith("Execution ") and ": Success" in stdout.splitlines()[0]


def test_a_runbook_with_jumps_is_checked_by_the_graph(tmp_path: Path) -> None:
    cycle = tmp_path / "Cycle.yaml"
    cycle.write_text(STRAIGHT + "    nextStep: nap\n")
    state = f"sqlite:///{tmp_path / 'state.db'}"
    report, stdout = probe(tmp_path, "run", str(cycle), "--output", "json", "--state", state)
    assert report == {"code": 2, "gc": True, "networkx": True, "rich": False}
    assert json.loads(stdout)["__type"] == "InvalidDocumentContent"
    assert "unconditional cycle" in json.loads(stdout)["message"]


@pytest.mark.parametrize("command", [["validate"], ["run", "--dry-run"]])
def test_other_commands_turn_the_collector_back_on(
    tmp_path: Path, straight: Path, command: list[str]
) -> None:
    report, _ = probe(tmp_path, *command, str(straight), "--output", "json")
    assert report["code"] == 0
    assert report["gc"] is True


def test_a_caller_s_collector_is_left_alone(straight: Path) -> None:
    """``main(args)`` (tests, embedding) never touches the collector."""
    import gc

    assert gc.isenabled()
    code = main(["validate", str(straight)], standalone_mode=False)
    assert code == 0
    assert gc.isenabled()
