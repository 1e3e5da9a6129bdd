"""The library's public surface: ``runbook_engine.__all__`` and ``SyncEngine``.

``__all__`` is a promise to library users; a name added or removed there should be a
decision, so the expected list is written out here in full.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import runbook_engine
from runbook_engine import ExecutionView, ParameterError, Status, SyncEngine

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "runbooks" / "hello-world.yaml"

EXPECTED_ALL = [
    "CommandDocument",
    "Diagnostic",
    "DocumentError",
    "DocumentNotFound",
    "Engine",
    "ExecutionClaimed",
    "ExecutionNotFound",
    "ExecutionView",
    "InvalidSignal",
    "InvalidStatusUpdate",
    "Mode",
    "Parameter",
    "ParameterError",
    "Runbook",
    "RunbookError",
    "Settings",
    "Status",
    "Step",
    "StepNotFound",
    "SyncEngine",
    "ValidationReport",
    "load_runbook",
    "validate_file",
    "validate_text",
]


def test_all_is_exactly_the_expected_list() -> None:
    assert sorted(runbook_engine.__all__) == EXPECTED_ALL
    assert len(set(runbook_engine.__all__)) == len(runbook_engine.__all__)


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_public_name_is_importable(name: str) -> None:
    value = getattr(runbook_engine, name)
    assert value is not None
    assert getattr(value, "__name__", name) == name  # the thing itself, not an alias


def test_lazy_names_are_the_implementations() -> None:
    from runbook_engine.engine import Engine
    from runbook_engine.settings import Settings
    from runbook_engine.sync import SyncEngine as Implementation

    assert runbook_engine.Engine is Engine
    assert runbook_engine.Settings is Settings
    assert runbook_engine.SyncEngine is Implementation
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = runbook_engine.Nothing  # type: ignore[attr-defined]


def test_import_star_and_lazy_store() -> None:
    """``from runbook_engine import *`` gives every name; validating loads no store."""
    script = (
        "import sys\n"
        "import runbook_engine\n"
        "runbook_engine.validate_text(\"schemaVersion: '0.3'\\nmainSteps: []\\n\", 'x.yaml')\n"
        "assert 'sqlalchemy' not in sys.modules, 'validation loaded the store'\n"
        "assert 'runbook_engine.store' not in sys.modules\n"
        "namespace = {}\n"
        "exec('from runbook_engine import *', namespace)\n"
        "missing = set(runbook_engine.__all__) - set(namespace)\n"
        "assert not missing, missing\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_sync_engine_runs_hello_world(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    view = SyncEngine(state).run(str(HELLO), {"Name": "Ada"})
    assert isinstance(view, ExecutionView)
    assert view.status is Status.SUCCESS
    assert [s.step_name for s in view.steps] == ["greet", "shout", "rest"]
    assert view.step("greet").outputs["Output"].startswith("Hello, Ada!\n")
    assert dict(view.execution.outputs) == {"shout.Shout": "HELLO, ADA!", "shout.Length": 11}

    again = SyncEngine(state)  # another engine on the same state file sees the execution
    assert again.get(view.execution_id) == view
    by_name = again.run("hello-world")  # the bundled runbook, its default Name
    assert by_name.execution.outputs["shout.Shout"] == "HELLO, WORLD!"
    listed = again.list(status="Success")
    assert [r.execution_id for r in listed] == [by_name.execution_id, view.execution_id]


def test_sync_engine_refuses_invalid_parameters(tmp_path: Path) -> None:
    engine = SyncEngine(f"sqlite:///{tmp_path / 'state.db'}")
    with pytest.raises(ParameterError, match="Name") as raised:
        engine.run(str(HELLO), {"Name": "not valid!"})
    assert raised.value.code == "InvalidAutomationExecutionParametersException"
    assert engine.list() == []
