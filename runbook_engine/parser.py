"""Parsed data -> :class:`~runbook_engine.model.Runbook`, collecting every structural problem.

The parser never stops at the first problem: it records a located diagnostic and goes
on, so that one run of ``runbook validate`` lists everything wrong with a document.
Checks that need the whole runbook (expressions, the step graph) live in their own
modules and are combined in :mod:`runbook_engine.validation`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runbook_engine.declarations import (
    Collector,
    parse_files,
    parse_outputs,
    parse_parameters,
    parse_variables,
    str_or_empty,
    text_field,
)
from runbook_engine.diagnostics import Diagnostic, DocumentPath
from runbook_engine.inputs import ActionSchema, type_name
from runbook_engine.model import (
    ABORT,
    LOOP,
    OutputSpec,
    Runbook,
    Step,
    ValueType,
)
from runbook_engine.selectors import check_selector
from runbook_engine.source import Source

TOP_LEVEL_KEYS = frozenset(
    {
        "schemaVersion",
        "description",
        "assumeRole",
        "parameters",
        "variables",
        "mainSteps",
        "outputs",
        "files",
    }
)
# Change Manager templates (DocumentType Automation.ChangeTemplate) carry these too.
CHANGE_TEMPLATE_KEYS = frozenset(
    {"templateInformation", "emergencyChange", "autoApprovable", "executableRunBooks"}
)
STEP_KEYS = frozenset(
    {
        "name",
        "action",
        "inputs",
        "description",
        "maxAttempts",
        "timeoutSeconds",
        "onFailure",
        "onCancel",
        "isEnd",
        "nextStep",
        "isCritical",
        "outputs",
    }
)
STEP_NAME = re.compile(r"^[a-zA-Z0-9_]+$")
ACTION_NAME = re.compile(r"^aws:[a-zA-Z]{3,25}$")
ON_FAILURE = re.compile(r"^(Abort|Continue|step:[A-Za-z0-9_]+)$")
ON_CANCEL = re.compile(r"^(Abort|step:[A-Za-z0-9_]+)$")


def parse_runbook(
    source: Source, schemas: Mapping[str, ActionSchema], name: str
) -> tuple[Runbook | None, list[Diagnostic]]:
    """Build the runbook; ``None`` when the document is not even shaped like one."""
    out = Collector(source)
    for path, _mark in source.duplicate_keys:
        out.warning(path, f"duplicate key {path[-1]!r}: the last one is used", at_key=True)
    data = source.data
    if not isinstance(data, dict):
        out.error((), f"a runbook must be a map at the top level, not {type_name(data)}")
        return None, out.diagnostics
    version = data.get("schemaVersion")
    if version is None:
        out.error((), "missing required key 'schemaVersion'")
    elif str(version) != "0.3":
        out.error(("schemaVersion",), f"schemaVersion must be '0.3' for a runbook, not {version!r}")
    for key in data:
        if key not in TOP_LEVEL_KEYS and key not in CHANGE_TEMPLATE_KEYS:
            out.error((key,), f"unknown top-level key {key!r}", at_key=True)
    description = text_field(out, data, "description", ())
    assume_role = data.get("assumeRole")
    if assume_role is not None and not isinstance(assume_role, str):
        out.error(("assumeRole",), "assumeRole must be a string")
        assume_role = None
    parameters = parse_parameters(out, data.get("parameters"), ("parameters",))
    variables = parse_variables(out, data.get("variables"), ("variables",))
    files = parse_files(out, data.get("files"))
    steps: tuple[Step, ...] = ()
    if "mainSteps" not in data:
        out.error((), "missing required key 'mainSteps'")
    else:
        steps = _steps(out, data["mainSteps"], ("mainSteps",), schemas)
    outputs = parse_outputs(out, data.get("outputs"))
    runbook = Runbook(
        name=name,
        steps=steps,
        schema_version="0.3",
        description=description,
        assume_role=assume_role,
        parameters=parameters,
        variables=variables,
        outputs=outputs,
        files=files,
        document_type="Automation.ChangeTemplate"
        if any(k in data for k in CHANGE_TEMPLATE_KEYS)
        else "Automation",
        source_path=source.path,
    )
    _check_names(out, runbook)
    return runbook, out.diagnostics


def _steps(
    out: Collector, value: Any, path: DocumentPath, schemas: Mapping[str, ActionSchema]
) -> tuple[Step, ...]:
    if not isinstance(value, list):
        out.error(path, f"{path[-1]} must be a list of steps, not {type_name(value)}")
        return ()
    if not value:
        out.error(path, f"{path[-1]} must not be empty")
        return ()
    steps: list[Step] = []
    for index, item in enumerate(value):
        step = _step(out, item, (*path, index), schemas)
        if step is not None:
            steps.append(step)
    return tuple(steps)


def _bool_prop(out: Collector, raw: Mapping[str, Any], key: str, path: DocumentPath) -> bool | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        out.warning((*path, key), f"{key} is written as a string; use true or false")
        return value.strip().lower() == "true"
    out.error((*path, key), f"{key} must be true or false, not {value!r}")
    return None


def _int_prop(
    out: Collector, raw: Mapping[str, Any], key: str, path: DocumentPath, minimum: int
) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        out.warning((*path, key), f"{key} is written as a string; use a number")
        number = int(value)
    if number is None:
        out.error((*path, key), f"{key} must be an integer, not {value!r}")
        return None
    if number < minimum:
        out.error((*path, key), f"{key} must be at least {minimum}, not {number}")
        return None
    return number


def _step(
    out: Collector, raw: Any, path: DocumentPath, schemas: Mapping[str, ActionSchema]
) -> Step | None:
    if not isinstance(raw, dict):
        out.error(path, f"a step must be a map, not {type_name(raw)}")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        out.error(path, "step has no name")
        name = f"<step {path[-1]}>"
    elif not STEP_NAME.match(name):
        out.error((*path, "name"), f"step name {name!r} may only hold letters, digits and '_'")
    for key in raw:
        if key not in STEP_KEYS:
            out.error((*path, key), f"step {name}: unknown property {key!r}", at_key=True)
    action = raw.get("action")
    schema: ActionSchema | None = None
    if not isinstance(action, str):
        out.error(path, f"step {name}: missing required property 'action'")
        action = ""
    elif action not in schemas:
        if ACTION_NAME.match(action):
            out.error((*path, "action"), f"unknown action {action}")
        else:
            out.error((*path, "action"), f"unknown action {action} (actions look like aws:name)")
    else:
        schema = schemas[action]
    inputs = raw.get("inputs")
    if inputs is None:
        if "inputs" not in raw:
            out.error(path, f"step {name}: missing required property 'inputs'")
        inputs = {}
    if not isinstance(inputs, dict):
        out.error((*path, "inputs"), f"step {name}: inputs must be a map, not {type_name(inputs)}")
        inputs = {}
    if schema is not None:
        for finding in schema.check(inputs, static=True):
            out.add(
                (*path, "inputs", *finding.path),
                f"step {name}: {finding.message}",
                finding.severity,
                at_key=finding.at_key,
            )
    body: tuple[Step, ...] = ()
    if action == LOOP and "Steps" in inputs:
        body = _steps(out, inputs["Steps"], (*path, "inputs", "Steps"), schemas)
    explicit = frozenset(k for k in raw if k in STEP_KEYS)
    max_attempts = _int_prop(out, raw, "maxAttempts", path, 1)
    timeout = _int_prop(out, raw, "timeoutSeconds", path, 1)
    if timeout is not None and schema is not None and schema.max_timeout is not None:
        if timeout > schema.max_timeout:
            out.error(
                (*path, "timeoutSeconds"),
                f"step {name}: timeoutSeconds {timeout} is over the {action} "
                f"maximum of {schema.max_timeout}",
            )
    on_failure = _transition(
        out, raw, "onFailure", path, ON_FAILURE, "Abort, Continue or step:NAME"
    )
    on_cancel = _transition(out, raw, "onCancel", path, ON_CANCEL, "Abort or step:NAME")
    if "onCancel" in raw and schema is not None and not schema.on_cancel_allowed:
        out.error(
            (*path, "onCancel"), f"step {name}: {action} steps do not support onCancel", at_key=True
        )
    next_step = raw.get("nextStep")
    if next_step is not None and not isinstance(next_step, str):
        out.error((*path, "nextStep"), f"step {name}: nextStep must be a step name")
        next_step = None
    return Step(
        name=name,
        action=action,
        inputs=inputs,
        description=str_or_empty(raw.get("description")),
        max_attempts=max_attempts or 1,
        timeout_seconds=timeout,
        on_failure=on_failure or ABORT,
        on_cancel=on_cancel or ABORT,
        is_end=_bool_prop(out, raw, "isEnd", path) or False,
        next_step=next_step or None,
        is_critical=_bool_prop(out, raw, "isCritical", path),
        outputs=_step_outputs(out, raw.get("outputs"), (*path, "outputs"), name),
        steps=body,
        path=path,
        explicit=explicit,
    )


def _transition(
    out: Collector,
    raw: Mapping[str, Any],
    key: str,
    path: DocumentPath,
    pattern: re.Pattern[str],
    expected: str,
) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.match(value.strip()):
        out.error((*path, key), f"{key} must be {expected}, not {value!r}")
        return None
    return value.strip()


def _step_outputs(
    out: Collector, value: Any, path: DocumentPath, step: str
) -> tuple[OutputSpec, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        out.warning(path, f"step {step}: outputs should be a list; read as a list of one")
        value = [value]
    if not isinstance(value, list):
        out.error(path, f"step {step}: outputs must be a list of {{Name, Selector, Type}}")
        return ()
    specs: list[OutputSpec] = []
    for index, item in enumerate(value):
        ipath = (*path, index)
        if not isinstance(item, dict):
            out.error(ipath, f"step {step}: an output must be a map with Name and Selector")
            continue
        name, selector = item.get("Name"), item.get("Selector")
        if not isinstance(name, str) or not name:
            out.error(ipath, f"step {step}: output needs a Name")
            continue
        if not isinstance(selector, str) or not selector.startswith("$"):
            out.error(
                (*ipath, "Selector") if "Selector" in item else ipath,
                f"step {step}: output {name!r} needs a Selector starting with '$'",
            )
            continue
        problem = check_selector(selector)
        if problem is not None:
            out.error((*ipath, "Selector"), f"step {step}: output {name!r}: {problem}")
            continue
        declared = item.get("Type", "String")
        try:
            value_type = ValueType(str(declared))
        except ValueError:
            out.error(
                (*ipath, "Type"), f"step {step}: output {name!r} has an unknown Type {declared!r}"
            )
            continue
        specs.append(OutputSpec(name, selector, value_type, ipath))
    return tuple(specs)


def _check_names(out: Collector, runbook: Runbook) -> None:
    seen: dict[str, Step] = {}
    for step in runbook.all_steps():
        if step.name in seen:
            out.error((*step.path, "name"), f"duplicate step name {step.name!r}")
        else:
            seen[step.name] = step
