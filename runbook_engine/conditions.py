"""Branch and loop conditions: their static check and their evaluation.

A condition is a map, either a comparison ``{Variable: <expr>, <Operator>: operand}`` or a
logical combination ``And: [..]``, ``Or: [..]``, ``Not: {..}`` (nesting allowed). It is
used by ``aws:branch`` choices (with a ``NextStep`` beside it) and ``aws:loop``
``LoopCondition``.

Two leniencies come from real runbooks: ``And``/``Or`` written as a single map instead
of a list is read as a list of one, and a map holding several parts (``Not`` next to
``And``) is read as all of them having to hold. Both are warnings, not errors.

:func:`evaluate` works on a condition whose expressions are already rendered; a
``Variable`` whose reference was undefined still holds its ``{{ ... }}`` text and is
simply compared as that text.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any

from runbook_engine.diagnostics import DocumentPath, Finding
from runbook_engine.inputs import contains_expression, type_name


class OperandKind(Enum):
    TEXT = "a string"
    NUMBER = "a number"
    BOOLEAN = "true or false"


OPERATORS: Mapping[str, OperandKind] = {
    "StringEquals": OperandKind.TEXT,
    "EqualsIgnoreCase": OperandKind.TEXT,
    "StartsWith": OperandKind.TEXT,
    "EndsWith": OperandKind.TEXT,
    "Contains": OperandKind.TEXT,
    "NumericEquals": OperandKind.NUMBER,
    "NumericGreater": OperandKind.NUMBER,
    "NumericLesser": OperandKind.NUMBER,
    "NumericGreaterOrEquals": OperandKind.NUMBER,
    "NumericLesserOrEquals": OperandKind.NUMBER,
    "BooleanEquals": OperandKind.BOOLEAN,
}
LOGICAL = ("And", "Or", "Not")
VARIABLE = "Variable"

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


# --- static check -----------------------------------------------------------------------


def check_condition(condition: Any, *, static: bool) -> list[Finding]:
    """Every problem with ``condition``; paths are relative to the condition itself.

    ``static`` is true for the document as written: operands that hold an expression
    are known only at run time and are not type-checked.
    """
    if not isinstance(condition, Mapping):
        return [Finding((), f"a condition must be a map, not {type_name(condition)}")]
    if not condition:
        return [
            Finding(
                (),
                "a condition must not be empty: give a Variable and an operator, or And, Or or Not",
            )
        ]
    findings: list[Finding] = []
    operators = [key for key in condition if key in OPERATORS]
    for key in condition:
        if key not in OPERATORS and key not in LOGICAL and key != VARIABLE:
            findings.append(Finding((key,), _unknown_operator(str(key)), at_key=True))
    for key in LOGICAL:
        if key in condition:
            findings.extend(_check_logical(key, condition[key], static=static))
    if operators or VARIABLE in condition:
        findings.extend(_check_comparison(condition, operators, static=static))
    parts = [key for key in LOGICAL if key in condition]
    if operators or VARIABLE in condition:
        parts.insert(0, "a comparison")
    if len(parts) > 1:
        findings.append(
            Finding(
                (),
                f"this condition combines {' and '.join(parts)} in one map; they are read as "
                "all having to hold (write them as a list under And)",
                severity="warning",
            )
        )
    return findings


def _unknown_operator(key: str) -> str:
    message = f"unknown operator {key!r} (known: {', '.join([*OPERATORS, *LOGICAL])})"
    by_lower = {name.lower(): name for name in [*OPERATORS, *LOGICAL, VARIABLE]}
    if key.lower() in by_lower:
        return f"{message}; did you mean {by_lower[key.lower()]!r}?"
    close = difflib.get_close_matches(key, [*OPERATORS, *LOGICAL], n=1)
    return f"{message}; did you mean {close[0]!r}?" if close else message


def _check_logical(key: str, value: Any, *, static: bool) -> list[Finding]:
    if key == "Not":
        if isinstance(value, Mapping):
            return _nested(check_condition(value, static=static), (key,))
        return [Finding((key,), f"Not takes one condition (a map), not {type_name(value)}")]
    if isinstance(value, Mapping):
        return [
            Finding(
                (key,),
                f"{key} should be a list of conditions; read as a list of one",
                severity="warning",
            ),
            *_nested(check_condition(value, static=static), (key,)),
        ]
    if not isinstance(value, list | tuple):
        return [Finding((key,), f"{key} must be a list of conditions, not {type_name(value)}")]
    if not value:
        return [Finding((key,), f"{key} needs at least one condition")]
    findings: list[Finding] = []
    for index, item in enumerate(value):
        findings.extend(_nested(check_condition(item, static=static), (key, index)))
    return findings


def _check_comparison(
    condition: Mapping[str, Any], operators: Sequence[str], *, static: bool
) -> list[Finding]:
    if VARIABLE not in condition:
        return [Finding((), f"the condition with {operators[0]} has no Variable")]
    findings: list[Finding] = []
    variable = condition[VARIABLE]
    if static and not isinstance(variable, str):
        findings.append(
            Finding(
                (VARIABLE,),
                f"Variable must be a string such as '{{{{ StepName.Output }}}}', "
                f"not {type_name(variable)}",
            )
        )
    if not operators:
        findings.append(
            Finding(
                (), f"the condition on Variable has no operator (one of {', '.join(OPERATORS)})"
            )
        )
    elif len(operators) > 1:
        findings.append(
            Finding(
                (),
                f"a condition takes one operator, this one has {len(operators)}: "
                f"{', '.join(operators)} (combine them with And)",
            )
        )
    else:
        message = _operand_problem(operators[0], condition[operators[0]], static=static)
        if message:
            findings.append(Finding((operators[0],), message))
    return findings


def _operand_problem(operator: str, operand: Any, *, static: bool) -> str | None:
    if static and contains_expression(operand):
        return None
    kind = OPERATORS[operator]
    if kind is OperandKind.TEXT:
        if isinstance(operand, bool):
            return (
                f"{operator} compares text; write {str(operand).lower()!r} in quotes, "
                "or use BooleanEquals"
            )
        if isinstance(operand, str | int | float):
            return None
    elif kind is OperandKind.NUMBER:
        if _as_number(operand) is not None:
            return None
    elif _as_boolean(operand) is not None:
        return None
    shown = repr(operand) if isinstance(operand, str | int | float | bool) else type_name(operand)
    return f"{operator} needs {kind.value}, not {shown}"


def _nested(findings: list[Finding], prefix: DocumentPath) -> list[Finding]:
    return [Finding((*prefix, *f.path), f.message, f.severity, f.at_key) for f in findings]


# --- evaluation -------------------------------------------------------------------------


def evaluate(condition: Mapping[str, Any]) -> bool:
    """Is the rendered ``condition`` true? Every part of the map has to hold."""
    if not isinstance(condition, Mapping):
        raise ValueError(f"a condition must be a map, not {type_name(condition)}")
    results: list[bool] = []
    if "And" in condition:
        results.append(all(evaluate(c) for c in _as_conditions(condition["And"])))
    if "Or" in condition:
        results.append(any(evaluate(c) for c in _as_conditions(condition["Or"])))
    if "Not" in condition:
        results.append(not evaluate(condition["Not"]))
    for operator in OPERATORS:
        if operator in condition:
            results.append(_compare(operator, condition.get(VARIABLE), condition[operator]))
    return bool(results) and all(results)


def branch_target(choices: Sequence[Mapping[str, Any]], default: str | None) -> str | None:
    """The first true choice's ``NextStep``, else ``default``, else ``None``."""
    for choice in choices:
        condition = {k: v for k, v in choice.items() if k != "NextStep"}
        if evaluate(condition):
            return str(choice["NextStep"])
    return default or None


