"""A command over many instances: resolve, fan out under rate control, record, resume.

Shared by ``aws:runCommand`` and ``aws:runShellScript`` with ``InstanceIds``/``Targets``.

Durability: the step checkpoints (``ctx.checkpoint``) the resolved instance list once,
each instance before its invocation starts, and each finished invocation with its full
output; starts that happen together share one write, and a finished invocation is
written with the next write, within a second, or when the fan-out ends, before the step's
result (:mod:`actions._fleet_progress`).
A step interrupted by a crash is resumed with that state: finished invocations are kept
as they were and never run again; an invocation that had started but not
finished is recorded ``Failed`` as interrupted (its command may have run, and commands
are not assumed safe to run twice); instances never started run now.

The command's status follows Run Command (ssm-reference §7.4): ``Success`` when every
invocation succeeded; otherwise ``Failed`` (``Incomplete`` below the error threshold),
and the step fails. Instances never started because the threshold was crossed are
recorded ``Cancelled`` (``Terminated``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from actions._command_document import PreparedPlugin
from actions._fleet_progress import FleetProgress
from actions._invocation import InvocationOutcome, invoke, not_run, response_code, step_output
from runbook_engine.errors import TargetError
from runbook_engine.fanout import fan_out
from runbook_engine.inventory import Instance
from runbook_engine.plugin import ActionContext, ActionError, ActionResult, FailureStage
from runbook_engine.ratecontrol import RateControl

REASON_LIMIT = 200


def rate_control(inputs: Mapping[str, Any], ramp_up: bool) -> RateControl:
    rate = RateControl(
        str(inputs.get("MaxConcurrency") or "50").strip(),
        str(inputs.get("MaxErrors") if inputs.get("MaxErrors") not in (None, "") else "0").strip(),
        ramp_up,
    )
    try:
        rate.check()
    except ValueError as exc:
        raise ActionError(str(exc), stage=FailureStage.INPUT_VALIDATION) from exc
    return rate


def _as_list(value: Any) -> list[Any] | None:
    if value in (None, "", []):
        return None
    return [value] if isinstance(value, str | Mapping) else list(value)


async def resolve_instances(inputs: Mapping[str, Any], ctx: ActionContext) -> list[Instance]:
    ids = _as_list(inputs.get("InstanceIds"))
    targets = _as_list(inputs.get("Targets"))
    try:
        return await ctx.targets.resolve(ids, targets)
    except TargetError as exc:
        raise ActionError(exc.message, stage=FailureStage.PRE_VERIFICATION) from exc


async def run_on_instances(
    inputs: Mapping[str, Any],
    ctx: ActionContext,
    plugins: Sequence[PreparedPlugin],
    *,
    default_timeout: int | None,
    what: str,
) -> ActionResult:
    """Run ``plugins`` on the instances ``inputs`` name; the step's result or ActionError."""
    rate = rate_control(inputs, ctx.targets.ramp_up)
    progress = FleetProgress(ctx, ctx.state)
    resumed = bool(progress.instances)
    if resumed:
        instances = await resolve_instances({"InstanceIds": progress.instances}, ctx)
    else:
        instances = await resolve_instances(inputs, ctx)
        progress.instances = [i.id for i in instances]
        await progress.save()
    earlier: dict[int, InvocationOutcome] = {}
    for index, instance in enumerate(instances):
        if instance.id in progress.done:
            earlier[index] = InvocationOutcome.from_state(progress.done[instance.id])
        elif instance.id in progress.started:
            interrupted = not_run(
                instance,
                progress.command_id,
                progress.requested,
                "Failed",
                "Failed",
                f"{instance.id}: interrupted: the engine stopped while the command ran there; "
                "it is not run twice\n",
                failed=True,
            )
            progress.finish(instance.id, interrupted.as_state())
            earlier[index] = interrupted
    delivery = inputs.get("TimeoutSeconds") if what == "aws:runCommand" else None
    deadline = ctx.now().timestamp() + float(delivery) if delivery else None

    async def work(instance: Instance) -> InvocationOutcome:
        if deadline is not None and ctx.now().timestamp() > deadline:
            outcome = not_run(
                instance,
                progress.command_id,
                progress.requested,
                "TimedOut",
                "Delivery Timed Out",
                f"the command was not delivered within TimeoutSeconds={delivery}\n",
                failed=False,
            )
        else:
            await progress.start(instance.id)
            outcome = await invoke(
                instance,
                ctx.targets.target(instance),
                plugins,
                command_id=progress.command_id,
                requested=progress.requested,
                now=ctx.now,
                region=ctx.region,
                default_timeout=default_timeout,
            )
        progress.finish(instance.id, outcome.as_state())
        return outcome

    async with anyio.create_task_group() as group:
        group.start_soon(progress.flush_finished)
        result = await fan_out(
            instances, work, rate=rate, failed=lambda o: o.failed, earlier=earlier
        )
        group.cancel_scope.cancel()
    await progress.flush()
    outcomes: list[InvocationOutcome] = []
    for index, instance in enumerate(instances):
        found = result.results.get(index)
        if found is None:
            found = not_run(
                instance,
                progress.command_id,
                progress.requested,
                "Cancelled",
                "Terminated",
                f"not started: the error threshold (MaxErrors={rate.max_errors}) was exceeded\n",
                failed=False,
            )
        outcomes.append(found)
    return _step_result(
        inputs, what, progress.command_id, instances, outcomes, result.threshold_exceeded, rate
    )


