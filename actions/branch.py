"""aws:branch: jump to the ``NextStep`` of the first true choice, else to ``Default``.

The engine evaluates the branch itself (runbook_engine.conditions); this module only
declares and checks its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runbook_engine.conditions import check_condition
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, field_, is_dynamic
from runbook_engine.plugin import SimpleAction


def _check_choices(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    choices = inputs.get("Choices")
    if not isinstance(choices, list):
        return []  # a whole expression, known only when the step runs
    if not choices:
        return [Finding(("Choices",), "Choices must hold at least one choice")]
    findings: list[Finding] = []
    for index, choice in enumerate(choices):
        path = ("Choices", index)
        if static and is_dynamic(choice):
            continue
        if not isinstance(choice, Mapping):
            continue  # reported by the MapList type check
        next_step = choice.get("NextStep")
        if next_step is None:
            findings.append(Finding(path, f"choice {index + 1} has no NextStep"))
        elif not isinstance(next_step, str) or not next_step.strip():
            findings.append(Finding((*path, "NextStep"), "NextStep must be a step name"))
        condition = {k: v for k, v in choice.items() if k != "NextStep"}
        findings.extend(
            Finding((*path, *f.path), f.message, f.severity, f.at_key)
            for f in check_condition(condition, static=static)
        )
    return findings


SCHEMA = ActionSchema(
    inputs={
        "Choices": field_("MapList", required=True,
                          description="[{NextStep, <condition>}], first true one wins"),
        "Default": field_("String", description="step to run when no choice is true"),
    },
    validators=(_check_choices,),
)

ACTION = SimpleAction(
    "aws:branch", SCHEMA, None, idempotent=True, runnable_reason="executed by the engine"
)
