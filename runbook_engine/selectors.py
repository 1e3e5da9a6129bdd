"""Step output selectors (the JSONPath subset of SSM Automation) and typed output values.

A custom step output is ``{Name, Selector, Type}``: the selector picks a value out of the
action's response, :func:`convert` turns it into the declared type, and
:func:`to_api_strings` gives the ``list<string>`` form the SSM API shows.

Supported selector syntax (the documented subset, which Jayway JsonPath, the library
behind AWS, also accepts)::

    $                       the root
    .name  ['name']         a member of an object
    ..name                  every ``name`` member at any depth (always a list)
    [n]                     an array index (negative counts from the end)
    [?(@.path OP literal)]  the array elements for which the comparison holds (a list);
                            OP is == != > < >= <=; literal is 'text', a number,
                            true, false or null
    [*]  .*                 every element or member (a list)

A selector without a leading ``$`` is read as ``$.`` + selector, as Jayway does (some
real runbooks write ``PropertySelector: Status``). Once a deep scan, filter or wildcard
appears the selection is a list; a selection that finds nothing (a missing member, an
index out of range, an empty list) is "not found": the output stays undefined and the
step still succeeds (ssm-reference §3.3 rule 5).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from runbook_engine.model import ValueType


class SelectorError(ValueError):
    """A selector that is not valid syntax."""


class OutputTypeError(ValueError):
    """A selected value that cannot become the output's declared type."""


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Member:
    name: str


@dataclass(frozen=True, slots=True)
class _DeepScan:
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclass(frozen=True, slots=True)
class _Wildcard:
    pass


@dataclass(frozen=True, slots=True)
class _Filter:
    path: tuple[_Member | _Index, ...]
    compare: Callable[[Any, Any], bool]
    literal: Any


_Token = _Member | _DeepScan | _Index | _Wildcard | _Filter

_NAME = re.compile(r"[^.\[\]\s()'\"?@=!<>]+")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_QUOTED = re.compile(r"\[\s*(?:'([^']*)'|\"([^\"]*)\")\s*\]")
_FILTER = re.compile(
    r"\[\s*\?\s*\(\s*@((?:\.[^.\[\]\s()=!<>]+|\[\s*-?\d+\s*\])+)\s*"
    r"(==|!=|>=|<=|>|<)\s*"
    r"('[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)\s*\)\s*\]"
)
_WILDCARD = re.compile(r"\[\s*\*\s*\]")
_FILTER_PATH_PART = re.compile(r"\.([^.\[\]\s()=!<>]+)|\[\s*(-?\d+)\s*\]")


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """Order numbers with numbers and text with text; anything else never matches."""

    def check(left: Any, right: Any) -> bool:
        if _is_number(left) and _is_number(right):
            return compare(left, right)
        if isinstance(left, str) and isinstance(right, str):
            return compare(left, right)
        return False

    return check


def _equal(left: Any, right: Any) -> bool:
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    return type(left) is type(right) and bool(left == right)


def _not_equal(left: Any, right: Any) -> bool:
    return not _equal(left, right)


_OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    "==": _equal,
    "!=": _not_equal,
    ">": _ordered(operator.gt),
    "<": _ordered(operator.lt),
    ">=": _ordered(operator.ge),
    "<=": _ordered(operator.le),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _literal(text: str) -> Any:
    if text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    number = float(text)
    return int(number) if re.fullmatch(r"-?\d+", text) else number


def _filter_token(match: re.Match[str]) -> _Filter:
    path: list[_Member | _Index] = []
    for part in _FILTER_PATH_PART.finditer(match.group(1)):
        member, index = part.groups()
        path.append(_Member(member) if member is not None else _Index(int(index)))
    return _Filter(tuple(path), _OPERATORS[match.group(2)], _literal(match.group(3)))


