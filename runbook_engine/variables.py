"""Runbook variables (ssm-reference §1.4, §4.23): how ``aws:updateVariable`` names one and
which values a declared type accepts.

Pure: the action uses :func:`variable_name` to read its ``Name`` input, and the scheduler
uses :func:`check_variable_value` before it stores a new value, so neither has to import
the other.

Type rules: the value's type must equal the declared type, with no conversions; String
1..512 characters; StringList 0..50 items of text; MapList at most 200 maps; map keys
1..50 characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runbook_engine.inputs import type_name
from runbook_engine.model import ValueType

NAME_FORM = re.compile(r"^\s*variable:\s*([^\s{}:]+)\s*$")
MAX_STRING = 512
MAX_STRING_LIST = 50
MAX_MAP_LIST = 200
MAX_KEY = 50


def variable_name(name: str) -> str | None:
    """``"variable:retries"`` -> ``"retries"``; None when not in that form."""
    match = NAME_FORM.match(name)
    return match.group(1) if match else None


def check_variable_value(value_type: str, value: Any) -> str | None:
    """Why ``value`` cannot be stored in a variable declared ``value_type``, or None."""
    try:
        declared = ValueType(value_type)
    except ValueError:
        return f"unknown variable type {value_type!r}"
    actual = type_name(value)
    if declared == ValueType.BOOLEAN:
        return None if isinstance(value, bool) else _mismatch(declared, actual)
    if declared == ValueType.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return _mismatch(declared, actual)
    if declared == ValueType.STRING:
        if not isinstance(value, str):
            return _mismatch(declared, actual)
        if not 1 <= len(value) <= MAX_STRING:
            return f"a String variable holds 1 to {MAX_STRING} characters, not {len(value)}"
        return None
    if declared == ValueType.STRING_LIST:
        if not isinstance(value, list):
            return _mismatch(declared, actual)
        odd = next((item for item in value if not isinstance(item, str)), None)
        if odd is not None:
            return f"a StringList variable holds text only, not {odd!r} ({type_name(odd)})"
        if len(value) > MAX_STRING_LIST:
            return f"a StringList variable holds at most {MAX_STRING_LIST} items, not {len(value)}"
        return None
    if declared == ValueType.STRING_MAP:
        if not isinstance(value, Mapping):
            return _mismatch(declared, actual)
        return _check_keys(value)
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        return _mismatch(declared, actual)
    if len(value) > MAX_MAP_LIST:
        return f"a MapList variable holds at most {MAX_MAP_LIST} maps, not {len(value)}"
    for item in value:
        problem = _check_keys(item)
        if problem:
            return problem
    return None


def _mismatch(declared: ValueType, actual: str) -> str:
    return f"the variable is declared {declared}, but the value is {actual} (no conversion is made)"


def _check_keys(mapping: Mapping[Any, Any]) -> str | None:
    for key in mapping:
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY:
            return f"map keys must be 1 to {MAX_KEY} characters, not {key!r}"
    return None
