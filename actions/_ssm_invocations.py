"""The invocations of a finished SSM command, and the aws:runCommand step result made of
them, in the shapes the local run gives (actions._fleet_command): ``CommandId``,
``Status`` (the command's), ``ResponseCode`` and ``Output`` (2500 characters; one section
per node when there are several), ``CommandInvocations`` records in the response.

Each node is read with ``GetCommandInvocation`` (stdout 24,000 / stderr 8,000 characters,
as SSM cuts them), or with ``ListCommandInvocations`` when SSM resolved ``Targets`` (only
it names the nodes) or the document has several plugins (``GetCommandInvocation`` then
wants a plugin name; each plugin's 2500-character ``Output`` is what there is).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from actions._invocation import (
    STDERR_LIMIT,
    STDOUT_LIMIT,
    InvocationOutcome,
    response_code,
    step_output,
)
from actions._ssm_route import WHAT, SsmRoute
from actions.run_shell_script import truncate_output
from runbook_engine.aws_surface import AwsCaller, AwsError
from runbook_engine.plugin import ActionError, ActionResult

REASON_LIMIT = 200


async def read_invocations(
    aws: AwsCaller, command: Mapping[str, Any], route: SsmRoute
) -> list[InvocationOutcome]:
    """Every invocation of a terminal command, as the local run records them: on the
    nodes the step named, or those SSM resolved its Targets to."""
    command_id = str(command["CommandId"])
    instance_ids = list(route.instance_ids) or [str(i) for i in command.get("InstanceIds") or []]
    if not instance_ids:  # SSM resolved Targets: only ListCommandInvocations names the nodes
        listed = await _list_invocations(aws, {"CommandId": command_id})
        return [_from_listed(command, item) for item in listed]
    outcomes: list[InvocationOutcome | None] = [None] * len(instance_ids)

    async def read(index: int, instance_id: str) -> None:
        outcomes[index] = await _read_one(aws, command, instance_id)

    async with anyio.create_task_group() as group:
        for index, instance_id in enumerate(instance_ids):
            group.start_soon(read, index, instance_id)
    return [o for o in outcomes if o is not None]


async def _list_invocations(aws: AwsCaller, request: Mapping[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = {**request, "Details": True, **({"NextToken": token} if token else {})}
        answer = await aws.call("ssm", "ListCommandInvocations", page)
        items.extend(answer.get("CommandInvocations") or [])
        token = answer.get("NextToken")
        if not token:
            return items


async def _read_one(
    aws: AwsCaller, command: Mapping[str, Any], instance_id: str
) -> InvocationOutcome:
    command_id = str(command["CommandId"])
    try:
        answer = await aws.call(
            "ssm", "GetCommandInvocation", {"CommandId": command_id, "InstanceId": instance_id}
        )
    except AwsError as exc:
        if exc.code == "InvalidPluginName":  # several plugins: each one's Output instead
            listed = await _list_invocations(
                aws, {"CommandId": command_id, "InstanceId": instance_id}
            )
            if listed:
                return _from_listed(command, listed[0])
        if exc.code not in ("InvocationDoesNotExist", "InvalidPluginName"):
            raise
        return _never_delivered(command, instance_id, exc.code)
    return _from_invocation(command, answer)


def _record(
    command: Mapping[str, Any], source: Mapping[str, Any], plugins: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "CommandId": str(command["CommandId"]),
        "InstanceId": str(source.get("InstanceId")),
        "InstanceName": str(source.get("InstanceName") or source.get("InstanceId")),
        "Status": str(source.get("Status") or "Failed"),
        "StatusDetails": str(source.get("StatusDetails") or source.get("Status") or ""),
        "ResponseCode": int(source.get("ResponseCode", -1)),
        "RequestedDateTime": command.get("RequestedDateTime"),
        "ExecutionStartDateTime": source.get("ExecutionStartDateTime"),
        "ExecutionEndDateTime": source.get("ExecutionEndDateTime"),
        "CommandPlugins": plugins,
    }


def _from_invocation(command: Mapping[str, Any], answer: Mapping[str, Any]) -> InvocationOutcome:
    """GetCommandInvocation: one plugin, SSM's own stdout and stderr (already cut)."""
    stdout = str(answer.get("StandardOutputContent") or "")
    stderr = str(answer.get("StandardErrorContent") or "")
    plugin = {
        "Name": answer.get("PluginName"),
        "Status": answer.get("Status"),
        "StatusDetails": answer.get("StatusDetails"),
        "ResponseCode": answer.get("ResponseCode", -1),
        "ResponseStartDateTime": answer.get("ExecutionStartDateTime"),
        "ResponseFinishDateTime": answer.get("ExecutionEndDateTime"),
        "Output": truncate_output(stdout, stderr),
    }
    record = _record(command, answer, [plugin])
    record["StandardOutputContent"] = stdout[:STDOUT_LIMIT]
    record["StandardErrorContent"] = stderr[:STDERR_LIMIT]
    return InvocationOutcome(record, stdout, stderr, failed=record["Status"] != "Success")


