"""Dry run: what each step of a runbook would do, without doing any of it.

Each step is classified as AWS's execution preview does: ``Mutating`` (creates, modifies or
deletes resources), ``NonMutating`` (reads: ``Describe*``, ``Get*``, ``List*`` ...) or
``Undetermined`` (hands work to something whose effect is unknown: a script, a shell,
Run Command, Lambda, Step Functions, a webhook). Child runbooks of
``aws:executeAutomation`` are classified by their own steps. Nothing here runs anything.

Where work would go is listed too (:mod:`runbook_engine.dry_run` resolves it against the
inventory): for a rate-controlled automation, one child per target value (or per
``TargetMaps`` entry) with ``MaxConcurrency``/``MaxErrors``; for ``aws:runCommand`` and
``aws:runShellScript`` steps with ``InstanceIds``/``Targets``, the instances they name
now, with the step's own ``MaxConcurrency``/``MaxErrors``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from runbook_engine.aws_names import read_only_api
from runbook_engine.inputs import contains_expression
from runbook_engine.model import Runbook, Step


class Impact(StrEnum):
    MUTATING = "Mutating"
    NON_MUTATING = "NonMutating"
    UNDETERMINED = "Undetermined"


NON_MUTATING_ACTIONS = frozenset(
    {
        "aws:sleep",
        "aws:pause",
        "aws:approve",
        "aws:branch",
        "aws:loop",
        "aws:updateVariable",
        "aws:assertAwsResourceProperty",
        "aws:waitForAwsResourceProperty",
    }
)
MUTATING_ACTIONS = frozenset(
    {
        "aws:createImage",
        "aws:copyImage",
        "aws:deleteImage",
        "aws:createStack",
        "aws:deleteStack",
        "aws:createTags",
        "aws:runInstances",
        "aws:changeInstanceState",
    }
)
UNDETERMINED_ACTIONS = frozenset(
    {
        "aws:executeScript",
        "aws:runShellScript",
        "aws:runCommand",
        "aws:invokeLambdaFunction",
        "aws:executeStateMachine",
        "aws:invokeWebhook",
    }
)
ChildLoader = Callable[[str], Runbook | None]


FLEET_ACTIONS = frozenset({"aws:runCommand", "aws:runShellScript"})
COMMAND_CONCURRENCY, COMMAND_ERRORS = "50", "0"  # SendCommand's defaults (§7.6)


@dataclass(frozen=True)
class FleetPreview:
    """The instances a Run Command step would run on, resolved when previewed; ``note``
    says why there are none (known only at run time, or not resolvable)."""

    instances: tuple[str, ...] = ()
    max_concurrency: str = COMMAND_CONCURRENCY
    max_errors: str = COMMAND_ERRORS
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "ResolvedInstanceIds": list(self.instances),
            "MaxConcurrency": self.max_concurrency,
            "MaxErrors": self.max_errors,
        }
        if self.note:
            shape["TargetResolution"] = self.note
        return shape

    def describe(self) -> str:
        where = ", ".join(self.instances) if self.instances else self.note or "no instance"
        return f"{where} (MaxConcurrency {self.max_concurrency}, MaxErrors {self.max_errors})"


@dataclass(frozen=True)
class ChildPreview:
    """One child execution of a rate-controlled automation: its label (the target value,
    or the TargetMaps entry as JSON) and the parameters it would get."""

    target: str
    parameters: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"Target": self.target, "Parameters": dict(self.parameters)}


@dataclass(frozen=True)
class RateControlPreview:
    target_parameter_name: str | None
    targets: tuple[Mapping[str, Any], ...]
    target_maps: tuple[Mapping[str, Any], ...]
    max_concurrency: str
    max_errors: str
    children: tuple[ChildPreview, ...]

    def as_json(self) -> dict[str, Any]:
        """The rate-control fields as GetAutomationExecution names them, and the children."""
        shape: dict[str, Any] = {}
        if self.target_parameter_name:
            shape["TargetParameterName"] = self.target_parameter_name
            shape["Targets"] = [dict(t) for t in self.targets]
            values = [c.target for c in self.children]
            shape["ResolvedTargets"] = {"ParameterValues": values, "Truncated": False}
        if self.target_maps:
            shape["TargetMaps"] = [dict(m) for m in self.target_maps]
        shape["MaxConcurrency"] = self.max_concurrency
        shape["MaxErrors"] = self.max_errors
        shape["ChildExecutions"] = [c.as_json() for c in self.children]
        return shape


@dataclass(frozen=True)
class StepPreview:
    step_name: str
    action: str
    impact: Impact
    reason: str
    targets: tuple[str, ...] = ()
    fleet: FleetPreview | None = None

    def as_json(self) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "StepName": self.step_name,
            "Action": self.action,
            "Impact": self.impact.value,
            "Reason": self.reason,
        }
        if self.targets:
            shape["Targets"] = list(self.targets)
        if self.fleet is not None:
            shape.update(self.fleet.as_json())
        return shape


@dataclass(frozen=True)
class Preview:
    document_name: str
    parameters: Mapping[str, Any]
    steps: tuple[StepPreview, ...] = field(default_factory=tuple)
    rate_control: RateControlPreview | None = None

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(s.impact.value for s in self.steps)
        return {impact.value: counted.get(impact.value, 0) for impact in Impact}

    def with_fleet(self, fleets: Mapping[int, FleetPreview]) -> Preview:
        """This preview with the instances of steps (by index in ``steps``) filled in."""
        steps = tuple(replace(s, fleet=fleets.get(n, s.fleet)) for n, s in enumerate(self.steps))
        return replace(self, steps=steps)

    def as_json(self) -> dict[str, Any]:
        shape = {
            "DocumentName": self.document_name,
            "Parameters": dict(self.parameters),
            "StepPreviews": self.counts,
            "Steps": [s.as_json() for s in self.steps],
        }
        if self.rate_control is not None:
            shape.update(self.rate_control.as_json())
        return shape

    def text_lines(self) -> list[str]:
        """The text form: what the CLI prints."""
        lines = [f"Dry run of {self.document_name}: nothing was run"]
        rate = self.rate_control
        if rate is not None:
            lines.append(
                f"  rate control: {len(rate.children)} child execution(s), "
                f"MaxConcurrency {rate.max_concurrency}, MaxErrors {rate.max_errors}"
            )
            name = rate.target_parameter_name
            lines.extend(
                f"    child for {name + '=' if name else ''}{child.target}"
                for child in rate.children
            )
            lines.append("  each child would run:")
        for step in self.steps:
            targets = f" on {', '.join(step.targets)}" if step.targets else ""
            lines.append(
                f"  {step.step_name} ({step.action}): {step.impact.value}{targets} - {step.reason}"
            )
            if step.fleet is not None:
                lines.append(f"    instances: {step.fleet.describe()}")
        counts = ", ".join(f"{n} {impact}" for impact, n in self.counts.items())
        lines.append(f"  {counts}")
        return lines


def preview_runbook(
    runbook: Runbook,
    parameters: Mapping[str, Any],
    render: Callable[[Any], Any],
    load_child: ChildLoader,
) -> Preview:
    """Classify every step (loop bodies included) in document order."""
    steps = tuple(
        StepPreview(
            step.name,
            step.action,
            *classify(step, render, load_child, depth=0),
            targets=_targets(step, render),
        )
        for step in runbook.all_steps()
    )
    return Preview(runbook.name, parameters, steps)


def classify(
    step: Step, render: Callable[[Any], Any], load_child: ChildLoader, depth: int
) -> tuple[Impact, str]:
    action = step.action
    if action in NON_MUTATING_ACTIONS:
        return Impact.NON_MUTATING, "reads or waits; changes nothing outside the execution"
    if action == "aws:changeInstanceState":
        check_only = render(step.inputs.get("CheckStateOnly", False))
        if check_only is True or str(check_only).lower() == "true":
            return Impact.NON_MUTATING, "CheckStateOnly: asserts the state, changes nothing"
    if action in MUTATING_ACTIONS:
        return Impact.MUTATING, "creates, changes or deletes resources"
    if action == "aws:executeAwsApi":
        api = render(step.inputs.get("Api"))
        if not isinstance(api, str) or contains_expression(api):
            return Impact.UNDETERMINED, "the API is known only at run time"
        name = api[:1].upper() + api[1:]
        if read_only_api(api):
            return Impact.NON_MUTATING, f"{step.inputs.get('Service')} {name} only reads"
        return Impact.MUTATING, f"{step.inputs.get('Service')} {name} may change resources"
    if action == "aws:executeAutomation":
        return _child_impact(step, render, load_child, depth)
    if action in UNDETERMINED_ACTIONS:
        return Impact.UNDETERMINED, "hands work to code whose effect is not known in advance"
    return Impact.UNDETERMINED, f"{action} is not classified"


def _child_impact(
    step: Step, render: Callable[[Any], Any], load_child: ChildLoader, depth: int
) -> tuple[Impact, str]:
    name = render(step.inputs.get("DocumentName"))
    if not isinstance(name, str) or contains_expression(name) or depth > 5:
        return Impact.UNDETERMINED, "the child runbook is known only at run time"
    child = load_child(name)
    if child is None:
        return Impact.UNDETERMINED, f"child runbook {name} was not found"
    impacts = {classify(s, lambda v: v, load_child, depth + 1)[0] for s in child.all_steps()}
    for impact in (Impact.MUTATING, Impact.UNDETERMINED):
        if impact in impacts:
            return impact, f"child runbook {name} has {impact.value} steps"
    return Impact.NON_MUTATING, f"child runbook {name} only reads"


def _targets(step: Step, render: Callable[[Any], Any]) -> tuple[str, ...]:
    found: list[str] = []
    for key in ("InstanceIds", "InstanceId", "ResourceIds"):
        value = render(step.inputs.get(key))
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            found.extend(str(v) for v in value)
    targets = render(step.inputs.get("Targets"))
    if isinstance(targets, list):
        for target in targets:
            if isinstance(target, Mapping):
                values = ",".join(str(v) for v in target.get("Values") or [])
                found.append(f"{target.get('Key')}={values}")
    return tuple(found)
