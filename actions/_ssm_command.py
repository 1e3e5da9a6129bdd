"""aws:runCommand through AWS Systems Manager Run Command, for nodes the inventory lacks
(which ones: actions._ssm_route).

On the SSM side the Command document is SSM's, not a local file: nothing is looked up
locally and SSM validates the document and its parameters.

The run: ``SendCommand`` through the AWS caller (the runbook's ``assumeRole``, throttling
retries, error mapping), then ``ListCommands`` polled with the caller's jittered delay
until the command is terminal; then each invocation is read with
``GetCommandInvocation`` (stdout 24,000 / stderr 8,000 characters), or with
``ListCommandInvocations`` when SSM resolved ``Targets`` or the document has several
plugins. A cancelled or timed-out step sends ``CancelCommand`` (a cancellation that comes while
SendCommand is on its way waits for its answer, so the command is known and cancelled).

Durability: SendCommand has no idempotency token, so the step checkpoints twice: that it
is about to send (with the time), then the ``CommandId`` as soon as SSM returns it, before
any polling. A resumed step with a ``CommandId`` only polls. One interrupted between the
two looks for its command among the commands sent since (same document, nodes and
comment); if it finds exactly one it adopts it, otherwise it fails as interrupted and
sends nothing: a resumed step never sends a second command.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from actions._ssm_invocations import read_invocations, step_result
from actions._ssm_route import STATE_KEY, WHAT, SsmRoute
from runbook_engine.aws_surface import AwsCaller, AwsError
from runbook_engine.plugin import (
    ActionContext,
    ActionError,
    ActionResult,
    FailureStage,
    FailureType,
)

TERMINAL = frozenset({"Success", "Cancelled", "Failed", "TimedOut"})
NOT_VISIBLE_POLLS = 20  # ListCommands may not know a command right after SendCommand
SEND_LOOKBACK = timedelta(seconds=60)  # clock skew allowed when finding a sent command
LOOKUP_PAGES = 20
MAX_POLL_FAILURES = 10


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
        command = await _wait(aws, command_id, ctx.log)
    except anyio.get_cancelled_exc_class():
        await _cancel(aws, ctx, state, request)
        raise
    except ActionError as exc:
        raise _via_ssm(route, exc) from exc
    try:
        outcomes = await read_invocations(aws, command, route)
    except ActionError as exc:
        raise _via_ssm(route, exc) from exc
    return step_result(command, outcomes, route)


async def _send_once(
    request: Mapping[str, Any], ctx: ActionContext, state: dict[str, Any], route: SsmRoute
) -> str:
    if state.get("sending"):  # resumed: the engine stopped between sending and recording
        found = await _find_sent(ctx.aws, request, str(state["sending"]))
        if found is None:
            raise ActionError(
                "interrupted while sending the command; no command sent "
                f"since {state['sending']} matches it, and it is not sent twice"
            )
        ctx.log.info("found command %s sent before the interruption", found)
        command_id = found
    else:
        state["sending"] = ctx.now().astimezone(UTC).isoformat()
        await ctx.checkpoint({STATE_KEY: state})
        ctx.log.info("sending %s to AWS SSM: %s", request.get("DocumentName"), route.reason)
        # Shielded: a step cancelled while SendCommand is on its way waits for the answer
        # (one call's timeout at most), so that it knows which command to cancel.
        with anyio.CancelScope(shield=True):
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


def _lasting(error: ActionError) -> bool:
    """A polling error that asking again cannot make go away."""
    return (
        error.stage == FailureStage.INPUT_VALIDATION or error.failure_type == FailureType.PERMISSION
    )


async def _wait(aws: AwsCaller, command_id: str, log: logging.Logger) -> dict[str, Any]:
    """Poll ListCommands with the caller's jittered delay until the command is terminal.
    A poll that fails for a passing reason (the network, a 5xx) is retried, at most
    MAX_POLL_FAILURES times in a row: the command runs on whatever the poller sees."""
    unseen = failures = 0
    while True:
        commands: list[dict[str, Any]] | None = None
        try:
            answer = await aws.call("ssm", "ListCommands", {"CommandId": command_id})
            commands = list(answer.get("Commands") or [])
            failures = 0
        except AwsError as exc:
            if exc.code == "InvalidCommandId":
                commands = []
            elif _lasting(exc) or failures >= MAX_POLL_FAILURES:
                raise
        except ActionError as exc:
            if _lasting(exc) or failures >= MAX_POLL_FAILURES:
                raise
        if commands is None:
            failures += 1
            log.info("polling command %s failed (%d in a row), will retry", command_id, failures)
        elif commands and commands[0].get("Status") in TERMINAL:
            return dict(commands[0])
        elif not commands:
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
