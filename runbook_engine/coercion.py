"""Start parameters: the wire's lists of strings -> typed values, validated (§1.3.1).

Every problem is collected; any problem means the execution does not start
(:class:`~runbook_engine.errors.ParameterError`, InvalidAutomationExecutionParametersException).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runbook_engine.errors import ParameterError
from runbook_engine.model import Parameter, Runbook, ValueType

DefaultRenderer = Callable[[Parameter], Any]
"""Resolves a parameter's default (``{{ssm:...}}``, ``{{global:...}}``) at start."""

INTEGER = re.compile(r"^[+-]?\d+$")


def wire_form(value: Any) -> list[str]:
    """A value as the API carries it: a list of strings."""
    if isinstance(value, list | tuple):
        return [_text(v) for v in value]
    return [_text(value)]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def resolve_parameters(
    runbook: Runbook,
    supplied: Mapping[str, Any],
    render_default: DefaultRenderer | None = None,
) -> dict[str, Any]:
    """Typed parameter values for a new execution, or :class:`ParameterError`.

    ``supplied`` values may be lists of strings (the API form) or native values
    (library callers); both are coerced to the declared type.
    """
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name in supplied:
        if name not in runbook.parameters:
            declared = ", ".join(sorted(runbook.parameters)) or "none"
            problems.append(
                f"Parameter {name!r} is not declared in the runbook (declared: {declared})"
            )
    for name, param in runbook.parameters.items():
        if name in supplied:
            try:
                value = coerce(param, supplied[name])
            except ValueError as exc:
                problems.append(f"Parameter {name!r}: {exc}")
                continue
        elif param.has_default:
            try:
                value = render_default(param) if render_default else param.default
                value = _default_value(param, value)
            except (ValueError, LookupError) as exc:
                problems.append(f"Parameter {name!r}: default cannot be resolved: {exc}")
                continue
            values[name] = value
            continue  # defaults are not checked against allowedValues/pattern
        else:
            problems.append(f"Parameter {name!r} is required and has no default")
            continue
        problems.extend(f"Parameter {name!r}: {p}" for p in check_constraints(param, value))
        values[name] = value
    if problems:
        raise ParameterError("; ".join(problems))
    return values


def coerce(param: Parameter, raw: Any) -> Any:
    """One supplied value -> the declared type (ValueError says why not)."""
    kind = param.value_type
    items = list(raw) if isinstance(raw, list | tuple) else None
    if kind is ValueType.STRING_LIST:
        if items is None:
            return [_text(raw)]
        return [_text(v) for v in items]
    if kind is ValueType.MAP_LIST:
        return _map_list(raw, items)
    if items is not None:
        if len(items) == 0 and kind is ValueType.STRING:
            return ""
        if len(items) != 1:
            raise ValueError(f"expects one {kind} value, got {len(items)}")
        raw = items[0]
    if kind is ValueType.STRING:
        if isinstance(raw, dict | list):
            raise ValueError(f"expects a String, got {type(raw).__name__}")
        return _text(raw)
    if kind is ValueType.INTEGER:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and INTEGER.match(raw.strip()):
            return int(raw)
        raise ValueError(f"expects an Integer, got {raw!r}")
    if kind is ValueType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise ValueError(f"expects true or false, got {raw!r}")
    if kind is ValueType.STRING_MAP:
        if isinstance(raw, dict):
            return raw
        parsed = _json(raw, "a JSON object")
        if not isinstance(parsed, dict):
            raise ValueError("expects a JSON object")
        return parsed
    raise ValueError(f"unsupported type {kind}")


def _map_list(raw: Any, items: list[Any] | None) -> list[dict[str, Any]]:
    if items is None:
        items = [raw]
    if all(isinstance(i, dict) for i in items):
        return list(items)
    if len(items) == 1 and isinstance(items[0], str):
        parsed = _json(items[0], "a JSON list of objects")
        if isinstance(parsed, dict):
            return [parsed]
        if isinstance(parsed, list) and all(isinstance(i, dict) for i in parsed):
            return parsed
        raise ValueError("expects a JSON list of objects")
    out: list[dict[str, Any]] = []
    for item in items:
        parsed = item if isinstance(item, dict) else _json(item, "a JSON object")
        if not isinstance(parsed, dict):
            raise ValueError("expects one JSON object per item")
        out.append(parsed)
    return out


def _json(text: Any, what: str) -> Any:
    try:
        return json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"expects {what}: {exc.msg}") from exc


def _default_value(param: Parameter, value: Any) -> Any:
    """Defaults are typed document values; JSON text is accepted for maps and lists."""
    if value is None:
        return "" if param.value_type is ValueType.STRING else value
    if param.value_type in (ValueType.STRING_MAP, ValueType.MAP_LIST) and isinstance(value, str):
        return coerce(param, [value]) if value.strip() else value
    if param.value_type is ValueType.STRING_LIST and isinstance(value, str):
        return [v for v in value.split(",")] if value else []
    return value


def check_constraints(param: Parameter, value: Any) -> list[str]:
    """allowedValues, allowedPattern (full match), minItems/maxItems, minChars/maxChars."""
    problems: list[str] = []
    elements: Sequence[Any] = value if param.value_type is ValueType.STRING_LIST else [value]
    if param.allowed_values is not None and param.value_type in (
        ValueType.STRING,
        ValueType.STRING_LIST,
        ValueType.INTEGER,
        ValueType.BOOLEAN,
    ):
        allowed = [_allowed_text(a) for a in param.allowed_values]
        for element in elements:
            if _allowed_text(element) not in allowed:
                problems.append(f"{_text(element)!r} is not one of the allowed values {allowed}")
    for pattern in (param.allowed_pattern, param.implicit_pattern):
        if pattern is None or param.value_type not in (ValueType.STRING, ValueType.STRING_LIST):
            continue
        compiled = _compile(pattern)
        if compiled is None:
            continue
        for element in elements:
            if compiled.fullmatch(_text(element)) is None:
                problems.append(f"{_text(element)!r} does not match the pattern {pattern}")
    if isinstance(value, list):
        if param.min_items is not None and len(value) < param.min_items:
            problems.append(f"needs at least {param.min_items} items, got {len(value)}")
        if param.max_items is not None and len(value) > param.max_items:
            problems.append(f"takes at most {param.max_items} items, got {len(value)}")
    texts = (
        [_text(e) for e in elements]
        if param.value_type in (ValueType.STRING, ValueType.STRING_LIST)
        else [_text(value)]
    )
    for text in texts:
        if param.min_chars is not None and len(text) < param.min_chars:
            problems.append(f"needs at least {param.min_chars} characters")
        if param.max_chars is not None and len(text) > param.max_chars:
            problems.append(f"takes at most {param.max_chars} characters")
    return problems


def _allowed_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _text(value)


def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None
