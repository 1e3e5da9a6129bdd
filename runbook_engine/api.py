"""Executions in the SSM API's own shapes (AutomationExecution, StepExecution, metadata)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from runbook_engine.model import Runbook, Step
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.selectors import to_api_strings

TimeFormat = Literal["iso", "epoch"]


def _time(value: datetime | None, fmt: TimeFormat) -> str | float | None:
    if value is None:
        return None
    return value.timestamp() if fmt == "epoch" else value.isoformat()


def api_map(values: Mapping[str, Any]) -> dict[str, list[str]]:
    return {name: to_api_strings(value, None) for name, value in values.items()}


def _prune(shape: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in shape.items() if v is not None}


def automation_execution(
    execution: ExecutionRecord,
    steps: Sequence[StepRecord],
    runbook: Runbook | None = None,
    fmt: TimeFormat = "iso",
) -> dict[str, Any]:
    shape = metadata(execution, fmt)
    shape.pop("AutomationType", None)
    shape.pop("ExecutionStatus", None)
    shape.update(
        {
            "Parameters": {k: list(v) for k, v in execution.supplied_parameters.items()},
            "Variables": api_map(execution.variables) or None,
            "StepExecutions": [step_execution(r, runbook, fmt) for r in steps],
            "StepExecutionsTruncated": False,
            "TargetParameterName": execution.target_parameter_name,
            "Targets": [dict(t) for t in execution.targets] or None,
            "TargetMaps": [dict(t) for t in execution.target_maps] or None,
            "ResolvedTargets": {
                "ParameterValues": list(execution.resolved_targets),
                "Truncated": False,
            }
            if execution.resolved_targets
            else None,
            "MaxConcurrency": execution.max_concurrency,
            "MaxErrors": execution.max_errors,
        }
    )
    return _prune(shape)


def metadata(execution: ExecutionRecord, fmt: TimeFormat = "iso") -> dict[str, Any]:
    """AutomationExecutionMetadata (DescribeAutomationExecutions / runbook list)."""
    return _prune(
        {
            "AutomationExecutionId": execution.execution_id,
            "DocumentName": execution.document_name,
            "DocumentVersion": execution.document_version,
            "AutomationExecutionStatus": execution.status.value,
            "Mode": execution.mode.value,
            "ExecutionStartTime": _time(execution.start_time, fmt),
            "ExecutionEndTime": _time(execution.end_time, fmt),
            "ExecutedBy": execution.executed_by or None,
            "Outputs": api_map(execution.outputs),
            "FailureMessage": execution.failure_message,
            "CurrentStepName": execution.current_step_name,
            "CurrentAction": execution.current_action,
            "ParentAutomationExecutionId": execution.parent_execution_id,
            "AutomationType": "Local",
        }
    )


def step_execution(
    record: StepRecord, runbook: Runbook | None = None, fmt: TimeFormat = "iso"
) -> dict[str, Any]:
    step = runbook.find_step(record.step_name) if runbook is not None else None
    shape: dict[str, Any] = {
        "StepName": record.step_name,
        "Action": record.action,
        "StepExecutionId": record.step_execution_id,
        "StepStatus": record.status.value,
        "ExecutionStartTime": _time(record.start_time, fmt),
        "ExecutionEndTime": _time(record.end_time, fmt),
        "Inputs": {k: json.dumps(v, separators=(",", ":")) for k, v in record.inputs.items()},
        "Outputs": api_map(record.outputs) or None,
        "FailureMessage": record.failure_message,
        "FailureDetails": _prune(
            {
                "FailureStage": record.failure_stage,
                "FailureType": record.failure_type,
                "Details": dict(record.failure_details) or None,
            }
        )
        if record.failure_type or record.failure_stage
        else None,
        "ValidNextSteps": list(record.valid_next_steps) if record.status.terminal else None,
        "OverriddenParameters": dict(record.overridden_parameters) or None,
    }
    if record.target is not None:  # rate control: raw values, not JSON (§10 row 14)
        shape["Inputs"] = {k: str(v) for k, v in record.inputs.items()}
    if step is not None:
        shape.update(_step_properties(step))
    if record.loop is not None:
        shape["ParentStepDetails"] = _prune(
            {
                "StepExecutionId": record.loop.step_execution_id,
                "StepName": record.loop.step_name,
                "Action": "aws:loop",
                "Iteration": record.loop.iteration,
                "IteratorValue": None
                if record.loop.iterator_value is None
                else str(record.loop.iterator_value),
            }
        )
    return _prune(shape)


def _step_properties(step: Step) -> dict[str, Any]:
    """Echo the step properties the document wrote (AWS omits unset ones)."""
    written = step.explicit
    props: dict[str, Any] = {}
    if "timeoutSeconds" in written:
        props["TimeoutSeconds"] = step.timeout_seconds
    if "onFailure" in written:
        props["OnFailure"] = step.on_failure
    if "maxAttempts" in written:
        props["MaxAttempts"] = step.max_attempts
    if "isEnd" in written:
        props["IsEnd"] = step.is_end
    if "nextStep" in written:
        props["NextStep"] = step.next_step
    if "isCritical" in written:
        props["IsCritical"] = step.is_critical
    return props