def _as_conditions(value: Any) -> list[Mapping[str, Any]]:
    return [value] if isinstance(value, Mapping) else list(value)


def _compare(operator: str, value: Any, operand: Any) -> bool:
    if operator == "Contains" and isinstance(value, list | tuple):
        return any(_text(item) == _text(operand) for item in value)  # membership
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]  # a one-element list feeds a scalar comparison
    kind = OPERATORS[operator]
    if kind is OperandKind.NUMBER:
        left, right = _as_number(value), _as_number(operand)
        if left is None or right is None:
            return False
        return {
            "NumericEquals": left == right,
            "NumericGreater": left > right,
            "NumericLesser": left < right,
            "NumericGreaterOrEquals": left >= right,
            "NumericLesserOrEquals": left <= right,
        }[operator]
    if kind is OperandKind.BOOLEAN:
        flag, expected = _as_boolean(value), _as_boolean(operand)
        return flag is not None and flag == expected
    text, wanted = _text(value), _text(operand)
    if operator == "StringEquals":
        return text == wanted
    if operator == "EqualsIgnoreCase":
        return text.casefold() == wanted.casefold()
    if operator == "StartsWith":
        return text.startswith(wanted)
    if operator == "EndsWith":
        return text.endswith(wanted)
    return wanted in text  # Contains on text: substring


def _text(value: Any) -> str:
    """The string form of a value, as interpolation renders it (ssm-reference §3.3)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _as_number(value: Any) -> Decimal | None:
    """Exact decimal: large integers and ``0.1`` written as text compare as written."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    return Decimal(text) if _NUMBER.fullmatch(text) else None


def _as_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None
