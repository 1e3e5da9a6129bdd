"""Action input schemas: what each action accepts, checked on literal and rendered inputs.

An action module declares an :class:`ActionSchema`. The validator checks the inputs as
written in the document (``static=True``: values that are whole ``{{ }}`` expressions
have no known type yet and are skipped), and the scheduler checks the rendered inputs
again right before the action runs (failure stage ``InputValidation``), after
:func:`normalize_inputs` has unwrapped one-element lists where a scalar is expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runbook_engine.diagnostics import DocumentPath, Finding
from runbook_engine.model import ValueType

ANY = "Any"

_WHOLE_EXPRESSION = re.compile(r"^\s*\{\{[^{}]*\}\}\s*$")


def is_dynamic(value: Any) -> bool:
    """A string that is exactly one ``{{ }}`` expression: its type is known only at run time."""
    return isinstance(value, str) and _WHOLE_EXPRESSION.match(value) is not None


def contains_expression(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, Mapping):
        return any(contains_expression(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_expression(v) for v in value)
    return False


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, Mapping):
        return "StringMap"
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, Mapping) for v in value):
            return "MapList"
        return "StringList"
    if value is None:
        return "null"
    return type(value).__name__


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def matches_type(value: Any, expected: str, *, static: bool) -> bool:
    """Does ``value`` fit ``expected``? Whole expressions fit anything when ``static``."""
    if static and is_dynamic(value):
        return True
    if expected == ANY:
        return True
    if expected == ValueType.STRING:
        # Numbers are written bare for String inputs throughout AWS's own runbooks.
        return _is_scalar(value)
    if expected == ValueType.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            return True
        return isinstance(value, str) and bool(re.fullmatch(r"[+-]?\d+", value.strip()))
    if expected == ValueType.BOOLEAN:
        return isinstance(value, bool) or (
            isinstance(value, str) and value.strip().lower() in ("true", "false")
        )
    if expected == ValueType.STRING_LIST:
        if not isinstance(value, list | tuple):
            return False
        return all(_is_scalar(v) or (static and contains_expression(v)) for v in value)
    if expected == ValueType.STRING_MAP:
        return isinstance(value, Mapping)
    if expected == ValueType.MAP_LIST:
        if not isinstance(value, list | tuple):
            return False
        return all(isinstance(v, Mapping) or (static and is_dynamic(v)) for v in value)
    raise ValueError(f"unknown input type {expected!r}")


@dataclass(frozen=True, slots=True)
class Input:
    """One declared input of an action."""

    types: tuple[str, ...]
    required: bool = False
    allowed: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_items: int | None = None
    description: str = ""

    @property
    def scalar(self) -> bool:
        return all(
            t in (ValueType.STRING, ValueType.INTEGER, ValueType.BOOLEAN) for t in self.types
        )


def field_(
    *types: str,
    required: bool = False,
    allowed: Sequence[str] | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    max_items: int | None = None,
    description: str = "",
) -> Input:
    """Shorthand used by action modules: ``field_("String", required=True)``."""
    return Input(
        types=tuple(types) or (ANY,),
        required=required,
        allowed=tuple(allowed) if allowed is not None else None,
        minimum=minimum,
        maximum=maximum,
        max_items=max_items,
        description=description,
    )


Validator = Callable[[Mapping[str, Any], bool], list[Finding]]
"""An extra check: (inputs, static) -> findings with paths relative to ``inputs``."""


@dataclass(frozen=True)
class ActionSchema:
    inputs: Mapping[str, Input]
    extra_inputs: bool = False  # e.g. aws:executeAwsApi passes the rest to the API
    exactly_one_of: tuple[tuple[str, ...], ...] = ()
    at_most_one_of: tuple[tuple[str, ...], ...] = ()
    validators: tuple[Validator, ...] = ()
    outputs: Mapping[str, ValueType] = field(default_factory=dict)
    default_timeout: int | None = None  # seconds, when the step sets none
    max_timeout: int | None = None  # a larger timeoutSeconds is rejected, never clamped
    on_cancel_allowed: bool = True  # may the step carry onCancel (not aws:loop, updateVariable)
    cancel_target_allowed: bool = True  # may the step be an onCancel target

    def check(self, inputs: Any, *, static: bool) -> list[Finding]:
        """Every problem with ``inputs``; paths are relative to the inputs map."""
        if not isinstance(inputs, Mapping):
            return [Finding((), f"inputs must be a map, not {type_name(inputs)}")]
        findings: list[Finding] = []
        for name, spec in self.inputs.items():
            if spec.required and name not in inputs:
                findings.append(Finding((), f"missing required input {name!r}"))
        for name, value in inputs.items():
            declared = self.inputs.get(name)
            if declared is None:
                if not self.extra_inputs:
                    known = ", ".join(sorted(self.inputs)) or "none"
                    findings.append(
                        Finding((name,), f"unknown input {name!r} (known: {known})", at_key=True)
                    )
                continue
            findings.extend(_check_value(name, value, declared, static=static))
        for group in self.exactly_one_of:
            present = [n for n in group if n in inputs]
            if len(present) != 1:
                findings.append(Finding((), f"exactly one of {', '.join(group)} is required"))
        for group in self.at_most_one_of:
            present = [n for n in group if n in inputs]
            if len(present) > 1:
                findings.append(Finding((), f"at most one of {', '.join(group)} may be given"))
        if not findings:
            for validator in self.validators:
                findings.extend(validator(inputs, static))
        return findings


def _check_value(name: str, value: Any, spec: Input, *, static: bool) -> list[Finding]:
    path: DocumentPath = (name,)
    if not any(matches_type(value, t, static=static) for t in spec.types):
        expected = " or ".join(spec.types)
        return [Finding(path, f"input {name!r} must be {expected}, not {type_name(value)}")]
    if static and contains_expression(value):
        return []
    findings: list[Finding] = []
    if spec.allowed is not None and _is_scalar(value) and str(value) not in spec.allowed:
        findings.append(
            Finding(path, f"input {name!r} must be one of {', '.join(spec.allowed)}, not {value!r}")
        )
    number = _as_int(value)
    if number is not None and ValueType.INTEGER in spec.types:
        if spec.minimum is not None and number < spec.minimum:
            findings.append(Finding(path, f"input {name!r} must be at least {spec.minimum}"))
        if spec.maximum is not None and number > spec.maximum:
            findings.append(Finding(path, f"input {name!r} must be at most {spec.maximum}"))
    if spec.max_items is not None and isinstance(value, list | tuple):
        if len(value) > spec.max_items:
            findings.append(Finding(path, f"input {name!r} takes at most {spec.max_items} items"))
    return findings


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    return None


def normalize_inputs(schema: ActionSchema, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Rendered inputs shaped for the action: one-element lists unwrap into scalar inputs,
    numeric text becomes int for Integer-only inputs, ``"true"`` becomes ``True``."""
    out: dict[str, Any] = {}
    for name, value in inputs.items():
        spec = schema.inputs.get(name)
        if spec is not None:
            value = _normalize(value, spec)
        out[name] = value
    return out


def _normalize(value: Any, spec: Input) -> Any:
    if spec.scalar and isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if spec.types == (ValueType.INTEGER,):
        number = _as_int(value)
        if number is not None:
            return number
    if spec.types == (ValueType.BOOLEAN,) and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    if (
        spec.types == (ValueType.STRING,)
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return str(value)
    return value