@lru_cache(maxsize=4096)
def _compile(selector: str) -> tuple[_Token, ...]:
    text = selector.strip()
    if not text:
        raise _syntax(selector, "a selector must not be empty; write it like $.Name")
    if not text.startswith("$"):
        text = "$." + text
    tokens: list[_Token] = []
    pos = 1
    while pos < len(text):
        rest = text[pos:]
        if rest.startswith(".."):
            name = _NAME.match(text, pos + 2)
            if name is None:
                raise _syntax(selector, "'..' must be followed by a member name")
            tokens.append(_DeepScan(name.group()))
            pos = name.end()
        elif rest.startswith(".*"):
            tokens.append(_Wildcard())
            pos += 2
        elif rest.startswith("."):
            name = _NAME.match(text, pos + 1)
            if name is None:
                raise _syntax(selector, f"'.' must be followed by a member name at {rest!r}")
            tokens.append(_Member(name.group()))
            pos = name.end()
        elif rest.startswith("["):
            pos = _bracket(selector, text, pos, tokens)
        else:
            raise _syntax(selector, f"unexpected {rest[0]!r} at {rest!r}")
    return tuple(tokens)


def _bracket(selector: str, text: str, pos: int, tokens: list[_Token]) -> int:
    if match := _INDEX.match(text, pos):
        tokens.append(_Index(int(match.group(1))))
    elif match := _QUOTED.match(text, pos):
        name = match.group(1) if match.group(1) is not None else match.group(2)
        tokens.append(_Member(name))
    elif match := _WILDCARD.match(text, pos):
        tokens.append(_Wildcard())
    elif match := _FILTER.match(text, pos):
        tokens.append(_filter_token(match))
    else:
        rest = text[pos:]
        if rest.startswith("[?"):
            if "&&" in rest or "||" in rest:
                raise _syntax(selector, "&& and || are not supported in filters")
            raise _syntax(
                selector,
                "a filter must look like [?(@.path OP literal)] with OP one of "
                "== != > < >= <= and a literal 'text', number, true, false or null",
            )
        if "]" not in rest:
            raise _syntax(selector, f"unclosed '[' at {rest!r}")
        raise _syntax(selector, f"unsupported bracket expression {rest[: rest.index(']') + 1]!r}")
    return match.end()


def _syntax(selector: str, problem: str) -> SelectorError:
    return SelectorError(f"invalid selector {selector!r}: {problem}")


def check_selector(selector: str) -> str | None:
    """The syntax problem with ``selector``, or ``None`` if it is valid."""
    try:
        _compile(selector)
    except SelectorError as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------- evaluation


def _deep_scan(node: Any, name: str, found: list[Any]) -> None:
    if isinstance(node, Mapping):
        for key, child in node.items():
            if key == name:
                found.append(child)
            _deep_scan(child, name, found)
    elif isinstance(node, list | tuple):
        for child in node:
            _deep_scan(child, name, found)


def _lookup(node: Any, path: tuple[_Member | _Index, ...]) -> tuple[bool, Any]:
    for step in path:
        if isinstance(step, _Member):
            if not isinstance(node, Mapping) or step.name not in node:
                return False, None
            node = node[step.name]
        else:
            if not isinstance(node, list | tuple) or not -len(node) <= step.index < len(node):
                return False, None
            node = node[step.index]
    return True, node


def _matches(item: Any, token: _Filter) -> bool:
    found, value = _lookup(item, token.path)
    return found and token.compare(value, token.literal)


def _apply(token: _Token, nodes: list[Any]) -> list[Any]:
    out: list[Any] = []
    for node in nodes:
        if isinstance(token, _Member):
            if isinstance(node, Mapping) and token.name in node:
                out.append(node[token.name])
        elif isinstance(token, _Index):
            if isinstance(node, list | tuple) and -len(node) <= token.index < len(node):
                out.append(node[token.index])
        elif isinstance(token, _DeepScan):
            _deep_scan(node, token.name, out)
        elif isinstance(token, _Wildcard):
            if isinstance(node, Mapping):
                out.extend(node.values())
            elif isinstance(node, list | tuple):
                out.extend(node)
        elif isinstance(node, list | tuple):
            out.extend(item for item in node if _matches(item, token))
        elif isinstance(node, Mapping) and _matches(node, token):
            out.append(node)  # Jayway applies a filter to a single object too
    return out


