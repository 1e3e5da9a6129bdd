"""Step outputs (predefined + custom selectors, §3.6) and the runbook's own outputs (§1.5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runbook_engine.model import Runbook, Step
from runbook_engine.plugin import ActionResult
from runbook_engine.records import StepRecord
from runbook_engine.selectors import OutputTypeError, SelectorError, convert, select


def collect_outputs(
    step: Step, result: ActionResult
) -> tuple[dict[str, Any], list[str], str | None]:
    """(outputs, warnings, error): predefined outputs plus each custom selector's value.

    A selector that matches nothing leaves that output undefined (a warning, not a
    failure); a value that cannot take the declared Type fails the step.
    """
    outputs: dict[str, Any] = dict(result.outputs)
    warnings: list[str] = []
    root = result.response if result.response is not None else dict(result.outputs)
    for spec in step.outputs:
        try:
            found, value = select(root, spec.selector)
            if not found and step.action == "aws:invokeLambdaFunction" and isinstance(root, dict):
                found, value = select(root.get("Payload"), spec.selector)  # §10 row 13
        except SelectorError as exc:
            return outputs, warnings, f"output {spec.name}: {exc}"
        if not found:
            warnings.append(f"output {spec.name}: selector {spec.selector} matched nothing")
            continue
        try:
            outputs[spec.name] = convert(value, spec.value_type)
        except OutputTypeError as exc:
            return outputs, warnings, f"output {spec.name}: {exc}"
    return outputs, warnings, None


def latest_outputs(records: Sequence[StepRecord]) -> dict[str, dict[str, Any]]:
    """Each step's outputs from its most recent run that produced any."""
    by_step: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.outputs or record.step_name not in by_step:
            by_step[record.step_name] = dict(record.outputs)
    return by_step


def execution_outputs(runbook: Runbook, records: Sequence[StepRecord]) -> dict[str, Any]:
    """The runbook's ``outputs`` entries ('Step.Output') that have a value."""
    produced = latest_outputs(records)
    result: dict[str, Any] = {}
    for name in runbook.outputs:
        step, _, output = name.partition(".")
        values = produced.get(step, {})
        if output in values:
            result[name] = values[output]
    return result
