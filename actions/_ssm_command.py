"""aws:runCommand through AWS Systems Manager Run Command, for nodes the inventory lacks.

Which side runs a step (:func:`ssm_route`) is decided once, before anything runs, and never
guessed silently:

* ``InstanceIds`` (or a single ``Targets`` entry with ``Key: InstanceIds``): an id the
  inventory lists runs locally (SSH, Docker, local), as before. An id it does not list
  goes to SSM when it has the form of an SSM managed-node id (``i-`` and 8 or 17
  characters, ``mi-`` and 17, the ``SendCommand`` pattern) and AWS is configured (a
  region, profile or endpoint: ``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, or
  the engine's settings). A step naming both kinds is refused before anything runs: one
  aws:runCommand step runs on one side; split it into two steps.
* ``Targets`` (``tag:<key>``, ``tag-key``, ``resource-groups:Name``,
  ``resource-groups:ResourceTypeFilters``): resolved against the inventory first; when it
  matches no instance there and AWS is configured, the same ``Targets`` are passed to
  ``SendCommand`` and SSM resolves them (the step's log says so). Target keys only the
  inventory knows (``ResourceGroup``, ``ParameterValues``, ``AWS::EC2::Instance``) never
  go to SSM.

On the SSM side the Command document is SSM's, not a local file: nothing is looked up
locally and SSM validates the document and its parameters.

The run: ``SendCommand`` through the AWS caller (the runbook's ``assumeRole``, throttling
retries, error mapping), then ``ListCommands`` polled with the caller's jittered delay
until the command is terminal; then each invocation is read with
``GetCommandInvocation`` (stdout 24,000 / stderr 8,000 characters), or with
``ListCommandInvocations`` when SSM resolved ``Targets`` or the document has several
plugins. A cancelled or timed-out step sends ``CancelCommand``.

Durability: SendCommand has no idempotency token, so the step checkpoints twice: that it
is about to send (with the time), then the ``CommandId`` as soon as SSM returns it, before
any polling. A resumed step with a ``CommandId`` only polls. One interrupted between the
two looks for its command among the commands sent since (same document, nodes and
comment); if it finds exactly one it adopts it, otherwise it fails as interrupted and
sends nothing: a resumed step never sends a second command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from actions._invocation import STDERR_LIMIT, STDOUT_LIMIT, InvocationOutcome
from actions.run_shell_script import truncate_output
from runbook_engine.aws_surface import AwsCaller, AwsError
from runbook_engine.errors import TargetError
from runbook_engine.plugin import (
    ActionContext,
    ActionError,
    ActionResult,
    FailureStage,
    FailureType,
)

STATE_KEY = "ssm"
SSM_NODE_ID = re.compile(r"^(i-(\w{8}|\w{17})|mi-\w{17})$")
SSM_TARGET_KEYS = ("tag-key", "resource-groups:Name", "resource-groups:ResourceTypeFilters")
TERMINAL = frozenset({"Success", "Cancelled", "Failed", "TimedOut"})
OUTPUT_LIMIT = 2500
REASON_LIMIT = 200
NOT_VISIBLE_POLLS = 20  # ListCommands may not know a command right after SendCommand
SEND_LOOKBACK = timedelta(seconds=60)  # clock skew allowed when finding a sent command
LOOKUP_PAGES = 20
WHAT = "aws:runCommand"


@dataclass(frozen=True)
class SsmRoute:
    """Where SendCommand sends the command, and why it goes to SSM at all."""

    instance_ids: tuple[str, ...] = ()
    targets: tuple[Mapping[str, Any], ...] = ()
    reason: str = ""

    def as_state(self) -> dict[str, Any]:
        return {
            "InstanceIds": list(self.instance_ids),
            "Targets": [dict(t) for t in self.targets],
            "reason": self.reason,
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> SsmRoute:
        return cls(
            tuple(data.get("InstanceIds") or ()),
            tuple(data.get("Targets") or ()),
            str(data.get("reason") or ""),
        )


def _as_list(value: Any) -> list[Any]:
    if value in (None, "", []):
        return []
    return [value] if isinstance(value, str | Mapping) else list(value)


def _is_ssm_target_key(key: str) -> bool:
    return key.startswith("tag:") or key in SSM_TARGET_KEYS


def _inventory_name(ctx: ActionContext) -> str:
    inventory = getattr(ctx.targets, "inventory", None)
    return str(getattr(inventory, "path", "<inventory>"))


async def _known(ctx: ActionContext, instance_id: str) -> bool:
    try:
        await ctx.targets.resolve(instance_ids=[instance_id])
    except TargetError:
        return False
    return True


def _refuse(message: str) -> ActionError:
    return ActionError(
        message, failure_type=FailureType.VERIFICATION, stage=FailureStage.PRE_VERIFICATION
    )


async def ssm_route(inputs: Mapping[str, Any], ctx: ActionContext) -> SsmRoute | None:
    """The SSM route of the step, or None when it runs on the inventory (the rule in the
    module docstring). A resumed step keeps the side it started on."""
    if STATE_KEY in ctx.state:
        return SsmRoute.from_state(ctx.state[STATE_KEY].get("route") or {})
    if ctx.state:
        return None  # the local run checkpointed already
    targets = [t for t in _as_list(inputs.get("Targets")) if isinstance(t, Mapping)]
    ids = [str(i) for i in _as_list(inputs.get("InstanceIds"))]
    if not ids and len(targets) == 1 and targets[0].get("Key") == "InstanceIds":
        ids = [str(i) for i in _as_list(targets[0].get("Values"))]
    if ids:
        return await _route_ids(ids, targets, ctx)
    if targets and all(_is_ssm_target_key(str(t.get("Key") or "")) for t in targets):
        try:
            if await ctx.targets.resolve(None, targets):
                return None
        except TargetError:
            pass  # e.g. a resource group the inventory does not have: SSM may
        if ctx.aws.configured:
            return SsmRoute(
                targets=tuple(targets),
                reason=f"Targets {targets} match no instance in the inventory "
                f"({_inventory_name(ctx)})",
            )
    return None


async def _route_ids(
    ids: Sequence[str], targets: Sequence[Mapping[str, Any]], ctx: ActionContext
) -> SsmRoute | None:
    if "*" in ids:
        return None
    try:
        await ctx.targets.resolve(instance_ids=ids)
        return None  # every id is in the inventory (the common case: one lookup)
    except TargetError:
        pass
    unknown = [i for i in ids if not await _known(ctx, i)]
    if not unknown or any(not SSM_NODE_ID.match(i) for i in unknown):
        return None  # the local run reports the ids that are nowhere
    known = [i for i in ids if i not in unknown]
    if known:
        raise _refuse(
            f"{WHAT}: InstanceIds mix instances of the inventory ({', '.join(known)}) with "
            f"ids it does not list ({', '.join(unknown)}), which would go to AWS SSM "
            "(SendCommand); one step runs on one side: split them into two aws:runCommand "
            "steps"
        )
    if not ctx.aws.configured:
        raise _refuse(
            f"Instance ids not in the inventory ({_inventory_name(ctx)}): {', '.join(unknown)}; "
            "they have the form of SSM managed-node ids, but AWS is not configured (no "
            "region from AWS_REGION, AWS_DEFAULT_REGION, a profile or the settings), so "
            "they were not sent to SSM"
        )
    reason = f"{', '.join(unknown)} not in the inventory ({_inventory_name(ctx)})"
    if targets:
        return SsmRoute(targets=tuple(targets), reason=reason)
    return SsmRoute(instance_ids=tuple(ids), reason=reason)


# -- the request ----------------------------------------------------------------------------


def _parameter_values(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [str(value)]


def send_request(inputs: Mapping[str, Any], route: SsmRoute) -> dict[str, Any]:
    """The SendCommand request: the step's inputs (every input is a SendCommand field),
    the nodes the route chose, Command parameters as lists of strings."""
    request = {k: v for k, v in inputs.items() if v is not None and k != "InstanceIds"}
    request.pop("Targets", None)
    if route.instance_ids:
        request["InstanceIds"] = list(route.instance_ids)
    else:
        request["Targets"] = [dict(t) for t in route.targets]
    parameters = inputs.get("Parameters")
    if isinstance(parameters, Mapping):
        request["Parameters"] = {str(k): _parameter_values(v) for k, v in parameters.items()}
    if request.get("TimeoutSeconds") is not None:
        request["TimeoutSeconds"] = int(request["TimeoutSeconds"])
    return request


def _via_ssm(route: SsmRoute, exc: ActionError) -> ActionError:
    """A failure of the SSM side, saying why the step went there."""
    return ActionError(
        f"{WHAT} on AWS SSM ({route.reason}): {exc.message}",
        failure_type=exc.failure_type,
        stage=exc.stage,
        details=exc.details,
    )


# -- the run --------------------------------------------------------------------------------


async def run_through_ssm(
    inputs: Mapping[str, Any], ctx: ActionContext, route: SsmRoute
) -> ActionResult:
    """Send (or find the command sent before a crash), wait, read the invocations."""
    aws = ctx.aws
    request = send_request(inputs, route)
    saved = dict(ctx.state.get(STATE_KEY) or {})
    state = {"route": route.as_state(), **saved}
    try:
        command_id = str(state.get("CommandId") or "")
        if not command_id:
            command_id = await _send_once(request, ctx, state, route)
        command = await _wait(aws, command_id)
    except anyio.get_cancelled_exc_class():
        await _cancel(aws, ctx, state, request)
        raise
    except ActionError as exc:
        raise _via_ssm(route, exc) from exc
    try:
        outcomes = await _read_invocations(aws, command, route)
    except ActionError as exc:
        raise _via_ssm(route, exc) from exc
    return _result(command, outcomes, route)


async def _send_once(
    request: Mapping[str, Any], ctx: ActionContext, state: dict[str, Any], route: SsmRoute
) -> str:
    if state.get("sending"):  # resumed: the engine stopped between sending and recording
        found = await _find_sent(ctx.aws, request, str(state["sending"]))
        if found is None:
            raise ActionError(
                f"{WHAT}: interrupted while sending the command to AWS SSM; no command sent "
                f"since {state['sending']} matches it, and it is not sent twice"
            )
        ctx.log.info("found command %s sent before the interruption", found)
        command_id = found
    else:
        state["sending"] = ctx.now().astimezone(UTC).isoformat()
        await ctx.checkpoint({STATE_KEY: state})
        ctx.log.info("sending %s to AWS SSM: %s", request.get("DocumentName"), route.reason)
        answer = await ctx.aws.call("ssm", "SendCommand", request)
        command_id = str(answer["Command"]["CommandId"])
    state["CommandId"] = command_id
    await ctx.checkpoint({STATE_KEY: state})
    return command_id


def _when(text: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _same_command(command: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    if command.get("DocumentName") != request.get("DocumentName"):
        return False
    if str(command.get("Comment") or "") != str(request.get("Comment") or ""):
        return False
    if request.get("InstanceIds"):
        return sorted(command.get("InstanceIds") or []) == sorted(request["InstanceIds"])
    return bool(command.get("Targets") == request.get("Targets"))


async def _find_sent(aws: AwsCaller, request: Mapping[str, Any], sending: str) -> str | None:
    """The one command SendCommand made for this step before the engine stopped."""
    since = (_when(sending) or datetime.now(UTC)) - SEND_LOOKBACK
    filters = [
        {"key": "InvokedAfter", "value": since.strftime("%Y-%m-%dT%H:%M:%SZ")},
        {"key": "DocumentName", "value": str(request["DocumentName"])},
    ]
    found: list[str] = []
    token: str | None = None
    for _ in range(LOOKUP_PAGES):
        page = {"Filters": filters, "MaxResults": 50, **({"NextToken": token} if token else {})}
        answer = await aws.call("ssm", "ListCommands", page)
        for command in answer.get("Commands") or []:
            when = _when(command.get("RequestedDateTime"))
            if when is not None and when >= since and _same_command(command, request):
                found.append(str(command["CommandId"]))
        token = answer.get("NextToken")
        if not token:
            break
    return found[0] if len(found) == 1 else None


async def _wait(aws: AwsCaller, command_id: str) -> dict[str, Any]:
    """Poll ListCommands with the caller's jittered delay until the command is terminal."""
    unseen = 0
    while True:
        try:
            answer = await aws.call("ssm", "ListCommands", {"CommandId": command_id})
            commands = answer.get("Commands") or []
        except AwsError as exc:
            if exc.code != "InvalidCommandId":
                raise
            commands = []
        if commands and commands[0].get("Status") in TERMINAL:
            return dict(commands[0])
        if not commands:
            unseen += 1
            if unseen > NOT_VISIBLE_POLLS:
                raise ActionError(f"SSM does not know command {command_id} (ListCommands)")
        await anyio.sleep(aws.poll_delay())


