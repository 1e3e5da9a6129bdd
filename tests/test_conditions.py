"""Branch/loop conditions: what a document author is told, and which way a branch goes."""

from __future__ import annotations

from typing import Any

import pytest

from runbook_engine.conditions import OPERATORS, branch_target, check_condition, evaluate
from runbook_engine.diagnostics import Finding


def errors(condition: Any, static: bool = True) -> list[tuple[tuple[Any, ...], str]]:
    return [(f.path, f.message) for f in check_condition(condition, static=static)
            if f.severity == "error"]


def warnings(condition: Any) -> list[tuple[tuple[Any, ...], str]]:
    return [(f.path, f.message) for f in check_condition(condition, static=True)
            if f.severity == "warning"]


# --- evaluation: every operator ----------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "operand", "expected"),
    [
        ("StringEquals", "running", "running", True),
        ("StringEquals", "Running", "running", False),
        ("StringEquals", "", "", True),
        ("StringEquals", 16, "16", True),
        ("StringEquals", True, "true", True),
        ("StringEquals", ["only"], "only", True),
        ("EqualsIgnoreCase", "Windows", "WINDOWS", True),
        ("EqualsIgnoreCase", "Windows", "Linux", False),
        ("StartsWith", "i-0abc", "i-", True),
        ("StartsWith", "ami-0abc", "i-", False),
        ("EndsWith", "backup.tar.gz", ".gz", True),
        ("EndsWith", "backup.tar.gz", ".zip", False),
        ("Contains", "isSQLServerInstalled: false", "false", True),
        ("Contains", "nothing here", "false", False),
        ("Contains", ["a", "b", "c"], "b", True),
        ("Contains", ["abc", "def"], "b", False),  # a list is searched by membership
        ("Contains", ["running"], "run", False),
        ("Contains", [], "x", False),
        ("NumericEquals", "5", 5, True),
        ("NumericEquals", 5, 5.0, True),
        ("NumericEquals", "0.1", 0.1, True),
        ("NumericEquals", 9007199254740993, 9007199254740992, False),
        ("NumericGreater", 10, 5, True),
        ("NumericGreater", 5, 5, False),
        ("NumericLesser", "3", 5, True),
        ("NumericLesser", 5, 5, False),
        ("NumericGreaterOrEquals", 5, 5, True),
        ("NumericGreaterOrEquals", 4, 5, False),
        ("NumericLesserOrEquals", 5, 5, True),
        ("NumericLesserOrEquals", 6, "5", False),
        ("NumericEquals", "abc", 5, False),
        ("NumericGreater", "", 0, False),
        ("NumericLesser", True, 5, False),
        ("NumericEquals", [3], 3, True),
        ("BooleanEquals", True, True, True),
        ("BooleanEquals", "true", True, True),
        ("BooleanEquals", "False", False, True),
        ("BooleanEquals", "TRUE", "true", True),
        ("BooleanEquals", "false", True, False),
        ("BooleanEquals", "yes", True, False),
        ("BooleanEquals", 1, True, False),
    ],
)
def test_each_operator_compares_the_rendered_variable(
    operator: str, value: Any, operand: Any, expected: bool
) -> None:
    assert evaluate({"Variable": value, operator: operand}) is expected


def test_every_documented_operator_is_known() -> None:
    assert set(OPERATORS) == {
        "StringEquals", "EqualsIgnoreCase", "StartsWith", "EndsWith", "Contains",
        "NumericEquals", "NumericGreater", "NumericLesser", "NumericGreaterOrEquals",
        "NumericLesserOrEquals", "BooleanEquals",
    }


def test_an_undefined_output_compares_as_its_literal_text() -> None:
    left_alone = "{{ getSnapshotsByStartTime.noSnapshotFound }}"
    condition = {"Not": {"Variable": left_alone, "StringEquals": "NoSnapshotFound"}}
    assert evaluate(condition) is True
    assert evaluate({"Variable": left_alone, "StringEquals": left_alone}) is True
    assert evaluate({"Variable": left_alone, "NumericEquals": 0}) is False


