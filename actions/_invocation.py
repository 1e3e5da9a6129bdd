"""One command invocation: a Command document's plugins run in order on one instance.

The result is a ``CommandInvocation`` as ``ListCommandInvocations`` (with details) shows
it, with the API's limits: plugin ``Output`` 2500 characters, ``StandardOutputContent``
24,000, ``StandardErrorContent`` 8,000 (ssm-reference §7.5). The full stdout and stderr
come back beside it, for the step's logs.

Plugins run in order; a failed plugin does not stop the next ones unless it says
``onFailure: exit`` (or ``successAndExit``); ``onSuccess: exit`` stops after a success;
``finallyStep: true`` runs even after an exit. A plugin whose ``precondition`` does not
match the instance's platform is skipped. Scripts see ``AWS_SSM_INSTANCE_ID`` and
``AWS_SSM_REGION_NAME``, as under the SSM agent. Exit code 194 (3010 for PowerShell) reboots
the instance, waits for it and runs the same plugin again, as the SSM agent does (the
output of both runs is kept); the wait ends before the step's timeout, and an instance
that does not come back fails the invocation, naming it, without the later plugins.
A target that cannot be reached, or is lost mid-command, fails the invocation with a
message naming it; the output produced until then is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio

from actions._command_document import (
    POWERSHELL,
    RUNNABLE,
    SHELL,
    PreparedPlugin,
    precondition_met,
)
from actions.run_shell_script import OUTPUT_LIMIT, script_text, truncate_output
from runbook_engine.errors import TargetError
from runbook_engine.inventory import Instance
from runbook_engine.plugin import ActionError
from runbook_engine.targets import Target

STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
DEFAULT_PLUGIN_TIMEOUT = 3600
REBOOT_EXIT_CODES = {SHELL: 194, POWERSHELL: 3010}
MAX_REBOOTS = 10
REBOOT_DEADLINE_MARGIN = 1.0  # seconds kept before the step timeout to report the reboot
POWERSHELL_COMMAND = (
    "pwsh",
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-File",
)

log = logging.getLogger("runbook_engine.run_command")


class HostLostInReboot(TargetError):
    """Exit code 194 rebooted the instance and it did not come back (or did not go down)."""


@dataclass
class InvocationOutcome:
    """The API-shaped record and the full text, JSON-able for checkpoints."""

    record: dict[str, Any]
    stdout: str = ""
    stderr: str = ""
    failed: bool = False  # counts toward MaxErrors

    def as_state(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "failed": self.failed,
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> InvocationOutcome:
        return cls(
            dict(data["record"]),
            data.get("stdout", ""),
            data.get("stderr", ""),
            bool(data.get("failed")),
        )


@dataclass
class _PluginRun:
    plugin: PreparedPlugin
    status: str = "Pending"
    details: str = "Pending"
    code: int = -1
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    start: str | None = None
    end: str | None = None
    note: str = ""  # why a plugin was skipped: its Output, not the instance's stdout

    def api(self) -> dict[str, Any]:
        out, err = "".join(self.stdout) + self.note, "".join(self.stderr)
        return {
            "Name": self.plugin.name,
            "Status": self.status,
            "StatusDetails": self.details,
            "ResponseCode": self.code,
            "ResponseStartDateTime": self.start,
            "ResponseFinishDateTime": self.end,
            "Output": truncate_output(out, err),
        }


def _seconds(value: Any, default: int | None) -> int | None:
    if value in (None, ""):
        return default
    try:
        seconds = int(str(value).strip())
    except ValueError:
        raise ActionError(
            f"timeoutSeconds must be a whole number of seconds, not {value!r}"
        ) from None
    if seconds < 1:
        raise ActionError(f"timeoutSeconds must be at least 1, not {seconds}")
    return seconds


async def invoke(
    instance: Instance,
    target: Target,
    plugins: Sequence[PreparedPlugin],
    *,
    command_id: str,
    requested: str,
    now: Callable[[], datetime],
    region: str = "us-east-1",
    default_timeout: int | None = DEFAULT_PLUGIN_TIMEOUT,
) -> InvocationOutcome:
    stamp = lambda: now().isoformat()  # noqa: E731
    runs = [_PluginRun(p) for p in plugins]
    started = stamp()
    exited = False
    for run in runs:
        if exited and not run.plugin.finally_step:
            run.status, run.details = "Cancelled", "Cancelled"  # skipped by an earlier exit
            continue
        run.start = stamp()
        try:
            await _run_plugin(instance, target, run, default_timeout, region)
        except TargetError as exc:
            run.status, run.details, run.code = "Failed", "Failed", -1
            exited = exited or isinstance(exc, HostLostInReboot)  # no later plugin can run
            partial = getattr(exc, "partial", None)
            if partial is not None:  # output produced before the target was lost
                run.stdout.append(partial.stdout)
                run.stderr.append(partial.stderr)
            run.stderr.append(f"{exc.message}\n")
        except ActionError as exc:
            run.status, run.details, run.code = "Failed", "Failed", -1
            run.stderr.append(f"{exc.message}\n")
        run.end = stamp()
        on_failure = str(run.plugin.inputs.get("onFailure", ""))
        if run.status in ("Failed", "TimedOut") and on_failure in ("exit", "successAndExit"):
            if on_failure == "successAndExit":
                run.status, run.details = "Success", "Success"
            exited = True
        elif run.status == "Success" and str(run.plugin.inputs.get("onSuccess", "")) == "exit":
            exited = True
    return _outcome(instance, runs, command_id, requested, started, stamp())


async def _run_plugin(
    instance: Instance, target: Target, run: _PluginRun, default_timeout: int | None, region: str
) -> None:
    plugin = run.plugin
    if not precondition_met(plugin.precondition, target.platform):
        run.status, run.details, run.code = "Success", "Skipped", 0
        run.note = (
            f"Step execution skipped due to unsatisfied preconditions: "
            f"{dict(plugin.precondition or {})}\n"
        )
        return
    if plugin.action not in RUNNABLE:
        raise ActionError(
            f"plugin {plugin.action} cannot run on {instance.id} "
            f"(runnable plugins: {', '.join(RUNNABLE)})"
        )
    if plugin.action == SHELL and target.platform == "Windows":
        run.status, run.details, run.code = "Success", "Skipped", 0
        run.note = f"{SHELL} does not run on Windows instances: skipped\n"
        return
    commands = plugin.inputs.get("runCommand")
    if commands in (None, "", []):
        raise ActionError(f"plugin {plugin.name}: runCommand is empty")
    timeout = _seconds(plugin.inputs.get("timeoutSeconds"), default_timeout)
    interpreter = POWERSHELL_COMMAND if plugin.action == POWERSHELL else ("sh",)
    script = script_text(commands)
    cwd = str(plugin.inputs.get("workingDirectory") or "") or None
    env = {**plugin.env, "AWS_SSM_INSTANCE_ID": instance.id, "AWS_SSM_REGION_NAME": region}
    reboots = 0
    while True:
        result = await target.run(
            script, env=env, cwd=cwd, time_limit=timeout, interpreter=interpreter
        )
        run.stdout.append(result.stdout)
        run.stderr.append(result.stderr)
        run.code = result.exit_code
        if result.timed_out:
            run.status, run.details = "TimedOut", "Execution Timed Out"
            return
        if result.exit_code == REBOOT_EXIT_CODES[plugin.action] and reboots < MAX_REBOOTS:
            reboots += 1
            log.info(
                "%s: plugin %s asked for a reboot (exit %d); rebooting",
                instance.id,
                plugin.name,
                result.exit_code,
            )
            try:
                await target.reboot(_reboot_time_limit(instance))
            except TargetError as exc:
                raise HostLostInReboot(exc.message) from exc
            continue
        if result.exit_code == 0:
            run.status, run.details = "Success", "Success"
        else:
            run.status, run.details = "Failed", "Failed"
            if result.exit_code == 127 and plugin.action == POWERSHELL:
                run.stderr.append(f"PowerShell (pwsh) is not installed on {instance.id}\n")
        return


def _reboot_time_limit(instance: Instance) -> float:
    """The inventory's reboot_timeout, cut short so that a host that does not come back
    fails with a message naming it before the step's own timeout cancels everything."""
    limit = float(getattr(instance.connection, "reboot_timeout", 600.0))
    left = anyio.current_effective_deadline() - anyio.current_time() - REBOOT_DEADLINE_MARGIN
    return max(min(limit, left), 0.1)


