"""aws:executeAutomation: run a child automation and wait for it to end.

First run: ask the engine to start the child (``ctx.start_child``) and park the step
(``Suspend(status="InProgress", child_execution_id=...)``) with the child's id saved in
the checkpoint. Every later run reads the checkpoint and only asks for the child's
status, so a resumed or re-run step never starts a second child for the same attempt.
The step succeeds iff the child ends ``Success``.

Outputs: ``ExecutionId``, ``Status`` (the child's final status) and ``Output`` (the
child's outputs flattened into one list of strings, in the child's output order).
``RuntimeParameters`` values may be scalars or lists; they are passed as lists of
strings (maps and lists inside become JSON text).

``TargetLocations`` can only name this engine's own account and Region: the child then
runs here as usual; any other location fails the step. ``Tags`` are accepted and not
recorded.

Contract with the engine: wake the step when the child named in
``Suspend.child_execution_id`` ends; when the parked step is cancelled, cancel that child
(``cancel_child``); ideally make ``start_child`` return the existing child when asked
again for the same step execution and attempt, which closes the window between starting
the child and recording the checkpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import (
    ActionContext,
    ActionError,
    ActionResult,
    ChildRequest,
    FailureStage,
    SimpleAction,
    Suspend,
)

MAX_CONCURRENCY = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
MAX_ERRORS = re.compile(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")
TERMINAL = frozenset(
    {
        "Success",
        "Failed",
        "TimedOut",
        "Cancelled",
        "Exited",
        "CompletedWithSuccess",
        "CompletedWithFailure",
        "Rejected",
        "ChangeCalendarOverrideRejected",
    }
)
SUCCESS = frozenset({"Success", "CompletedWithSuccess"})


def runtime_parameters(value: Any) -> dict[str, list[str]]:
    """Child parameters as the API carries them: every value a list of strings."""
    if not isinstance(value, Mapping):
        return {}
    return {str(name): _strings(item) for name, item in value.items()}


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [_text(item) for item in value]
    return [_text(value)]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _check(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    findings: list[Finding] = []
    if "Targets" in inputs and "TargetParameterName" not in inputs:
        findings.append(Finding(("Targets",), "Targets needs TargetParameterName"))
    for name, pattern, example in (
        ("MaxConcurrency", MAX_CONCURRENCY, "a number from 1 or a percentage such as 10%"),
        ("MaxErrors", MAX_ERRORS, "a number or a percentage such as 10%"),
    ):
        value = inputs.get(name)
        if value is None or (static and contains_expression(value)):
            continue
        if not pattern.match(str(value)):
            findings.append(Finding((name,), f"{name} must be {example}, not {value!r}"))
    return findings


SCHEMA = ActionSchema(
    inputs={
        "DocumentName": field_("String", required=True),
        "DocumentVersion": field_("String"),
        "RuntimeParameters": field_("StringMap"),
        "Targets": field_("MapList", max_items=5),
        "TargetParameterName": field_("String"),
        "TargetMaps": field_("MapList", max_items=300),
        "MaxConcurrency": field_("String"),
        "MaxErrors": field_("String"),
        "TargetLocations": field_("MapList", max_items=100),
        "Tags": field_("MapList", max_items=5),
    },
    at_most_one_of=(("Targets", "TargetMaps"),),
    validators=(_check,),
    outputs={
        "Output": ValueType.STRING_LIST,
        "ExecutionId": ValueType.STRING,
        "Status": ValueType.STRING,
    },
)


def _check_locations(inputs: Mapping[str, Any], ctx: ActionContext) -> None:
    elsewhere: list[str] = []
    for location in inputs.get("TargetLocations") or []:
        accounts = [str(a) for a in location.get("Accounts") or []]
        regions = [str(r) for r in location.get("Regions") or []]
        elsewhere += [f"account {a}" for a in accounts if a != ctx.account_id]
        elsewhere += [f"Region {r}" for r in regions if r != ctx.region]
    if elsewhere:
        raise ActionError(
            f"TargetLocations names {', '.join(sorted(set(elsewhere)))}; this engine runs child "
            f"automations only in account {ctx.account_id}, Region {ctx.region}",
            stage=FailureStage.PRE_VERIFICATION,
        )


def _request(inputs: Mapping[str, Any]) -> ChildRequest:
    def text(name: str) -> str | None:
        value = inputs.get(name)
        return None if value is None else str(value)

    return ChildRequest(
        document_name=str(inputs["DocumentName"]),
        document_version=text("DocumentVersion"),
        parameters=runtime_parameters(inputs.get("RuntimeParameters")),
        targets=inputs.get("Targets"),
        target_parameter_name=text("TargetParameterName"),
        target_maps=inputs.get("TargetMaps"),
        max_concurrency=text("MaxConcurrency"),
        max_errors=text("MaxErrors"),
    )


def _waiting(child_id: str, attempt: int) -> Suspend:
    return Suspend(
        status="InProgress",
        child_execution_id=child_id,
        state={"child": child_id, "attempt": attempt},
        message=f"waiting for child automation {child_id}",
    )


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult | Suspend:
    child_id = ctx.state.get("child")
    if child_id is None or ctx.state.get("attempt", ctx.attempt) != ctx.attempt:
        _check_locations(inputs, ctx)
        child_id = await ctx.start_child(_request(inputs))
        return _waiting(child_id, ctx.attempt)
    status = await ctx.child_status(str(child_id))
    if status.status not in TERMINAL:
        return _waiting(str(child_id), ctx.attempt)
    outputs = {
        "Output": [value for values in status.outputs.values() for value in values],
        "ExecutionId": status.execution_id,
        "Status": status.status,
    }
    if status.status in SUCCESS:
        return ActionResult(outputs=outputs)
    reason = f": {status.failure_message}" if status.failure_message else ""
    raise ActionError(
        f"child automation {status.execution_id} ended {status.status}{reason}",
        outputs=outputs,
    )


ACTION = SimpleAction(
    "aws:executeAutomation",
    SCHEMA,
    run,
    idempotent=True,
    description="Run a child automation and wait until it ends.",
)
