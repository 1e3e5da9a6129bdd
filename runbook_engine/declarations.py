"""Runbook declarations: parameters, variables, attached files and runbook outputs, parsed
with every problem collected (shared with Command documents, whose parameters have the
same shape)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runbook_engine.diagnostics import Diagnostic, DocumentPath, Severity
from runbook_engine.inputs import type_name
from runbook_engine.model import FileSpec, Parameter, ValueType, Variable, base_type_of
from runbook_engine.source import Source

PARAMETER_KEYS = frozenset(
    {
        "type",
        "description",
        "default",
        "allowedValues",
        "allowedPattern",
        "displayType",
        "minItems",
        "maxItems",
        "minChars",
        "maxChars",
    }
)


class Collector:
    """Accumulates located diagnostics against one source."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.diagnostics: list[Diagnostic] = []

    def error(self, path: DocumentPath, message: str, *, at_key: bool = False) -> None:
        self.add(path, message, "error", at_key=at_key)

    def warning(self, path: DocumentPath, message: str, *, at_key: bool = False) -> None:
        self.add(path, message, "warning", at_key=at_key)

    def add(self, path: DocumentPath, message: str, severity: Severity, *, at_key: bool) -> None:
        self.diagnostics.append(
            self.source.diagnostic(path, message, severity=severity, at_key=at_key)
        )


def text_field(out: Collector, data: Mapping[str, Any], key: str, path: DocumentPath) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        out.error((*path, key), f"{key} must be text, not {type_name(value)}")
        return ""
    return value