def _outcome(
    instance: Instance,
    runs: Sequence[_PluginRun],
    command_id: str,
    requested: str,
    started: str,
    ended: str,
) -> InvocationOutcome:
    stdout = "".join("".join(r.stdout) for r in runs)
    stderr = "".join("".join(r.stderr) for r in runs)
    statuses = [r.status for r in runs if r.status != "Cancelled"]
    if any(s == "TimedOut" for s in statuses):
        status, details = "TimedOut", "Execution Timed Out"
    elif any(s == "Failed" for s in statuses):
        status, details = "Failed", "Failed"
    else:
        status, details = "Success", "Success"
    ran = [r for r in runs if r.start is not None]
    code = next(
        (r.code for r in ran if r.status in ("Failed", "TimedOut")), ran[-1].code if ran else -1
    )
    record = {
        "CommandId": command_id,
        "InstanceId": instance.id,
        "InstanceName": instance.tags.get("Name", instance.id),
        "Status": status,
        "StatusDetails": details,
        "ResponseCode": code,
        "RequestedDateTime": requested,
        "ExecutionStartDateTime": started,
        "ExecutionEndDateTime": ended,
        "StandardOutputContent": stdout[:STDOUT_LIMIT],
        "StandardErrorContent": stderr[:STDERR_LIMIT],
        "CommandPlugins": [r.api() for r in runs],
    }
    return InvocationOutcome(record, stdout, stderr, failed=status != "Success")


