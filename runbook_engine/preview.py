"""Dry run: what each step of a runbook would do, without doing any of it.

Each step is classified as AWS's execution preview does: ``Mutating`` (creates, modifies or
deletes resources), ``NonMutating`` (reads: ``Describe*``, ``Get*``, ``List*`` ...) or
``Undetermined`` (hands work to something whose effect is unknown: a script, a shell,
Run Command, Lambda, Step Functions, a webhook). Child runbooks of
``aws:executeAutomation`` are classified by their own steps. Nothing here runs anything.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from runbook_engine.inputs import contains_expression
from runbook_engine.model import Runbook, Step


class Impact(StrEnum):
    MUTATING = "Mutating"
    NON_MUTATING = "NonMutating"
    UNDETERMINED = "Undetermined"


READ_ONLY_API = re.compile(r"^(Describe|Get|List|Search|Lookup|BatchGet|Query|Scan|Head|Select)")
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


@dataclass(frozen=True)
class StepPreview:
    step_name: str
    action: str
    impact: Impact
    reason: str
    targets: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "StepName": self.step_name,
            "Action": self.action,
            "Impact": self.impact.value,
            "Reason": self.reason,
        }
        if self.targets:
            shape["Targets"] = list(self.targets)
        return shape


@dataclass(frozen=True)
class Preview:
    document_name: str
    parameters: Mapping[str, Any]
    steps: tuple[StepPreview, ...] = field(default_factory=tuple)

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(s.impact.value for s in self.steps)
        return {impact.value: counted.get(impact.value, 0) for impact in Impact}

    def as_json(self) -> dict[str, Any]:
        return {
            "DocumentName": self.document_name,
            "Parameters": dict(self.parameters),
            "StepPreviews": self.counts,
            "Steps": [s.as_json() for s in self.steps],
        }


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
        if READ_ONLY_API.match(name):
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
