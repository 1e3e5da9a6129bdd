"""``runbook validate`` and ``runbook graph``: exit codes, compiler-style lines, JSON shapes.

Every rule of the parser and the graph has a hand-written document under
``tests/fixtures/invalid/`` and is checked here for its exact message and line:column.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runbook_engine.cli import main, state_url
from runbook_engine.validation import validate_file

FIXTURES = Path(__file__).parent / "fixtures"
INVALID = FIXTURES / "invalid"
VALID = FIXTURES / "valid"
RUNBOOK = Path(sys.executable).parent / "runbook"  # the installed console script

# fixture -> the error it exists for: (line, column, message)
EXPECTED_ERRORS: dict[str, tuple[int, int, str]] = {
    "unknown-action.yaml": (4, 13, "unknown action aws:frobnicate"),
    "missing-inputs.yaml": (3, 5, "step Wait: missing required property 'inputs'"),
    "inputs-not-a-map.yaml": (5, 13, "step Wait: inputs must be a map, not String"),
    "bad-on-failure.yaml": (5, 16, "onFailure must be Abort, Continue or step:NAME, not 'Retry'"),
    "duplicate-step-name.yaml": (7, 11, "duplicate step name 'Wait'"),
    "bad-step-name.yaml": (3, 11, "step name 'wait-a-bit' may only hold letters, digits and '_'"),
    "unknown-target.yaml": (5, 15, "a jump names a step that does not exist: Nowhere"),
    "unknown-target.json": (7, 19, "a jump names a step that does not exist: Nowhere"),
    "unconditional-cycle.yaml": (
        13,
        15,
        "unconditional cycle: Again -> Back -> Again repeats for ever "
        "(no aws:branch step or onFailure jump on it)",
    ),
    "bad-schema-version.yaml": (1, 16, "schemaVersion must be '0.3' for a runbook, not '0.4'"),
    "missing-main-steps.yaml": (1, 1, "missing required key 'mainSteps'"),
    "unknown-top-level-key.yaml": (7, 1, "unknown top-level key 'steps'"),
    "top-level-list.yaml": (1, 1, "a runbook must be a map at the top level, not MapList"),
    "bad-parameter-type.yaml": (4, 11, "parameter 'Count' has an unknown type 'Number'"),
    "unknown-step-property.yaml": (5, 5, "step Wait: unknown property 'retries'"),
    "zero-max-attempts.yaml": (5, 18, "maxAttempts must be at least 1, not 0"),
    "is-end-not-boolean.yaml": (5, 12, "isEnd must be true or false, not 'maybe'"),
    "unknown-input.yaml": (
        6,
        7,
        "step Wait: unknown input 'Seconds' (known: Duration, Timestamp)",
    ),
    "bad-duration.yaml": (
        6,
        17,
        "step Wait: Duration 'ten minutes' is not an ISO-8601 duration such as PT10M",
    ),
    "yaml-syntax.yaml": (
        7,
        1,
        "invalid YAML: while parsing a flow sequence did not find expected ',' or ']'",
    ),
    "json-syntax.json": (4, 44, "invalid JSON: Expecting ',' delimiter"),
}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="runbook")


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_every_invalid_fixture_is_checked_here() -> None:
    assert sorted(p.name for p in INVALID.iterdir()) == sorted(EXPECTED_ERRORS)


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_invalid_document_has_its_error_at_its_place(name: str) -> None:
    report = validate_file(INVALID / name)
    assert not report.valid
    errors = [(d.line, d.column, d.message) for d in report.errors]
    assert EXPECTED_ERRORS[name] in errors


def test_validate_prints_compiler_style_lines_for_every_invalid_document() -> None:
    result = invoke("validate", str(INVALID))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    for name, (line, column, message) in EXPECTED_ERRORS.items():
        assert f"{INVALID / name}:{line}:{column}: error: {message}" in lines
    count = len(EXPECTED_ERRORS)
    assert lines[-1].startswith(f"{count} documents: 0 valid, {count} invalid (")


def test_warnings_are_printed_too() -> None:
    result = invoke("validate", str(INVALID / "unknown-target.yaml"))
    assert result.stdout.splitlines() == [
        f"{INVALID}/unknown-target.yaml:5:15: error: "
        "a jump names a step that does not exist: Nowhere",
        f"{INVALID}/unknown-target.yaml:8:5: warning: "
        "step Nowhere_Else is never run: no transition from the first step leads to it",
        f"{INVALID}/unknown-target.yaml:10:16: error: "
        "a jump names a step that does not exist: Missing",
        "1 document: 0 valid, 1 invalid (2 errors, 1 warning)",
    ]


def test_an_on_cancel_jump_to_a_sleep_step_is_only_a_warning() -> None:
    # AWS documents aws:sleep as no onCancel target, yet a corpus runbook does it.
    doc = FIXTURES / "warning" / "cancel-to-sleep.yaml"
    result = invoke("validate", str(doc))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"{doc}:5:15: warning: onCancel jumps to step CleanUp, "
        "but AWS does not run aws:sleep steps after a cancel",
        "1 document: 1 valid, 0 invalid (0 errors, 1 warning)",
    ]


# -- the real console script --------------------------------------------------------------


def test_script_exit_0_when_every_document_is_valid() -> None:
    result = run_script("validate", str(VALID))
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "2 documents: 2 valid, 0 invalid (0 errors, 0 warnings)\n",
        "",
    )


def test_script_exit_1_with_yaml_and_json_locations() -> None:
    yaml_doc, json_doc = INVALID / "unknown-action.yaml", INVALID / "json-syntax.json"
    result = run_script("validate", str(VALID / "sleep-once.json"), str(yaml_doc), str(json_doc))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{yaml_doc}:4:13: error: unknown action aws:frobnicate",
        f"{json_doc}:4:44: error: invalid JSON: Expecting ',' delimiter",
        "3 documents: 1 valid, 2 invalid (2 errors, 0 warnings)",
    ]


def test_script_exit_2_for_a_missing_path() -> None:
    result = run_script("validate", str(VALID), "no/such/runbook.yaml")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "runbook: error: no such file or directory: no/such/runbook.yaml\n"


def test_script_json_output_shape() -> None:
    valid, invalid = str(VALID / "sleep-twice.yaml"), str(INVALID / "unknown-target.json")
    result = run_script("validate", "--output", "json", valid, invalid)
    assert result.returncode == 1
    assert json.loads(result.stdout) == [
        {"path": valid, "valid": True, "errors": [], "warnings": []},
        {
            "path": invalid,
            "valid": False,
            "errors": [
                {
                    "line": 7,
                    "column": 19,
                    "path": "mainSteps[0].nextStep",
                    "message": "a jump names a step that does not exist: Nowhere",
                }
            ],
            "warnings": [],
        },
    ]


def test_script_json_error_object_on_exit_2() -> None:
    result = run_script("--output", "json", "validate", "missing.yaml")
    assert result.returncode == 2
    assert json.loads(result.stdout) == {
        "__type": "AutomationDefinitionNotFoundException",
        "message": "no such file or directory: missing.yaml",
    }


# -- options, usage errors, unreadable input ------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--output", "json", "validate", "DOC"],
        ["validate", "--output", "json", "DOC"],
        ["validate", "DOC", "--output=json"],
        ["--output", "text", "validate", "--output", "json", "DOC"],
        ["--state", "sqlite:///x.db", "validate", "--state", "y", "--output", "json", "DOC"],
    ],
)
def test_global_options_work_before_and_after_the_command(args: list[str]) -> None:
    doc = str(VALID / "sleep-once.json")
    result = invoke(*(doc if a == "DOC" else a for a in args))
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["valid"] is True


def test_the_option_written_last_wins() -> None:
    result = invoke("--output", "json", "validate", "--output", "text", str(VALID))
    assert result.stdout == "2 documents: 2 valid, 0 invalid (0 errors, 0 warnings)\n"


def test_usage_error_is_exit_2_and_json_when_asked() -> None:
    text = invoke("validate")
    assert text.exit_code == 2
    assert "Missing argument 'PATHS...'" in text.stderr
    as_json = invoke("validate", "--output", "json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout) == {
        "__type": "ValidationException",
        "message": "Missing argument 'PATHS...'.",
    }
    unknown = invoke("--output", "json", "validate", "--frobnicate", str(VALID))
    assert (unknown.exit_code, json.loads(unknown.stdout)["message"]) == (
        2,
        "No such option '--frobnicate'.",
    )


def test_unreadable_and_empty_inputs_are_exit_2(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    result = invoke("validate", "--output", "json", str(binary))
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert error["__type"] == "InvalidDocumentContent"
    assert error["message"].startswith(f"cannot read {binary}: ")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("validate", str(empty))
    assert result.exit_code == 2
    assert result.stderr == f"runbook: error: no .yaml, .yml or .json documents under {empty}\n"


def test_directories_are_walked_for_documents_only(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    text = (VALID / "sleep-twice.yaml").read_text()
    (tmp_path / "one.yml").write_text(text)
    (nested / "two.YAML").write_text(text)
    (nested / "notes.txt").write_text("not a document")
    result = invoke("validate", "--output", "json", str(tmp_path))
    assert [entry["path"] for entry in json.loads(result.stdout)] == [
        str(nested / "two.YAML"),
        str(tmp_path / "one.yml"),
    ]


# -- graph ------------------------------------------------------------------------------


def test_graph_prints_dot_by_default_and_mermaid_on_request() -> None:
    doc = str(VALID / "sleep-twice.yaml")
    dot = invoke("graph", doc)
    assert dot.exit_code == 0
    assert dot.stdout == (
        'digraph "sleep-twice" {\n'
        "  node [shape=box, style=rounded];\n"
        '  "First" [label="First\\naws:sleep"];\n'
        '  "Second" [label="Second\\naws:sleep"];\n'
        '  "<END>" [label="END", shape=doublecircle];\n'
        '  "First" -> "Second" [label="nextStep"];\n'
        '  "Second" -> "<END>";\n'
        "}\n"
    )
    mermaid = invoke("graph", "--format", "mermaid", doc)
    assert mermaid.stdout == (
        "flowchart TD\n"
        '    s0["First<br/>aws:sleep"]\n'
        '    s1["Second<br/>aws:sleep"]\n'
        '    done(["END"])\n'
        '    s0 -->|"nextStep"| s1\n'
        "    s1 --> done\n"
    )


def test_graph_json_lists_nodes_and_edges() -> None:
    result = invoke("graph", "--output", "json", str(VALID / "sleep-twice.yaml"))
    data = json.loads(result.stdout)
    assert data["nodes"] == [
        {"name": "First", "action": "aws:sleep"},
        {"name": "Second", "action": "aws:sleep"},
        {"name": "END", "action": None},
    ]
    assert [(e["from"], e["to"], e["kind"]) for e in data["edges"]] == [
        ("First", "Second", "nextStep"),
        ("Second", "END", "next"),
    ]
    assert data["text"].startswith('digraph "sleep-twice" {')


def test_graph_of_an_invalid_runbook_is_exit_2_with_its_errors() -> None:
    doc = INVALID / "unknown-target.yaml"
    result = invoke("graph", str(doc))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{doc}:5:15: error: a jump names a step that does not exist: Nowhere",
        f"{doc}:10:16: error: a jump names a step that does not exist: Missing",
        "runbook: error: invalid document (2 errors)",
    ]
    as_json = run_script("--output", "json", "graph", str(doc))
    assert as_json.returncode == 2
    error = json.loads(as_json.stdout)
    assert error["__type"] == "InvalidDocumentContent"
    assert f"{doc}:5:15: error: a jump names a step that does not exist: Nowhere" in (
        error["message"]
    )


def test_graph_of_a_missing_file_is_not_found() -> None:
    result = invoke("--output", "json", "graph", "nowhere.yaml")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "__type": "AutomationDefinitionNotFoundException",
        "message": "no such file: nowhere.yaml",
    }


def test_help_lists_the_commands() -> None:
    result = run_script("--help")
    assert result.returncode == 0
    assert "validate" in result.stdout and "graph" in result.stdout


def test_state_url_comes_from_the_option_the_environment_or_the_xdg_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RUNBOOK_STATE_URL", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    with main.make_context("runbook", ["validate"]) as ctx:
        assert state_url(ctx) == f"sqlite:///{tmp_path}/runbook/state.db"
    monkeypatch.setenv("RUNBOOK_STATE_URL", "postgresql+psycopg://db/runbook")
    with main.make_context("runbook", ["validate"]) as ctx:
        assert state_url(ctx) == "postgresql+psycopg://db/runbook"
    with main.make_context("runbook", ["--state", "sqlite:////var/x.db", "validate"]) as ctx:
        assert state_url(ctx) == "sqlite:////var/x.db"
    validate = main.get_command(ctx, "validate")
    assert validate is not None
    with main.make_context("runbook", ["--state", "sqlite:///a.db", "validate"]) as parent:
        sub = validate.make_context("validate", ["--state", "sqlite:///b.db", "x.yaml"], parent)
        assert state_url(sub) == "sqlite:///b.db"