async def _cancel(
    aws: AwsCaller, ctx: ActionContext, state: Mapping[str, Any], request: Mapping[str, Any]
) -> None:
    """CancelCommand for a cancelled or timed-out step, even when the cancellation came
    while SendCommand was on its way (the command is then looked up)."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(30):
        try:
            command_id = state.get("CommandId")
            if not command_id and state.get("sending"):
                command_id = await _find_sent(aws, request, str(state["sending"]))
            if command_id:
                await aws.call("ssm", "CancelCommand", {"CommandId": command_id})
                ctx.log.info("cancelled command %s on AWS SSM", command_id)
        except ActionError as exc:
            ctx.log.warning("CancelCommand failed; the command may still run: %s", exc.message)


# -- invocations ----------------------------------------------------------------------------


async def _read_invocations(
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
        "Output": truncate_output(stdout, stderr, OUTPUT_LIMIT),
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


def _response_code(records: Sequence[Mapping[str, Any]]) -> int:
    if len(records) == 1:
        return int(records[0]["ResponseCode"])
    failing = [r for r in records if r["Status"] not in ("Success", "Cancelled")]
    return int(failing[0]["ResponseCode"]) if failing else 0


def _output(outcomes: Sequence[InvocationOutcome]) -> str:
    if len(outcomes) == 1:
        return truncate_output(outcomes[0].stdout, outcomes[0].stderr, OUTPUT_LIMIT)
    text = "\n".join(
        f"----- {o.record['InstanceId']} -----\n{truncate_output(o.stdout, o.stderr, OUTPUT_LIMIT)}"
        for o in outcomes
    )
    if len(text) <= OUTPUT_LIMIT:
        return text
    return text[: OUTPUT_LIMIT - 23] + "\n---Output truncated---"


def _reason(outcome: InvocationOutcome) -> str:
    record = outcome.record
    head = record["StatusDetails"] or record["Status"]
    if record["ResponseCode"] not in (-1, None) and record["Status"] == "Failed":
        head = f"exit code {record['ResponseCode']}"
    lines = (outcome.stderr or outcome.stdout).strip().splitlines()
    text = f"{head}: {lines[-1]}" if lines else head
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


def _result(
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
        "ResponseCode": _response_code(records) if records else -1,
        "Output": _output(outcomes) if outcomes else "",
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