def test_maps_and_lists_compare_as_compact_json() -> None:
    assert evaluate({"Variable": {"a": 1}, "StringEquals": '{"a":1}'}) is True
    assert evaluate({"Variable": ["a", "b"], "StringEquals": '["a","b"]'}) is True


def test_and_or_not_and_nesting() -> None:
    yes = {"Variable": "a", "StringEquals": "a"}
    no = {"Variable": "a", "StringEquals": "b"}
    assert evaluate({"And": [yes, yes]}) is True
    assert evaluate({"And": [yes, no]}) is False
    assert evaluate({"Or": [no, yes]}) is True
    assert evaluate({"Or": [no, no]}) is False
    assert evaluate({"Not": no}) is True
    assert evaluate({"Not": yes}) is False
    assert evaluate({"And": [{"Or": [no, yes]}, {"Not": {"And": [yes, no]}}]}) is True


def test_a_map_with_several_parts_needs_all_of_them() -> None:
    """As in a real runbook: ``Not`` beside a single-map ``And`` in one choice."""
    valid_create = {
        "Not": {"Variable": "true", "BooleanEquals": False},
        "And": {"Variable": "Create", "StringEquals": "Create"},
    }
    assert evaluate(valid_create) is True
    update = {"Variable": "Update", "StringEquals": "Create"}
    assert evaluate({**valid_create, "And": update}) is False


def test_evaluate_refuses_a_condition_that_is_not_a_map() -> None:
    with pytest.raises(ValueError, match="a condition must be a map, not StringList"):
        evaluate(["x"])  # type: ignore[arg-type]


# --- branch_target ------------------------------------------------------------------------


CHOICES = [
    {"NextStep": "runWindows", "Variable": "Linux", "StringEquals": "Windows"},
    {"NextStep": "runLinux", "Variable": "Linux", "StringEquals": "Linux"},
    {"NextStep": "neverReached", "Variable": "Linux", "StartsWith": "L"},
]


def test_the_first_true_choice_wins() -> None:
    assert branch_target(CHOICES, "Sleep") == "runLinux"


def test_no_true_choice_goes_to_default_else_none() -> None:
    assert branch_target(CHOICES[:1], "Sleep") == "Sleep"
    assert branch_target(CHOICES[:1], None) is None
    assert branch_target(CHOICES[:1], "") is None


# --- static check: valid conditions ------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        {"Variable": "{{ OSName }}", "StringEquals": "Windows"},
        {"Variable": "{{ Count }}", "NumericGreater": 3},
        {"Variable": "{{ Count }}", "NumericLesser": "3.5"},
        {"Variable": "{{ Count }}", "NumericEquals": "{{ Limit }}"},
        {"Variable": "{{ Flag }}", "BooleanEquals": True},
        {"Variable": "{{ Flag }}", "BooleanEquals": "false"},
        {"Variable": "{{ Name }}", "StringEquals": 42},
        {"Or": [{"Variable": "{{ A }}", "StringEquals": "no"},
                {"Variable": "{{ A }}", "StringEquals": "witness"}]},
        {"And": [{"Not": {"Variable": "{{ B }}", "StringEquals": "yes"}},
                 {"Not": {"Variable": "{{ C }}", "Contains": "full"}}]},
    ],
)
def test_valid_conditions_have_no_findings(condition: dict[str, Any]) -> None:
    assert check_condition(condition, static=True) == []


# --- static check: every error ------------------------------------------------------------


def test_unknown_operator_is_named_with_a_suggestion() -> None:
    found = check_condition({"Variable": "{{ x }}", "StringEqual": "a"}, static=True)
    assert found[0] == Finding(
        ("StringEqual",),
        "unknown operator 'StringEqual' (known: StringEquals, EqualsIgnoreCase, StartsWith, "
        "EndsWith, Contains, NumericEquals, NumericGreater, NumericLesser, "
        "NumericGreaterOrEquals, NumericLesserOrEquals, BooleanEquals, And, Or, Not); "
        "did you mean 'StringEquals'?",
        at_key=True,
    )


def test_unknown_operator_with_the_wrong_case() -> None:
    assert errors({"Variable": "{{ x }}", "booleanEquals": True})[0][1].endswith(
        "did you mean 'BooleanEquals'?"
    )