def _step_result(
    inputs: Mapping[str, Any],
    what: str,
    command_id: str,
    instances: Sequence[Instance],
    outcomes: Sequence[InvocationOutcome],
    exceeded: bool,
    rate: RateControl,
) -> ActionResult:
    records = [o.record for o in outcomes]
    failed = [o for o in outcomes if o.failed]
    if not instances:
        status, details = "Failed", "No Instances In Tag"
    elif all(r["Status"] == "Success" for r in records):
        status, details = "Success", "Success"
    elif exceeded:
        timed_out = all(o.record["StatusDetails"] == "Execution Timed Out" for o in failed)
        status, details = ("TimedOut", "Execution Timed Out") if timed_out else ("Failed", "Failed")
    else:
        status, details = "Failed", "Incomplete"
    response = {
        "CommandId": command_id,
        "Status": status,
        "StatusDetails": details,
        "TargetCount": len(instances),
        "CompletedCount": sum(1 for r in records if r["Status"] != "Cancelled"),
        "ErrorCount": len(failed),
        "CommandInvocations": records,
    }
    outputs = {
        "CommandId": command_id,
        "Status": status,
        "ResponseCode": response_code(records),
        "Output": step_output(outcomes),
    }
    logs = "\n".join(
        f"===== {o.record['InstanceId']}: {o.record['Status']} (exit {o.record['ResponseCode']})"
        f" =====\n--- stdout ---\n{o.stdout}\n--- stderr ---\n{o.stderr}"
        for o in outcomes
    )
    if status == "Success":
        return ActionResult(outputs=outputs, response=response, logs=logs)
    if not instances:
        message = f"{what}: no instances match {inputs.get('Targets') or inputs.get('InstanceIds')}"
    else:
        message = _failure_message(what, records, outcomes, exceeded, rate)
    raise ActionError(
        message,
        outputs=outputs,
        response=response,
        logs=logs,
        details={"CommandId": [command_id], "StatusDetails": [details]},
    )


def _reason(outcome: InvocationOutcome) -> str:
    record = outcome.record
    if record["StatusDetails"] == "Execution Timed Out":
        head = "timed out"
    elif record["ResponseCode"] not in (-1, None):
        head = f"exit code {record['ResponseCode']}"
    else:
        head = "failed"
    tail = outcome.stderr.strip().splitlines()[-1:] if outcome.stderr.strip() else []
    line = tail[0].removeprefix(f"{record['InstanceId']}: ") if tail else ""
    text = f"{head}: {line}" if line else head
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


def _failure_message(
    what: str,
    records: Sequence[Mapping[str, Any]],
    outcomes: Sequence[InvocationOutcome],
    exceeded: bool,
    rate: RateControl,
) -> str:
    failed = [o for o in outcomes if o.failed]
    cancelled = sum(1 for r in records if r["Status"] == "Cancelled")
    delivery = sum(1 for r in records if r["StatusDetails"] == "Delivery Timed Out")
    parts = [f"{what} failed on {len(failed)} of {len(records)} instance(s)"]
    reasons = "; ".join(f"{o.record['InstanceId']}: {_reason(o)}" for o in failed[:5])
    if len(failed) > 5:
        reasons += f"; and {len(failed) - 5} more"
    if reasons:
        parts.append(reasons)
    if exceeded:
        parts.append(f"MaxErrors={rate.max_errors} exceeded, {cancelled} instance(s) not started")
    if delivery:
        parts.append(f"{delivery} not delivered within TimeoutSeconds")
    return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")
