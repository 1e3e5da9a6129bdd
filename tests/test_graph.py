"""The step graph: edges of every kind, jump targets, cycles, unreachable steps, drawings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runbook_engine.graph import (
    END,
    build_graph,
    check_cancel_targets,
    check_graph,
    to_dot,
    to_mermaid,
)
from runbook_engine.inputs import ActionSchema
from runbook_engine.model import Runbook
from runbook_engine.parser import parse_runbook
from runbook_engine.source import load_source
from runbook_engine.validation import validate_text

ACTIONS = ("aws:branch", "aws:loop", "aws:sleep", "aws:pause", "aws:executeAwsApi")
PERMISSIVE = {name: ActionSchema(inputs={}, extra_inputs=True) for name in ACTIONS}


def runbook_of(text: str) -> Runbook:
    source = load_source(textwrap.dedent(text), "test.yaml")
    runbook, diagnostics = parse_runbook(source, PERMISSIVE, "test")
    assert runbook is not None
    assert [d.format() for d in diagnostics if d.is_error] == []
    return runbook


def problems(text: str) -> list[tuple[int, int, str, str]]:
    report = validate_text(textwrap.dedent(text), "test.yaml", PERMISSIVE)
    return [(d.line, d.column, d.severity, d.message) for d in report.diagnostics]


def edges(text: str) -> dict[tuple[str, str], tuple[str, ...]]:
    graph = build_graph(runbook_of(text))
    return {(source, target): kinds for source, target, kinds in graph.edges(data="kinds")}


def test_sequential_successors_end_at_the_end_node() -> None:
    assert edges(
        """
        schemaVersion: '0.3'
        mainSteps:
          - {name: A, action: aws:sleep, inputs: {Duration: PT1S}}
          - {name: B, action: aws:sleep, inputs: {Duration: PT1S}}
          - {name: C, action: aws:sleep, inputs: {Duration: PT1S}}
        """
    ) == {("A", "B"): ("next",), ("B", "C"): ("next",), ("C", END): ("next",)}


def test_next_step_replaces_the_sequential_successor() -> None:
    assert edges(
        """
        schemaVersion: '0.3'
        mainSteps:
          - {name: A, action: aws:sleep, nextStep: C, inputs: {Duration: PT1S}}
          - {name: B, action: aws:sleep, inputs: {Duration: PT1S}}
          - {name: C, action: aws:sleep, inputs: {Duration: PT1S}}
        """
    ) == {("A", "C"): ("nextStep",), ("B", "C"): ("next",), ("C", END): ("next",)}


def test_is_end_leads_only_to_the_end() -> None:
    assert edges(
        """
        schemaVersion: '0.3'
        mainSteps:
          - {name: A, action: aws:sleep, isEnd: true, nextStep: B, inputs: {Duration: PT1S}}
          - {name: B, action: aws:sleep, inputs: {Duration: PT1S}}
        """
    ) == {("A", END): ("next",), ("B", END): ("next",)}


def test_on_failure_and_on_cancel_jumps_are_edges() -> None:
    assert edges(
        """
        schemaVersion: '0.3'
        mainSteps:
          - name: Work
            action: aws:sleep
            onFailure: step:Recover
            onCancel: step:Tidy
            inputs: {Duration: PT1S}
          - {name: Done, action: aws:sleep, isEnd: true, inputs: {Duration: PT1S}}
          - {name: Recover, action: aws:sleep, isEnd: true, inputs: {Duration: PT1S}}
          - {name: Tidy, action: aws:pause, inputs: {}}
        """
    ) == {
        ("Work", "Done"): ("next",),
        ("Work", "Recover"): ("onFailure",),
        ("Work", "Tidy"): ("onCancel",),
        ("Done", END): ("next",),
        ("Recover", END): ("next",),
        ("Tidy", END): ("next",),
    }


def test_one_edge_keeps_every_way_it_arises() -> None:
    graph = build_graph(
        runbook_of(
            """
            schemaVersion: '0.3'
            mainSteps:
              - {name: A, action: aws:sleep, nextStep: B, onFailure: 'step:B', inputs: {}}
              - {name: B, action: aws:sleep, inputs: {}}
            """
        )
    )
    edge = graph.edges["A", "B"]
    assert (edge["kind"], edge["kinds"], edge["label"]) == (
        "nextStep",
        ("nextStep", "onFailure"),
        "nextStep, onFailure",
    )


BRANCH = """
schemaVersion: '0.3'
parameters:
  Os: {type: String}