def str_or_empty(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_map(out: Collector, value: Any, path: DocumentPath, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        out.error(path, f"{what} must be a map, not {type_name(value)}")
        return {}
    return value


def parse_parameters(out: Collector, value: Any, path: DocumentPath) -> dict[str, Parameter]:
    result: dict[str, Parameter] = {}
    for name, spec in as_map(out, value, path, "parameters").items():
        param = _parameter(out, str(name), spec, (*path, name))
        if param is not None:
            result[str(name)] = param
    return result


def _int_attr(out: Collector, spec: Mapping[str, Any], key: str, path: DocumentPath) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        out.error((*path, key), f"{key} must be an integer")
        return None
    try:
        number = int(value)
    except ValueError:
        out.error((*path, key), f"{key} must be an integer, not {value!r}")
        return None
    if number < 0:
        out.error((*path, key), f"{key} must not be negative")
    return number


def _parameter(out: Collector, name: str, spec: Any, path: DocumentPath) -> Parameter | None:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,50}", name):
        out.error(
            path,
            f"parameter name {name!r} must be 1-50 letters, digits, '_', '-', '.'",
            at_key=True,
        )
    if not isinstance(spec, dict):
        out.error(path, f"parameter {name!r} must be a map, not {type_name(spec)}")
        return None
    for key in spec:
        if key not in PARAMETER_KEYS:
            out.warning((*path, key), f"unknown parameter attribute {key!r}", at_key=True)
    declared = spec.get("type")
    if declared is None:
        out.error(path, f"parameter {name!r} has no type")
        return None
    value_type = base_type_of(str(declared))
    if value_type is None:
        out.error((*path, "type"), f"parameter {name!r} has an unknown type {declared!r}")
        return None
    allowed = spec.get("allowedValues")
    if allowed is not None and not isinstance(allowed, list):
        out.error((*path, "allowedValues"), "allowedValues must be a list")
        allowed = None
    pattern = spec.get("allowedPattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            out.error((*path, "allowedPattern"), "allowedPattern must be a string")
            pattern = None
        else:
            _check_pattern(out, pattern, (*path, "allowedPattern"))
    has_default = "default" in spec
    if has_default:
        _check_default(out, spec["default"], value_type, (*path, "default"), name)
    return Parameter(
        name=name,
        type=str(declared),
        value_type=value_type,
        description=str_or_empty(spec.get("description")),
        default=spec.get("default"),
        has_default=has_default,
        allowed_values=tuple(allowed) if allowed is not None else None,
        allowed_pattern=pattern,
        min_items=_int_attr(out, spec, "minItems", path),
        max_items=_int_attr(out, spec, "maxItems", path),
        min_chars=_int_attr(out, spec, "minChars", path),
        max_chars=_int_attr(out, spec, "maxChars", path),
        path=path,
    )


def _check_pattern(out: Collector, pattern: str, path: DocumentPath) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        # Java regexes (what AWS runs) accept a few things Python's do not.
        out.warning(path, f"allowedPattern is not a valid regular expression here: {exc}")


def _check_default(
    out: Collector, default: Any, value_type: ValueType, path: DocumentPath, name: str
) -> None:
    if isinstance(default, str) and "{{" in default:
        return  # {{ssm:...}} / {{global:...}}: checked with the expressions
    ok = {
        ValueType.STRING: isinstance(default, str | int | float) or default is None,
        ValueType.INTEGER: isinstance(default, int) and not isinstance(default, bool),
        ValueType.BOOLEAN: isinstance(default, bool),
        ValueType.STRING_LIST: isinstance(default, list | str),
        ValueType.STRING_MAP: isinstance(default, dict | str),
        ValueType.MAP_LIST: isinstance(default, list | str),
    }[value_type]
    if value_type is ValueType.BOOLEAN and isinstance(default, str):
        if default.lower() in ("true", "false"):
            out.warning(path, f"default of Boolean parameter {name!r} is written as a string")
            return
    if value_type is ValueType.INTEGER and isinstance(default, str) and default.isdigit():
        out.warning(path, f"default of Integer parameter {name!r} is written as a string")
        return
    if not ok:
        out.error(path, f"default of {value_type} parameter {name!r} is a {type_name(default)}")


def parse_variables(out: Collector, value: Any, path: DocumentPath) -> dict[str, Variable]:
    result: dict[str, Variable] = {}
    for name, spec in as_map(out, value, path, "variables").items():
        vpath = (*path, name)
        if not isinstance(spec, dict):
            out.error(vpath, f"variable {name!r} must be a map")
            continue
        declared = spec.get("type")
        try:
            value_type = ValueType(str(declared))
        except ValueError:
            out.error(
                (*vpath, "type") if declared is not None else vpath,
                f"variable {name!r} needs a type (String, StringList, Integer, Boolean, "
                f"StringMap or MapList), not {declared!r}",
            )
            continue
        if "default" in spec:
            _check_default(out, spec["default"], value_type, (*vpath, "default"), str(name))
        result[str(name)] = Variable(
            name=str(name),
            value_type=value_type,
            default=spec.get("default"),
            description=str(spec.get("description") or ""),
            path=vpath,
        )
    return result


def parse_files(out: Collector, value: Any) -> dict[str, FileSpec]:
    result: dict[str, FileSpec] = {}
    for name, spec in as_map(out, value, ("files",), "files").items():
        fpath = ("files", name)
        if not isinstance(spec, dict):
            out.error(fpath, f"file {name!r} must be a map with checksums")
            continue
        checksums = spec.get("checksums")
        sha = checksums.get("sha256") if isinstance(checksums, dict) else None
        if not isinstance(sha, str):
            out.error(fpath, f"file {name!r} needs checksums.sha256")
        size = spec.get("size")
        result[str(name)] = FileSpec(
            str(name),
            sha if isinstance(sha, str) else None,
            size if isinstance(size, int) else None,
        )
    return result


def parse_outputs(out: Collector, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        out.error(
            ("outputs",), f"outputs must be a list of 'Step.Output' strings, not {type_name(value)}"
        )
        return ()
    result: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or "." not in item:
            out.error(("outputs", index), f"output {item!r} must be written 'StepName.OutputName'")
            continue
        result.append(item)
    return tuple(result)
