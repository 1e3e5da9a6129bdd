"""Validation never crashes: whatever the text, ``validate_text`` answers with diagnostics.

Property tests mutate real corpus documents (delete keys, swap value types, insert garbage,
truncate or splice the text) and generate runbook-shaped documents with random jumps, and
check that every diagnostic points at a real line and column (>= 1). Bounded example
counts and a per-example deadline keep the whole file to a few seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook_engine.diagnostics import DocumentPath
from runbook_engine.inputs import ActionSchema
from runbook_engine.validation import ValidationReport, validate_text

ACTIONS = ("aws:sleep", "aws:branch", "aws:loop", "aws:pause", "aws:executeAwsApi")
PERMISSIVE = {name: ActionSchema(inputs={}, extra_inputs=True) for name in ACTIONS}

FUZZ = settings(
    max_examples=60,
    deadline=2000,  # milliseconds per example; a runaway check fails instead of hanging
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Document = tuple[str, str]  # path, text


@pytest.fixture(scope="session")
def documents(corpus: Path) -> list[Document]:
    paths = sorted(
        p
        for kind in ("automation", "command")
        for p in (corpus / kind).rglob("*")
        if p.suffix in (".yaml", ".yml", ".json")
    )
    assert len(paths) > 300
    return [(str(p), p.read_text(encoding="utf-8")) for p in paths]


def assert_located(report: ValidationReport) -> None:
    for diagnostic in report.diagnostics:
        assert diagnostic.line >= 1, diagnostic
        assert diagnostic.column >= 1, diagnostic
        assert diagnostic.message


def check(text: str, path: str, permissive: bool) -> None:
    report = validate_text(text, path, PERMISSIVE if permissive else None)
    assert_located(report)


# -- values ------------------------------------------------------------------------------

KEYS = (
    "schemaVersion", "mainSteps", "parameters", "outputs", "name", "action", "inputs",
    "nextStep", "onFailure", "onCancel", "isEnd", "isCritical", "maxAttempts",
    "timeoutSeconds", "Choices", "Default", "NextStep", "Variable", "StringEquals", "And",
    "Or", "Not", "Steps", "type", "default", "Selector", "Type",
)  # fmt: skip
GARBAGE = ("{", "[", ":", "- ", "\t", '"', "&a", "*a", "? ", "!!python/object:x", "\x00")
SPECIAL_TEXT = (
    "{{", "}}", "{{ A.Out }}", "{{ global:REGION }}", "{{ssm:/x}}", "step:A", "step:",
    "Abort", "Continue", "PT1S", "0.3", "2.2", "true", "aws:sleep", "$.Payload", "",
)  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(SPECIAL_TEXT),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=10))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=12,
)


# -- mutations of real documents --------------------------------------------------------


def paths_in(data: Any, path: DocumentPath = ()) -> Iterator[DocumentPath]:
    yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths_in(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from paths_in(value, (*path, index))


def parent_of(data: Any, path: DocumentPath) -> Any:
    for element in path[:-1]:
        data = data[element]
    return data


def dump(data: Any, path: str) -> str:
    if path.endswith(".json"):
        return json.dumps(data, indent=2, default=str)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@FUZZ
@given(data=st.data())
def test_structural_mutations_of_corpus_documents(
    documents: list[Document], data: st.DataObject
) -> None:
    path, text = data.draw(st.sampled_from(documents), label="document")
    document = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        targets = [p for p in paths_in(document) if p]
        if not targets:
            break
        target = data.draw(st.sampled_from(targets), label="path")
        parent = parent_of(document, target)
        operation = data.draw(st.sampled_from(["delete", "replace", "insert"]), label="op")
        if operation == "delete":
            del parent[target[-1]]
        elif operation == "replace":
            parent[target[-1]] = data.draw(values, label="value")
        elif isinstance(parent, list):
            parent.insert(data.draw(st.integers(0, len(parent))), data.draw(values))
        else:
            parent[data.draw(keys, label="key")] = data.draw(values, label="value")
    check(dump(document, path), path, data.draw(st.booleans(), label="permissive"))


@FUZZ
@given(data=st.data())
def test_text_mutations_of_corpus_documents(documents: list[Document], data: st.DataObject) -> None:
    path, text = data.draw(st.sampled_from(documents), label="document")
    cut = data.draw(st.integers(0, len(text)), label="at")
    operation = data.draw(st.sampled_from(["truncate", "splice", "drop"]), label="op")
    if operation == "truncate":
        text = text[:cut]
    elif operation == "splice":
        garbage = data.draw(st.one_of(st.text(max_size=20), st.sampled_from(GARBAGE)))
        text = text[:cut] + garbage + text[cut:]
    else:
        text = text[:cut] + text[cut + data.draw(st.integers(1, 40)) :]
    check(text, path, data.draw(st.booleans(), label="permissive"))


@FUZZ
@given(text=st.text(max_size=300), as_json=st.booleans())
def test_random_text(text: str, as_json: bool) -> None:
    check(text, "random.json" if as_json else "random.yaml", permissive=False)


@FUZZ
@given(document=values, as_json=st.booleans())
def test_random_yaml_and_json_values(document: Any, as_json: bool) -> None:
    path = "random.json" if as_json else "random.yaml"
    check(dump(document, path), path, permissive=True)


# -- generated runbooks: random jumps, branches and loops --------------------------------

STEP_NAMES = st.sampled_from(["A", "B", "C", "D", "L", "bad-name", ""])
jumps = st.one_of(STEP_NAMES, st.builds(lambda n: f"step:{n}", STEP_NAMES), values)
conditions = st.recursive(
    st.fixed_dictionaries(
        {"Variable": st.sampled_from(["{{ A.Out }}", "{{ P }}", "x"])},
        optional={"StringEquals": scalars, "NumericGreater": scalars, "Contains": scalars},
    ),
    lambda inner: st.one_of(
        st.builds(lambda c: {"And": c}, st.lists(inner, max_size=3)),
        st.builds(lambda c: {"Or": c}, st.lists(inner, max_size=3)),
        st.builds(lambda c: {"Not": c}, inner),
    ),
    max_leaves=4,
)
choices = st.builds(lambda target, cond: {"NextStep": target, **cond}, jumps, conditions)


def step_strategy(body: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    inputs = st.fixed_dictionaries(
        {},
        optional={
            "Choices": st.one_of(st.lists(choices, max_size=3), values),
            "Default": jumps,
            "Steps": body,
            "Duration": st.sampled_from(["PT1S", "P1Y", "nonsense", "{{ P }}"]),
            "LoopCondition": conditions,
            "MaxIterations": scalars,
        },
    )
    return st.fixed_dictionaries(
        {"name": STEP_NAMES, "action": st.sampled_from([*ACTIONS, "aws:bogus", "nope"])},
        optional={
            "inputs": st.one_of(inputs, values),
            "nextStep": jumps,
            "onFailure": jumps,
            "onCancel": jumps,
            "isEnd": st.one_of(st.booleans(), scalars),
            "maxAttempts": scalars,
            "timeoutSeconds": scalars,
        },
    )


loop_bodies = st.lists(step_strategy(st.just([])), max_size=3)
runbooks = st.fixed_dictionaries(
    {
        "schemaVersion": st.sampled_from(["0.3", "0.3", "2.2", 0.3]),
        "mainSteps": st.lists(step_strategy(loop_bodies), max_size=6),
    },
    optional={"parameters": st.just({"P": {"type": "String", "default": "x"}})},
)


@FUZZ
@given(document=runbooks, as_json=st.booleans(), permissive=st.booleans())
def test_generated_runbooks_with_random_jumps(
    document: dict[str, Any], as_json: bool, permissive: bool
) -> None:
    path = "generated.json" if as_json else "generated.yaml"
    check(dump(document, path), path, permissive)
