"""Frozen types parsed from SSM documents: runbooks (schema 0.3) and Command documents.

These hold what the document says, already checked by :mod:`runbook_engine.parser`;
step ``inputs`` stay as written (expressions unrendered). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from runbook_engine.diagnostics import DocumentPath


class ValueType(StrEnum):
    """The six value types of parameters, variables, outputs and action inputs."""

    STRING = "String"
    STRING_LIST = "StringList"
    INTEGER = "Integer"
    BOOLEAN = "Boolean"
    STRING_MAP = "StringMap"
    MAP_LIST = "MapList"


# Console resource types: behave as String / StringList with an implicit pattern.
RESOURCE_TYPES: Mapping[str, str] = {
    "AWS::EC2::Instance::Id": r"^m?i-[a-z0-9]{8,17}$",
    "AWS::S3::Bucket::Name": r"^[0-9a-z][a-z0-9\-\.]{3,63}$",
    "AWS::IAM::Role::Arn": (
        r"^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):iam::[0-9]{12}:role/.*$"
    ),
}


def base_type_of(declared: str) -> ValueType | None:
    """The value type behind a declared parameter type (``None`` if unknown)."""
    try:
        return ValueType(declared)
    except ValueError:
        pass
    if declared in RESOURCE_TYPES:
        return ValueType.STRING
    if declared.startswith("List<") and declared.endswith(">") and declared[5:-1] in RESOURCE_TYPES:
        return ValueType.STRING_LIST
    return None


def implicit_pattern_of(declared: str) -> str | None:
    if declared in RESOURCE_TYPES:
        return RESOURCE_TYPES[declared]
    if declared.startswith("List<") and declared.endswith(">"):
        return RESOURCE_TYPES.get(declared[5:-1])
    return None


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    type: str  # as declared (may be a console resource type)
    value_type: ValueType
    description: str = ""
    default: Any = None
    has_default: bool = False
    allowed_values: tuple[Any, ...] | None = None
    allowed_pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    min_chars: int | None = None
    max_chars: int | None = None
    path: DocumentPath = ()

    @property
    def required(self) -> bool:
        return not self.has_default

    @property
    def implicit_pattern(self) -> str | None:
        return implicit_pattern_of(self.type)


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    value_type: ValueType
    default: Any = None
    description: str = ""
    path: DocumentPath = ()


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """A custom step output: ``{Name, Selector, Type}``."""

    name: str
    selector: str
    value_type: ValueType = ValueType.STRING
    path: DocumentPath = ()


@dataclass(frozen=True, slots=True)
class FileSpec:
    """An entry of the document's ``files`` (attachments for aws:executeScript)."""

    name: str
    sha256: str | None = None
    size: int | None = None


ABORT = "Abort"
CONTINUE = "Continue"
# The two actions that move between steps themselves (the graph, the conductor and the
# driver treat them apart; a loop's body is steps of its own).
BRANCH = "aws:branch"
LOOP = "aws:loop"


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    action: str
    inputs: Mapping[str, Any]
    description: str = ""
    max_attempts: int = 1
    timeout_seconds: int | None = None
    on_failure: str = ABORT  # Abort | Continue | step:NAME
    on_cancel: str = ABORT  # Abort | step:NAME
    is_end: bool = False
    next_step: str | None = None
    is_critical: bool | None = None  # as written; see effective_critical
    outputs: tuple[OutputSpec, ...] = ()
    steps: tuple[Step, ...] = ()  # aws:loop body
    path: DocumentPath = ()
    explicit: frozenset[str] = field(default_factory=frozenset)  # properties written

    @property
    def effective_critical(self) -> bool:
        if self.is_critical is not None:
            return self.is_critical
        return self.on_failure != CONTINUE

    @property
    def failure_target(self) -> str | None:
        return self.on_failure[5:] if self.on_failure.startswith("step:") else None

    @property
    def cancel_target(self) -> str | None:
        return self.on_cancel[5:] if self.on_cancel.startswith("step:") else None


def walk_steps(steps: tuple[Step, ...]) -> Iterator[Step]:
    """Every step, loop bodies included, in document order."""
    for step in steps:
        yield step
        yield from walk_steps(step.steps)


@dataclass(frozen=True, slots=True)
class Runbook:
    """A schema 0.3 Automation document."""

    name: str
    steps: tuple[Step, ...]
    schema_version: str = "0.3"
    description: str = ""
    assume_role: str | None = None
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    variables: Mapping[str, Variable] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    files: Mapping[str, FileSpec] = field(default_factory=dict)
    document_type: str = "Automation"
    source_path: str | None = None

    def all_steps(self) -> Iterator[Step]:
        return walk_steps(self.steps)

    def step(self, name: str) -> Step:
        for step in self.all_steps():
            if step.name == name:
                return step
        raise KeyError(name)

    def find_step(self, name: str) -> Step | None:
        for step in self.all_steps():
            if step.name == name:
                return step
        return None


@dataclass(frozen=True, slots=True)
class Plugin:
    """One entry of a Command document's ``mainSteps`` (or a 1.2 ``runtimeConfig`` plugin)."""

    name: str
    action: str
    inputs: Mapping[str, Any]
    precondition: Mapping[str, Any] | None = None
    path: DocumentPath = ()


@dataclass(frozen=True, slots=True)
class CommandDocument:
    """A Command document (schema 2.2, 2.0; 1.2 read-only)."""

    name: str
    schema_version: str
    plugins: tuple[Plugin, ...]
    description: str = ""
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    source_path: str | None = None
    env_var_parameters: frozenset[str] = frozenset()  # interpolationType: ENV_VAR

    @property
    def runnable(self) -> bool:
        return self.schema_version in ("2.2", "2.0")