mainSteps:
  - name: Choose
    action: aws:branch
    inputs:
      Choices:
        - NextStep: Linux
          Variable: '{{ Os }}'
          StringEquals: Linux
        - NextStep: Windows
          Or:
            - Variable: '{{ Os }}'
              StartsWith: Win
            - Not:
                Variable: '{{ Os }}'
                Contains: x
      Default: Other
  - name: Linux
    action: aws:sleep
    onFailure: step:Other
    isEnd: true
    inputs: {Duration: PT1S}
  - name: Windows
    action: aws:sleep
    nextStep: Other
    inputs: {Duration: PT1S}
  - name: Other
    action: aws:sleep
    inputs: {Duration: PT1S}
"""


def test_branch_choices_and_default_are_edges_with_their_conditions() -> None:
    graph = build_graph(runbook_of(BRANCH))
    out = graph.out_edges("Choose", data=True)
    assert {target: (data["kind"], data["label"]) for _, target, data in out} == {
        "Linux": ("choice", "{{ Os }} StringEquals Linux"),
        "Windows": ("choice", "{{ Os }} StartsWith Win or not ({{ Os }} Contains x)"),
        "Other": ("default", "default"),
    }


def test_branch_without_default_falls_through_or_ends() -> None:
    text = """
    schemaVersion: '0.3'
    mainSteps:
      - name: Choose
        action: aws:branch
        isEnd: {is_end}
        inputs:
          Choices:
            - {{NextStep: Last, Variable: '{{{{ global:REGION }}}}', StringEquals: x}}
      - {{name: Middle, action: aws:sleep, inputs: {{Duration: PT1S}}}}
      - {{name: Last, action: aws:sleep, inputs: {{Duration: PT1S}}}}
    """
    assert edges(text.format(is_end="false"))[("Choose", "Middle")] == ("next",)
    ended = edges(text.format(is_end="true"))
    # A matched choice wins over isEnd; no choice matched ends the execution.
    assert ended[("Choose", "Last")] == ("choice",)
    assert ended[("Choose", END)] == ("next",)
    assert ("Choose", "Middle") not in ended


def test_loop_body_edges_go_in_and_back() -> None:
    graph = build_graph(
        runbook_of(
            """
            schemaVersion: '0.3'
            mainSteps:
              - name: Repeat
                action: aws:loop
                inputs:
                  MaxIterations: 3
                  LoopCondition: {Variable: '{{ Inner2.Count }}', NumericLesser: 3}
                  Steps:
                    - {name: Inner1, action: aws:sleep, inputs: {Duration: PT1S}}
                    - {name: Inner2, action: aws:sleep, inputs: {Duration: PT1S}}
              - {name: After, action: aws:sleep, inputs: {Duration: PT1S}}
            """
        )
    )
    assert {(s, t): (d["kind"], d["label"]) for s, t, d in graph.edges(data=True)} == {
        ("Repeat", "Inner1"): ("loop", "loop"),
        ("Inner1", "Inner2"): ("next", ""),
        ("Inner2", "Repeat"): ("loop", "repeat while {{ Inner2.Count }} NumericLesser 3"),
        ("Repeat", "After"): ("next", ""),
        ("After", END): ("next", ""),
    }


@pytest.mark.parametrize(
    ("step", "line", "column"),
    [
        ("{name: A, action: aws:sleep, nextStep: Ghost, inputs: {}}", 3, 44),
        ("{name: A, action: aws:sleep, onFailure: 'step:Ghost', inputs: {}}", 3, 45),
        ("{name: A, action: aws:sleep, onCancel: 'step:Ghost', inputs: {}}", 3, 44),
        ("{name: A, action: aws:branch, inputs: {Choices: [{NextStep: Ghost}]}}", 3, 65),
        ("{name: A, action: aws:branch, inputs: {Choices: [], Default: Ghost}}", 3, 66),
    ],
)
def test_a_jump_to_an_unknown_step_is_an_error_at_the_name(
    step: str, line: int, column: int
) -> None:
    text = f"schemaVersion: '0.3'\nmainSteps:\n  - {step}\n"
    assert problems(text) == [
        (line, column, "error", "a jump names a step that does not exist: Ghost")
    ]


def test_unconditional_cycle_is_rejected_with_its_steps_in_order() -> None:
    assert problems(
        """
        schemaVersion: '0.3'
        mainSteps:
          - {name: Start, action: aws:sleep, inputs: {Duration: PT1S}}
          - {name: Again, action: aws:sleep, inputs: {Duration: PT1S}}
          - {name: Back, action: aws:sleep, nextStep: Again, inputs: {Duration: PT1S}}
        """
    ) == [
        (
            6,
            47,
            "error",
            "unconditional cycle: Again -> Back -> Again repeats for ever "
            "(no aws:branch step or onFailure jump on it)",
        )
    ]


def test_a_step_jumping_to_itself_is_an_unconditional_cycle() -> None:
    assert problems(
        """
        schemaVersion: '0.3'
        mainSteps:
          - {name: Spin, action: aws:sleep, nextStep: Spin, inputs: {Duration: PT1S}}
        """
    ) == [
        (
            4,
            47,
            "error",
            "unconditional cycle: Spin -> Spin repeats for ever "
            "(no aws:branch step or onFailure jump on it)",
        )
    ]


def test_a_cycle_through_a_branch_is_accepted() -> None:
    assert problems(
        """
        schemaVersion: '0.3'
        mainSteps:
          - {name: Poll, action: aws:sleep, inputs: {Duration: PT1S}}
          - name: Ready
            action: aws:branch
            inputs:
              Choices:
                - {NextStep: Done, Variable: '{{ global:REGION }}', StringEquals: us-east-1}
              Default: Poll
          - {name: Done, action: aws:sleep, inputs: {Duration: PT1S}}
        """
    ) == []


def test_a_cycle_through_on_failure_and_a_loop_body_are_accepted() -> None:
    assert problems(
        """
        schemaVersion: '0.3'
        mainSteps:
          - {name: Try, action: aws:sleep, onFailure: 'step:Try', inputs: {Duration: PT1S}}
          - name: Repeat
            action: aws:loop
            inputs:
              MaxIterations: 2
              Steps:
                - {name: Body, action: aws:sleep, inputs: {Duration: PT1S}}
        """
    ) == []


UNREACHED = "no transition from the first step leads to it"


def test_unreachable_steps_are_warnings_once_per_loop() -> None:
    assert problems(
        """
        schemaVersion: '0.3'
        mainSteps:
          - {name: Only, action: aws:sleep, isEnd: true, inputs: {Duration: PT1S}}
          - {name: Orphan, action: aws:sleep, inputs: {Duration: PT1S}}
          - name: Lost
            action: aws:loop
            inputs:
              MaxIterations: 2
              Steps:
                - {name: Body, action: aws:sleep, inputs: {Duration: PT1S}}
        """
    ) == [
        (5, 5, "warning", f"step Orphan is never run: {UNREACHED}"),
        (6, 5, "warning", f"step Lost is never run: {UNREACHED}"),
    ]


def test_cancel_targets_follow_the_action_schema() -> None:
    runbook = runbook_of(
        """
        schemaVersion: '0.3'
        mainSteps:
          - {name: Work, action: aws:sleep, onCancel: 'step:Tidy', inputs: {Duration: PT1S}}
          - {name: Tidy, action: aws:pause, inputs: {}}
        """
    )
    strict = {**PERMISSIVE, "aws:pause": ActionSchema(inputs={}, cancel_target_allowed=False)}
    assert check_cancel_targets(runbook, PERMISSIVE) == []
    [finding] = check_cancel_targets(runbook, strict)
    assert (finding.path, finding.severity, finding.message) == (
        ("mainSteps", 0, "onCancel"),
        "warning",
        "onCancel jumps to step Tidy, but AWS does not run aws:pause steps after a cancel",
    )


@pytest.mark.parametrize(
    "inputs",
    [
        "{Choices: 3}",
        "{Choices: [3, [], {NextStep: [x]}, {NextStep: {a: b}}], Default: [Other]}",
        "{Choices: [{NextStep: A, And: 7}, {NextStep: A, Not: [1, {x: {1: 2}}]}]}",
        "7",
    ],
)
def test_malformed_branch_inputs_never_break_the_graph(inputs: str) -> None:
    step = f"{{name: A, action: aws:branch, inputs: {inputs}}}"
    text = f"schemaVersion: '0.3'\nmainSteps:\n  - {step}\n"
    report = validate_text(text, "odd.yaml", PERMISSIVE)
    assert all(d.line >= 1 and d.column >= 1 for d in report.diagnostics)
    assert isinstance(report.document, Runbook)
    graph = build_graph(report.document)
    assert list(graph.nodes) == ["A", END]
    assert to_dot(graph).startswith('digraph "odd" {')
    assert to_mermaid(graph).startswith("flowchart TD")


EXPECTED_DOT = r"""digraph "test" {
  node [shape=box, style=rounded];
  "Choose" [label="Choose\naws:branch"];
  "Linux" [label="Linux\naws:sleep"];
  "Windows" [label="Windows\naws:sleep"];
  "Other" [label="Other\naws:sleep"];
  "<END>" [label="END", shape=doublecircle];
  "Choose" -> "Linux" [label="{{ Os }} StringEquals Linux"];
  "Choose" -> "Windows" [label="{{ Os }} StartsWith Win or not ({{ Os }} Contains x)"];
  "Choose" -> "Other" [label="default"];
  "Linux" -> "<END>";
  "Linux" -> "Other" [label="onFailure", color=red, style=dashed];
  "Windows" -> "Other" [label="nextStep"];
  "Other" -> "<END>";
}
"""

EXPECTED_MERMAID = """flowchart TD
    s0["Choose<br/>aws:branch"]
    s1["Linux<br/>aws:sleep"]
    s2["Windows<br/>aws:sleep"]
    s3["Other<br/>aws:sleep"]
    done(["END"])
    s0 -->|"{{ Os }} StringEquals Linux"| s1
    s0 -->|"{{ Os }} StartsWith Win or not ({{ Os }} Contains x)"| s2
    s0 -->|"default"| s3
    s1 --> done
    s1 -.->|"onFailure"| s3
    s2 -->|"nextStep"| s3
    s3 --> done