def select(root: Any, selector: str) -> tuple[bool, Any]:
    """``(True, value)`` for what ``selector`` picks out of ``root``; ``(False, None)``
    when it finds nothing. Raises :class:`SelectorError` for invalid syntax."""
    tokens = _compile(selector)
    nodes = [root]
    definite = True
    for token in tokens:
        nodes = _apply(token, nodes)
        if not isinstance(token, _Member | _Index):
            definite = False
        if not nodes:
            return False, None
    if definite:
        return True, nodes[0]
    return True, nodes


# --------------------------------------------------------------------------- typed values


def as_text(value: Any) -> str:
    """The string form of a value: text as is, integers in decimal, booleans ``true`` /
    ``false``, anything else (lists, maps, null) as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a Boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a String"
    if isinstance(value, Mapping):
        return "a map"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    return "null" if value is None else f"a {type(value).__name__}"


def _mismatch(value: Any, wanted: ValueType) -> OutputTypeError:
    shown = as_text(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return OutputTypeError(f"the selected value {shown} is {_describe(value)}, not {wanted}")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def convert(value: Any, value_type: ValueType) -> Any:
    """``value`` as ``value_type``, with the conversions SSM applies to selected values:
    String -> StringList/Integer/Boolean, Integer/Boolean -> String/StringList, and a
    one-element list -> String/Integer/Boolean. Other mismatches raise
    :class:`OutputTypeError`."""
    scalar_target = value_type in (ValueType.STRING, ValueType.INTEGER, ValueType.BOOLEAN)
    if scalar_target and isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    converted = _CONVERSIONS[value_type](value)
    if converted is _NO_CONVERSION:
        raise _mismatch(value, value_type)
    return converted


_NO_CONVERSION: Any = object()


def _to_string(value: Any) -> Any:
    return as_text(value) if _is_scalar(value) else _NO_CONVERSION


def _to_integer(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return _NO_CONVERSION


def _to_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return _NO_CONVERSION


def _to_string_list(value: Any) -> Any:
    if _is_scalar(value):
        return [as_text(value)]
    if isinstance(value, list | tuple) and all(_is_scalar(v) for v in value):
        return [as_text(v) for v in value]
    return _NO_CONVERSION


def _to_string_map(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else _NO_CONVERSION


def _to_map_list(value: Any) -> Any:
    if isinstance(value, list | tuple) and all(isinstance(v, Mapping) for v in value):
        return [dict(v) for v in value]
    return _NO_CONVERSION


_CONVERSIONS: Mapping[ValueType, Callable[[Any], Any]] = {
    ValueType.STRING: _to_string,
    ValueType.INTEGER: _to_integer,
    ValueType.BOOLEAN: _to_boolean,
    ValueType.STRING_LIST: _to_string_list,
    ValueType.STRING_MAP: _to_string_map,
    ValueType.MAP_LIST: _to_map_list,
}


def to_api_strings(value: Any, value_type: ValueType | None = None) -> list[str]:
    """The ``list<string>`` the SSM API shows for a typed value (Outputs, Parameters,
    Variables): String -> ``[s]``, Integer -> ``["16"]``, Boolean -> ``["true"]``,
    StringList -> its items, StringMap -> ``[json]``, MapList -> one JSON text per map.
    Without a type, the value's own shape decides."""
    if value_type in (ValueType.STRING, ValueType.INTEGER, ValueType.BOOLEAN):
        return [as_text(value)]
    if value_type is ValueType.STRING_MAP:
        return [as_text(value)]
    if isinstance(value, list | tuple):
        return [as_text(item) for item in value]
    return [as_text(value)]
