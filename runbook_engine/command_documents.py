"""Command documents (schema 2.2 and 2.0; 1.2 read-only): what aws:runCommand runs.

Every plugin the SSM agent knows is recognised here, so that ``runbook validate``
accepts real documents; which of them can run on our targets is decided at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runbook_engine.declarations import Collector, parse_parameters
from runbook_engine.diagnostics import Diagnostic, DocumentPath
from runbook_engine.inputs import type_name
from runbook_engine.model import CommandDocument, Parameter, Plugin
from runbook_engine.source import Source

COMMAND_SCHEMA_VERSIONS = ("2.2", "2.0", "1.2")

# Plugins of the SSM agent, with the inputs each requires.
PLUGINS: Mapping[str, tuple[str, ...]] = {
    "aws:applications": ("action", "source"),
    "aws:cloudWatch": (),
    "aws:configureDocker": ("action",),
    "aws:configurePackage": ("name", "action"),
    "aws:domainJoin": ("directoryId", "directoryName"),
    "aws:downloadContent": ("sourceType", "sourceInfo"),
    "aws:psModule": ("source",),
    "aws:refreshAssociation": (),
    "aws:runDockerAction": ("action",),
    "aws:runDocument": ("documentType",),
    "aws:runPowerShellScript": ("runCommand",),
    "aws:runShellScript": ("runCommand",),
    "aws:softwareInventory": (),
    "aws:updateAgent": ("agentName", "source"),
    "aws:updateSsmAgent": ("agentName", "source"),
}
PLUGIN_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def parse_command_document(
    source: Source, name: str
) -> tuple[CommandDocument | None, list[Diagnostic]]:
    out = Collector(source)
    for path, _mark in source.duplicate_keys:
        out.warning(path, f"duplicate key {path[-1]!r}: the last one is used", at_key=True)
    data = source.data
    if not isinstance(data, dict):
        out.error((), f"a Command document must be a map, not {type_name(data)}")
        return None, out.diagnostics
    version = str(data.get("schemaVersion", ""))
    if version not in COMMAND_SCHEMA_VERSIONS:
        out.error(("schemaVersion",), f"unsupported Command document schemaVersion {version!r}")
        return None, out.diagnostics
    parameters: dict[str, Parameter] = parse_parameters(
        out, data.get("parameters"), ("parameters",)
    )
    env_vars: set[str] = set()
    for pname in parameters:
        raw = data["parameters"][pname]
        interpolation = raw.get("interpolationType") if isinstance(raw, dict) else None
        if interpolation not in (None, "ENV_VAR"):
            out.error(
                ("parameters", pname, "interpolationType"), "interpolationType must be ENV_VAR"
            )
        elif interpolation == "ENV_VAR":
            env_vars.add(pname)
    if version == "1.2":
        plugins = _runtime_config(out, data.get("runtimeConfig"))
    else:
        plugins = _main_steps(out, data.get("mainSteps"))
    description = data.get("description") if isinstance(data.get("description"), str) else ""
    document = CommandDocument(
        name=name,
        schema_version=version,
        plugins=plugins,
        description=description or "",
        parameters=parameters,
        source_path=source.path,
        env_var_parameters=frozenset(env_vars),
    )
    return document, out.diagnostics


def _main_steps(out: Collector, value: Any) -> tuple[Plugin, ...]:
    if not isinstance(value, list) or not value:
        out.error(("mainSteps",) if value is not None else (), "mainSteps must be a non-empty list")
        return ()
    plugins: list[Plugin] = []
    names: set[str] = set()
    for index, raw in enumerate(value):
        path: DocumentPath = ("mainSteps", index)
        if not isinstance(raw, dict):
            out.error(path, "a plugin step must be a map")
            continue
        action, name = raw.get("action"), raw.get("name")
        if not isinstance(name, str) or not PLUGIN_NAME.match(name):
            out.error(
                path, f"plugin step needs a name of letters, digits, '_', '-', '.', not {name!r}"
            )
            name = f"<step {index}>"
        elif name in names:
            out.error((*path, "name"), f"duplicate plugin step name {name!r}")
        names.add(name)
        inputs = raw.get("inputs", {})
        if not isinstance(inputs, dict):
            out.error((*path, "inputs"), "inputs must be a map")
            inputs = {}
        if not isinstance(action, str) or action not in PLUGINS:
            out.error((*path, "action"), f"unknown plugin {action}")
        else:
            _check_plugin_inputs(out, action, inputs, (*path, "inputs"))
        precondition = raw.get("precondition")
        if precondition is not None and not isinstance(precondition, dict):
            out.error((*path, "precondition"), "precondition must be a map")
            precondition = None
        plugins.append(Plugin(name, str(action), inputs, precondition, path))
    return tuple(plugins)


def _check_plugin_inputs(
    out: Collector, action: str, inputs: Mapping[str, Any], path: DocumentPath
) -> None:
    for required in PLUGINS[action]:
        if required not in inputs:
            out.error(path, f"{action}: missing required input {required!r}")
    if action in ("aws:runShellScript", "aws:runPowerShellScript"):
        commands = inputs.get("runCommand")
        if commands is not None and not isinstance(commands, list | str):
            out.error((*path, "runCommand"), "runCommand must be a list of lines or a string")


def _runtime_config(out: Collector, value: Any) -> tuple[Plugin, ...]:
    if not isinstance(value, dict) or not value:
        out.error(
            ("runtimeConfig",) if value is not None else (),
            "runtimeConfig must be a non-empty map of plugins",
        )
        return ()
    plugins: list[Plugin] = []
    for action, config in value.items():
        path: DocumentPath = ("runtimeConfig", action)
        if action not in PLUGINS:
            out.error(path, f"unknown plugin {action}", at_key=True)
            continue
        properties = config.get("properties") if isinstance(config, dict) else None
        items = properties if isinstance(properties, list) else [properties or {}]
        for index, item in enumerate(items):
            inputs = item if isinstance(item, dict) else {}
            plugins.append(
                Plugin(
                    str(item.get("id", f"{index}")) if isinstance(item, dict) else str(index),
                    action,
                    inputs,
                    None,
                    (*path, "properties", index),
                )
            )
    return tuple(plugins)