"""


def test_dot_drawing_of_a_branching_runbook() -> None:
    assert to_dot(build_graph(runbook_of(BRANCH))) == EXPECTED_DOT


def test_mermaid_drawing_of_a_branching_runbook() -> None:
    assert to_mermaid(build_graph(runbook_of(BRANCH))) == EXPECTED_MERMAID


def test_drawings_escape_quotes_and_pipes() -> None:
    graph = build_graph(
        runbook_of(
            """
            schemaVersion: '0.3'
            mainSteps:
              - name: Pick
                action: aws:branch
                inputs:
                  Choices:
                    - {NextStep: Next, Variable: '{{ global:REGION }}', StringEquals: 'a"b|c'}
              - {name: Next, action: aws:sleep, inputs: {Duration: PT1S}}
            """
        )
    )
    label = '[label="{{ global:REGION }} StringEquals a\\"b|c, next"]'
    assert f'"Pick" -> "Next" {label};' in to_dot(graph)
    assert 's0 -->|"{{ global:REGION }} StringEquals a#quot;b#124;c, next"| s1' in to_mermaid(graph)


SSM_ACTIONS = (
    "aws:approve", "aws:assertAwsResourceProperty", "aws:branch", "aws:changeInstanceState",
    "aws:copyImage", "aws:createImage", "aws:createStack", "aws:createTags", "aws:deleteImage",
    "aws:deleteStack", "aws:executeAutomation", "aws:executeAwsApi", "aws:executeScript",
    "aws:executeStateMachine", "aws:invokeLambdaFunction", "aws:invokeWebhook", "aws:loop",
    "aws:pause", "aws:runCommand", "aws:runInstances", "aws:sleep",
    "aws:waitForAwsResourceProperty", "aws:updateVariable",
)  # fmt: skip


def test_corpus_runbooks_pass_structure_and_graph_checks_except_the_expected_ones(
    corpus: Path,
) -> None:
    """With every SSM action known, only EXPECTED_INVALID.tsv's documents are rejected by the
    parser and the graph checks (expressions and action inputs are other modules' tests)."""
    schemas = {name: ActionSchema(inputs={}, extra_inputs=True) for name in SSM_ACTIONS}
    rows = (corpus / "EXPECTED_INVALID.tsv").read_text(encoding="utf-8").splitlines()[1:]
    expected = dict(row.split("\t", 1) for row in rows)
    rejected: dict[str, list[str]] = {}
    for path in sorted((corpus / "automation").rglob("*")):
        if path.suffix not in (".yaml", ".yml", ".json"):
            continue
        source = load_source(path.read_text(encoding="utf-8"), str(path))
        runbook, diagnostics = parse_runbook(source, schemas, path.stem)
        assert runbook is not None
        messages = [d.message for d in diagnostics if d.is_error]
        findings = [*check_graph(runbook), *check_cancel_targets(runbook, schemas)]
        messages += [f.message for f in findings if f.severity == "error"]
        if messages:
            rejected[str(path.relative_to(corpus))] = messages
    assert rejected == {path: [message] for path, message in expected.items()}