def not_run(
    instance: Instance,
    command_id: str,
    requested: str,
    status: str,
    details: str,
    message: str,
    *,
    failed: bool,
) -> InvocationOutcome:
    """An invocation that did not run its plugins: never started, interrupted, undeliverable."""
    record = {
        "CommandId": command_id,
        "InstanceId": instance.id,
        "InstanceName": instance.tags.get("Name", instance.id),
        "Status": status,
        "StatusDetails": details,
        "ResponseCode": -1,
        "RequestedDateTime": requested,
        "StandardOutputContent": "",
        "StandardErrorContent": message,
        "CommandPlugins": [],
    }
    return InvocationOutcome(record, "", message, failed=failed)


# -- what a step over several invocations answers -----------------------------------------


def response_code(records: Sequence[Mapping[str, Any]]) -> int:
    """A step's ResponseCode: the one invocation's, else the first failing one's, else 0."""
    if len(records) == 1:
        return int(records[0]["ResponseCode"])
    failing = [r for r in records if r["Status"] not in ("Success", "Cancelled")]
    return int(failing[0]["ResponseCode"]) if failing else 0


def step_output(outcomes: Sequence[InvocationOutcome]) -> str:
    """A step's Output: each invocation's output under its instance id, cut as SSM cuts it."""
    limit = OUTPUT_LIMIT  # a step's Output, as SSM cuts it
    if len(outcomes) == 1:
        return truncate_output(outcomes[0].stdout, outcomes[0].stderr, limit)
    text = "\n".join(
        f"----- {o.record['InstanceId']} -----\n{truncate_output(o.stdout, o.stderr, limit)}"
        for o in outcomes
    )
    if len(text) <= limit:
        return text
    return text[: limit - 23] + "\n---Output truncated---"