def _from_listed(command: Mapping[str, Any], item: Mapping[str, Any]) -> InvocationOutcome:
    """ListCommandInvocations with details: each plugin's Output (stdout and stderr
    together, 2500 characters each) is all there is."""
    plugins = [dict(p) for p in item.get("CommandPlugins") or []]
    output = "".join(str(p.get("Output") or "") for p in plugins)
    # A CommandInvocation has no ResponseCode of its own: the first failed plugin's, as
    # the local run reports it, else the last plugin's.
    failing = [p for p in plugins if p.get("Status") in ("Failed", "TimedOut")]
    code = (failing or plugins or [{}])[0 if failing else -1].get("ResponseCode", -1)
    record = _record(command, {**item, "ResponseCode": code}, plugins)
    record["StandardOutputContent"] = output[:STDOUT_LIMIT]
    record["StandardErrorContent"] = ""
    return InvocationOutcome(record, output, "", failed=record["Status"] != "Success")


def _never_delivered(command: Mapping[str, Any], instance_id: str, code: str) -> InvocationOutcome:
    message = f"{instance_id}: SSM has no invocation of the command on this node ({code})\n"
    source = {"InstanceId": instance_id, "Status": "Failed", "StatusDetails": "Undeliverable"}
    record = _record(command, source, [])
    record["StandardOutputContent"], record["StandardErrorContent"] = "", message
    return InvocationOutcome(record, "", message, failed=True)


# -- the step's result ----------------------------------------------------------------------


def _reason(outcome: InvocationOutcome) -> str:
    record = outcome.record
    head = record["StatusDetails"] or record["Status"]
    if record["ResponseCode"] not in (-1, None) and record["Status"] == "Failed":
        head = f"exit code {record['ResponseCode']}"
    lines = (outcome.stderr or outcome.stdout).strip().splitlines()
    text = f"{head}: {lines[-1]}" if lines else head
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


def step_result(
    command: Mapping[str, Any], outcomes: Sequence[InvocationOutcome], route: SsmRoute
) -> ActionResult:
    command_id = str(command["CommandId"])
    status = str(command.get("Status"))
    details = str(command.get("StatusDetails") or status)
    if not outcomes:  # SSM found no node for the Targets
        status, details = "Failed", "No Instances In Tag"
    records = [o.record for o in outcomes]
    response = {
        "CommandId": command_id,
        "Status": status,
        "StatusDetails": details,
        "TargetCount": len(records),
        "CompletedCount": sum(1 for r in records if r["Status"] != "Cancelled"),
        "ErrorCount": sum(1 for o in outcomes if o.failed),
        "DocumentName": command.get("DocumentName"),
        "RunOn": "AWS SSM",
        "CommandInvocations": records,
    }
    outputs = {
        "CommandId": command_id,
        "Status": status,
        "ResponseCode": response_code(records) if records else -1,
        "Output": step_output(outcomes) if outcomes else "",
    }
    logs = f"sent to AWS SSM: {route.reason}\n" + "\n".join(
        f"===== {o.record['InstanceId']}: {o.record['Status']} (exit {o.record['ResponseCode']})"
        f" =====\n--- stdout ---\n{o.stdout}\n--- stderr ---\n{o.stderr}"
        for o in outcomes
    )
    if status == "Success":
        return ActionResult(outputs=outputs, response=response, logs=logs)
    if not outcomes:
        message = f"{WHAT}: SSM found no managed node for {list(route.targets)}"
    else:
        failed = [o for o in outcomes if o.failed]
        reasons = "; ".join(f"{o.record['InstanceId']}: {_reason(o)}" for o in failed[:5])
        more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
        message = (
            f"{WHAT} on AWS SSM: command {command_id} ended {status} ({details}) on "
            f"{len(failed)} of {len(records)} node(s)" + (f": {reasons}{more}" if reasons else "")
        )
    raise ActionError(
        message,
        outputs=outputs,
        response=response,
        logs=logs,
        details={"CommandId": [command_id], "StatusDetails": [details]},
    )
