"""Requests checked against botocore's own model of SSM, so the server accepts exactly what
the API accepts.

botocore's ``ParamValidator`` checks required members, unknown members, types and minimum
lengths; it leaves out maximum lengths, enums and patterns (AWS checks those on the
server), so :func:`constraint_problems` adds them. A problem becomes a
``ValidationException``; an unknown filter key becomes ``InvalidFilterKey``, as the model
says for the two Describe operations.

Patterns are Java regular expressions; the only construct Python's ``re`` lacks here is
``\\p{...}``, read as ``\\w`` (letters and digits, ``\\p{L}``/``\\p{N}``) and ``\\s``
(``\\p{Z}``), which is wider only by the underscore. Like AWS (Smithy), a pattern must
match somewhere in the value; anchors in the pattern make it whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from botocore.model import OperationModel, ServiceModel, Shape
from botocore.session import get_session
from botocore.validate import ParamValidator

# Shapes whose enum the model answers with a specific error rather than ValidationException.
ENUM_ERRORS = {
    "AutomationExecutionFilterKey": "InvalidFilterKey",
    "StepExecutionFilterKey": "InvalidFilterKey",
    "CommandFilterKey": "InvalidFilterKey",
}
# Shapes whose pattern is not enforced: instance ids are the inventory's names (web-1),
# not only EC2's i-0123456789abcdef0 (Run Command; unknown ids are InvalidInstanceId).
UNCHECKED_PATTERNS = frozenset({"InstanceId"})


class RequestProblem(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@cache
def ssm_model() -> ServiceModel:
    """botocore's SSM model (loaded once; it is the same file boto3 clients use)."""
    return get_session().get_service_model("ssm")


def operation_model(name: str) -> OperationModel | None:
    model = ssm_model()
    return model.operation_model(name) if name in model.operation_names else None


def check_request(operation: OperationModel, params: Mapping[str, Any]) -> None:
    """Raise ``RequestProblem`` unless ``params`` fit the operation's input shape."""
    shape = operation.input_shape
    if shape is None:
        if params:
            raise RequestProblem("ValidationException", f"{operation.name} takes no parameters")
        return
    report = ParamValidator().validate(dict(params), shape)
    if report.has_errors():
        lines = report.generate_report().splitlines()[1:]  # the first line is a heading
        raise RequestProblem("ValidationException", _summary(lines))
    problems: list[tuple[str, str]] = []
    constraint_problems(params, shape, "", problems)
    for code, _message in problems:
        if code != "ValidationException":
            raise RequestProblem(code, _message)
    if problems:
        raise RequestProblem("ValidationException", _summary([m for _, m in problems]))


def _summary(messages: list[str]) -> str:
    count = len(messages)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(messages)


def constraint_problems(
    value: Any, shape: Shape, path: str, problems: list[tuple[str, str]]
) -> None:
    """Append (code, message) for each max length, enum or pattern the value breaks."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        members = shape.members
        for name, member in members.items():
            if name in value:
                constraint_problems(
                    value[name], member, f"{path}.{name}" if path else name, problems
                )
        return
    if kind in ("list", "map", "string") and "max" in meta and len(value) > meta["max"]:
        problems.append(
            (
                "ValidationException",
                f"Value at '{path}' failed to satisfy constraint: Member must have length less"
                f" than or equal to {meta['max']}",
            )
        )
    if kind == "list":
        for index, item in enumerate(value):
            constraint_problems(item, shape.member, f"{path}[{index}]", problems)
    elif kind == "map":
        for key, item in value.items():
            constraint_problems(key, shape.key, f"{path} key", problems)
            constraint_problems(item, shape.value, f"{path}.{key}", problems)
    elif kind == "string":
        _string_problems(value, shape, path, problems)
    elif kind in ("integer", "long"):
        if isinstance(value, bool):
            problems.append(("ValidationException", f"Value at '{path}' must be a number"))
        elif "max" in meta and value > meta["max"]:
            problems.append(
                (
                    "ValidationException",
                    f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have"
                    f" value less than or equal to {meta['max']}",
                )
            )


def _string_problems(value: str, shape: Shape, path: str, problems: list[tuple[str, str]]) -> None:
    enum = shape.enum
    if enum and value not in enum:
        code = ENUM_ERRORS.get(shape.name, "ValidationException")
        problems.append(
            (
                code,
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy"
                f" enum value set: [{', '.join(enum)}]",
            )
        )
    pattern = shape.metadata.get("pattern")
    if pattern and shape.name not in UNCHECKED_PATTERNS and not _compiled(pattern).search(value):
        problems.append(
            (
                "ValidationException",
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy"
                f" regular expression pattern: {pattern}",
            )
        )


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    python = pattern.replace(r"\p{L}", r"\w").replace(r"\p{N}", r"\w").replace(r"\p{Z}", r"\s")
    try:
        return re.compile(python)
    except re.error:  # a construct we cannot read: accept rather than refuse valid input
        return re.compile("")
