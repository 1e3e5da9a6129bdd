"""A Command document made ready to run: parameters checked, plugin inputs rendered.

Parameters follow the document's declarations: types, ``allowedValues``,
``allowedPattern`` (a value that does not match refuses the whole command before it
reaches any instance), lengths, defaults. A parameter declared with
``interpolationType: ENV_VAR`` never has its value pasted into a script: the plugin gets
an environment variable ``SSM_<name>`` holding it, and ``{{ name }}`` inside
``runCommand`` becomes a reference to that variable (``${SSM_name}`` for shell,
``$env:SSM_name`` for PowerShell). Everywhere else (``workingDirectory``,
``timeoutSeconds``) the value is used as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runbook_engine.coercion import check_constraints, coerce
from runbook_engine.expressions import Scope, render
from runbook_engine.model import CommandDocument, Plugin
from runbook_engine.plugin import ActionError, FailureStage, FailureType

SHELL = "aws:runShellScript"
POWERSHELL = "aws:runPowerShellScript"
RUNNABLE = (SHELL, POWERSHELL)
ENV_PREFIX = "SSM_"


@dataclass(frozen=True)
class PreparedPlugin:
    name: str
    action: str
    inputs: Mapping[str, Any]
    precondition: Mapping[str, Any] | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def finally_step(self) -> bool:
        return str(self.inputs.get("finallyStep", "")).lower() == "true"


def invalid(message: str) -> ActionError:
    return ActionError(
        message, stage=FailureStage.INPUT_VALIDATION, failure_type=FailureType.VERIFICATION
    )


def parameter_values(document: CommandDocument, supplied: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values for every declared parameter, or an InvalidParameters error."""
    problems: list[str] = []
    for name in supplied:
        if name not in document.parameters:
            declared = ", ".join(sorted(document.parameters)) or "none"
            problems.append(
                f"parameter {name!r} is not declared by {document.name} (declared: {declared})"
            )
    values: dict[str, Any] = {}
    for name, param in document.parameters.items():
        if name not in supplied:
            if param.has_default:
                values[name] = param.default
            else:
                problems.append(f"parameter {name!r} is required")
            continue
        try:
            value = coerce(param, supplied[name])
        except ValueError as exc:
            problems.append(f"parameter {name!r}: {exc}")
            continue
        problems.extend(f"parameter {name!r}: {p}" for p in check_constraints(param, value))
        values[name] = value
    if problems:
        raise invalid(f"InvalidParameters for {document.name}: " + "; ".join(problems))
    return values


def _env_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _reference(action: str, name: str) -> str:
    variable = ENV_PREFIX + name
    return f"$env:{variable}" if action == POWERSHELL else "${" + variable + "}"


def prepare(document: CommandDocument, supplied: Mapping[str, Any]) -> list[PreparedPlugin]:
    if not document.runnable:
        raise invalid(
            f"{document.name} is a schema {document.schema_version} Command document; "
            "only schema 2.2 and 2.0 documents run here"
        )
    values = parameter_values(document, supplied)
    env = {ENV_PREFIX + n: _env_text(values[n]) for n in document.env_var_parameters}
    return [_prepare_plugin(p, values, document.env_var_parameters, env) for p in document.plugins]


def _prepare_plugin(
    plugin: Plugin, values: Mapping[str, Any], env_vars: frozenset[str], env: Mapping[str, str]
) -> PreparedPlugin:
    plain = Scope(parameters=values)
    inputs = {k: v for k, v in plugin.inputs.items() if k != "runCommand"}
    rendered: dict[str, Any] = dict(render(inputs, plain))
    if "runCommand" in plugin.inputs:
        scripted = {**values, **{n: _reference(plugin.action, n) for n in env_vars}}
        rendered["runCommand"] = render(plugin.inputs["runCommand"], Scope(parameters=scripted))
    precondition = render(dict(plugin.precondition), plain) if plugin.precondition else None
    return PreparedPlugin(plugin.name, plugin.action, rendered, precondition, env)


def precondition_met(precondition: Mapping[str, Any] | None, platform: str) -> bool:
    """``{StringEquals: [platformType, Linux]}``: the only form Command documents allow."""
    if not precondition:
        return True
    for operator, operands in precondition.items():
        if operator != "StringEquals" or not isinstance(operands, Sequence) or len(operands) != 2:
            raise invalid(
                f"unsupported precondition {dict(precondition)!r} "
                "(only StringEquals: [platformType, <platform>])"
            )
        left, right = (platform if str(o) == "platformType" else str(o) for o in operands)
        if left != right:
            return False
    return True


def single_plugin(
    commands: Any, working_directory: str | None, timeout: int | None
) -> list[PreparedPlugin]:
    """What a direct aws:runShellScript step runs on each instance."""
    inputs: dict[str, Any] = {"runCommand": commands}
    if working_directory:
        inputs["workingDirectory"] = working_directory
    if timeout is not None:
        inputs["timeoutSeconds"] = str(timeout)
    return [PreparedPlugin("runShellScript", SHELL, inputs)]
