"""Request parameters of an AWS call: coerced to the operation's shapes, then validated.

Runbook inputs come from YAML, JSON and ``{{ }}`` expressions, so their types are often
a step off what the API wants: a parameter of type String feeds an integer member
(``retentionInDays: '{{ RetentionDays }}'``), a single instance id feeds a list member,
``"true"`` feeds a boolean. AWS Automation accepts these; here each value is converted
only when the conversion is unambiguous (digits to an integer, ``true``/``false`` to a
boolean, a scalar to a one-element list, a one-element list to its item, a number to
text). Anything else is left as written for botocore's validator, which then names the
offending parameter, before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from botocore.model import OperationModel, Shape
from botocore.validate import ParamValidator

from runbook_engine.plugin import ActionError, FailureStage, FailureType

_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_SCALARS = str | int | float | bool


def coerce(value: Any, shape: Shape) -> Any:
    """``value`` converted toward ``shape`` where the conversion cannot surprise."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            return value
        members = shape.members
        return {
            key: coerce(item, members[key]) if key in members else item
            for key, item in value.items()
        }
    if kind == "list":
        member = shape.member
        if isinstance(value, list | tuple):
            return [coerce(item, member) for item in value]
        if isinstance(value, _SCALARS | Mapping):
            return [coerce(value, member)]
        return value
    if kind == "map":
        if not isinstance(value, Mapping):
            return value
        key_shape, value_shape = shape.key, shape.value
        return {coerce(k, key_shape): coerce(v, value_shape) for k, v in value.items()}
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]  # a one-element list where a scalar is wanted (ssm-reference §3.3)
    return _scalar(value, kind)


def _scalar(value: Any, kind: str) -> Any:
    if kind in ("integer", "long"):
        if isinstance(value, str) and _INTEGER.match(value.strip()):
            return int(value.strip())
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind in ("float", "double"):
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            return float(value.strip())
    elif kind == "boolean":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif kind == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
    return value


def prepare_parameters(
    operation: OperationModel, parameters: Mapping[str, Any], what: str
) -> dict[str, Any]:
    """The request parameters, coerced and validated; ActionError (InputValidation) with
    every problem, each naming its parameter, when botocore's model refuses them."""
    shape = operation.input_shape
    if shape is None:
        if parameters:
            names = ", ".join(sorted(parameters))
            raise ActionError(
                f"{what} takes no parameters, but got: {names}",
                failure_type=FailureType.VERIFICATION,
                stage=FailureStage.INPUT_VALIDATION,
            )
        return {}
    prepared = coerce(dict(parameters), shape)
    report = ParamValidator().validate(prepared, shape)
    if report.has_errors():
        problems = report.generate_report().replace("\n", "; ")
        raise ActionError(
            f"{what}: invalid parameters: {problems}",
            failure_type=FailureType.VERIFICATION,
            stage=FailureStage.INPUT_VALIDATION,
        )
    result: dict[str, Any] = prepared
    return result