def test_missing_variable() -> None:
    assert errors({"StringEquals": "a"}) == [
        ((), "the condition with StringEquals has no Variable")
    ]


def test_variable_without_operator() -> None:
    assert errors({"Variable": "{{ x }}"}) == [
        ((), "the condition on Variable has no operator (one of StringEquals, EqualsIgnoreCase, "
             "StartsWith, EndsWith, Contains, NumericEquals, NumericGreater, NumericLesser, "
             "NumericGreaterOrEquals, NumericLesserOrEquals, BooleanEquals)")
    ]


def test_more_than_one_operator() -> None:
    assert errors({"Variable": "{{ x }}", "StringEquals": "a", "StartsWith": "b"}) == [
        ((), "a condition takes one operator, this one has 2: StringEquals, StartsWith "
             "(combine them with And)")
    ]


@pytest.mark.parametrize(
    ("operator", "operand", "message"),
    [
        ("NumericEquals", "abc", "NumericEquals needs a number, not 'abc'"),
        ("NumericGreater", True, "NumericGreater needs a number, not True"),
        ("NumericLesser", [1], "NumericLesser needs a number, not StringList"),
        ("BooleanEquals", "yes", "BooleanEquals needs true or false, not 'yes'"),
        ("BooleanEquals", 1, "BooleanEquals needs true or false, not 1"),
        ("StringEquals", ["a"], "StringEquals needs a string, not StringList"),
        ("Contains", {"a": "b"}, "Contains needs a string, not StringMap"),
        ("StartsWith", None, "StartsWith needs a string, not null"),
        ("StringEquals", True,
         "StringEquals compares text; write 'true' in quotes, or use BooleanEquals"),
    ],
)
def test_operand_of_the_wrong_literal_type(operator: str, operand: Any, message: str) -> None:
    assert errors({"Variable": "{{ x }}", operator: operand}) == [((operator,), message)]


def test_operands_holding_expressions_are_checked_only_when_rendered() -> None:
    condition = {"Variable": "{{ x }}", "NumericEquals": "{{ limit }}"}
    assert errors(condition, static=True) == []
    assert errors(condition, static=False) == [
        (("NumericEquals",), "NumericEquals needs a number, not '{{ limit }}'")
    ]


def test_variable_must_be_text_in_the_document() -> None:
    assert errors({"Variable": 5, "NumericEquals": 5}) == [
        (("Variable",), "Variable must be a string such as '{{ StepName.Output }}', not Integer")
    ]
    assert errors({"Variable": 5, "NumericEquals": 5}, static=False) == []


@pytest.mark.parametrize("key", ["And", "Or"])
def test_and_or_must_be_lists(key: str) -> None:
    assert errors({key: "x"}) == [((key,), f"{key} must be a list of conditions, not String")]
    assert errors({key: []}) == [((key,), f"{key} needs at least one condition")]


def test_not_takes_one_condition() -> None:
    assert errors({"Not": [{"Variable": "a", "StringEquals": "b"}]}) == [
        (("Not",), "Not takes one condition (a map), not MapList")
    ]


def test_conditions_that_are_not_maps_or_empty() -> None:
    assert errors("x") == [((), "a condition must be a map, not String")]
    assert errors({}) == [
        ((), "a condition must not be empty: give a Variable and an operator, or And, Or or Not")
    ]


def test_nested_paths_point_at_the_problem() -> None:
    condition = {"And": [{"Variable": "{{ a }}", "StringEquals": "x"},
                         {"Not": {"Variable": "{{ b }}", "NumericEquals": "many"}}]}
    assert errors(condition) == [
        (("And", 1, "Not", "NumericEquals"), "NumericEquals needs a number, not 'many'")
    ]


def test_single_map_under_and_and_several_parts_are_warnings() -> None:
    condition = {
        "Not": {"Variable": "{{ v.IsValid }}", "BooleanEquals": False},
        "And": {"Variable": "{{ v.Operation }}", "StringEquals": "Create"},
    }
    assert errors(condition) == []
    assert warnings(condition) == [
        (("And",), "And should be a list of conditions; read as a list of one"),
        ((), "this condition combines And and Not in one map; they are read as all having to "
             "hold (write them as a list under And)"),
    ]
