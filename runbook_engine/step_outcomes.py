"""How a step attempt's outcome becomes its record: success with collected outputs, failure
with its stage and type, timeout, a parked wait, a StopStep. Pure: records in, records out."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from runbook_engine.inputs import ActionSchema, normalize_inputs
from runbook_engine.model import Runbook, Step
from runbook_engine.outputs import collect_outputs
from runbook_engine.plugin import ActionError, ActionResult, FailureStage, FailureType, Suspend
from runbook_engine.record_copies import evolve
from runbook_engine.records import StepRecord
from runbook_engine.status import Status
from runbook_engine.variables import check_variable_value

log = logging.getLogger("runbook_engine")


def checked_inputs(schema: ActionSchema, rendered: Mapping[str, Any]) -> dict[str, Any]:
    """Rendered inputs normalised and checked against the action's schema; a problem fails
    the step at the InputValidation stage before the action runs."""
    inputs = normalize_inputs(schema, dict(rendered))
    problems = schema.check(inputs, static=False)
    if problems:
        detail = "; ".join(
            (f"{'.'.join(map(str, p.path))}: " if p.path else "") + p.message for p in problems
        )
        raise ActionError(
            f"invalid inputs: {detail}",
            stage=FailureStage.INPUT_VALIDATION,
            failure_type=FailureType.VERIFICATION,
        )
    return inputs


def succeeded(step: Step, record: StepRecord, result: ActionResult, now: datetime) -> StepRecord:
    outputs, warnings, error = collect_outputs(step, result)
    for warning in warnings:
        log.warning("step %s: %s", step.name, warning)
    if error is not None:
        return failed(record, ActionError(error, stage=FailureStage.POST_VERIFICATION), now)
    return evolve(
        record,
        status=Status.SUCCESS,
        end_time=now,
        outputs=outputs,
        response=result.response,
        logs=result.logs,
        wake_at=None,
        waiting_for=(),
        failure_message=None,
    )


def failed(record: StepRecord, error: ActionError, now: datetime) -> StepRecord:
    return evolve(
        record,
        status=Status.FAILED,
        end_time=now,
        outputs=dict(error.outputs),
        failure_message=f"Step {record.step_name} failed: {error.message}",
        failure_type=error.failure_type.value,
        failure_stage=error.stage.value,
        failure_details=dict(error.details),
        response=error.response if error.response is not None else record.response,
        logs=error.logs or record.logs,
        wake_at=None,
        waiting_for=(),
    )


def timed_out(
    record: StepRecord, timeout: float | None, now: datetime, error: ActionError | None = None
) -> StepRecord:
    if error is None:
        message = f"Step {record.step_name} timed out after {timeout:g} seconds"
    else:
        message = f"Step {record.step_name} timed out: {error.message}"
    return evolve(
        record,
        status=Status.TIMED_OUT,
        end_time=now,
        outputs=dict(error.outputs) if error else {},
        failure_message=message,
        failure_type=FailureType.VERIFICATION.value,
        failure_stage=FailureStage.INVOCATION.value,
        wake_at=None,
        waiting_for=(),
    )


def stopped(record: StepRecord, now: datetime) -> StepRecord:
    """The step a StopStep signal cancelled."""
    return evolve(
        record,
        status=Status.CANCELLED,
        end_time=now,
        state={"stopped": True},
        failure_message=f"Step {record.step_name} was stopped by a StopStep signal",
    )


def suspended(record: StepRecord, result: Suspend, deadline: datetime | None) -> StepRecord:
    """A parked attempt: what it waits for, and until when (never past the step timeout)."""
    wake_at = result.wake_at
    if deadline is not None and (wake_at is None or wake_at > deadline):
        wake_at = deadline
    return evolve(
        record,
        status=Status.WAITING if result.status == "Waiting" else Status.IN_PROGRESS,
        wake_at=wake_at,
        waiting_for=tuple(result.signals),
        state=dict(result.state) or {"parked": True},
        message=result.message,
        child_execution_id=result.child_execution_id,
    )


def updated_variables(
    runbook: Runbook, variables: Mapping[str, Any], record: StepRecord
) -> dict[str, Any]:
    """aws:updateVariable answers {"variable": NAME, "value": VALUE}; check and apply it."""
    response = record.response if isinstance(record.response, Mapping) else {}
    name = str(response.get("variable"))
    declared = runbook.variables.get(name)
    if declared is None:
        raise ActionError(
            f"variable {name!r} is not declared in the runbook's variables",
            stage=FailureStage.INPUT_VALIDATION,
        )
    problem = check_variable_value(declared.value_type.value, response.get("value"))
    if problem:
        raise ActionError(problem, stage=FailureStage.INPUT_VALIDATION)
    return {**variables, name: response.get("value")}
