"""aws:runShellScript used directly as a step: run commands on the local host.

The commands run as ONE ``/bin/sh`` script, one command a line, as the SSM agent's
``aws:runShellScript`` plugin runs them: no ``set -e`` is added, so the exit code of the
script (its last command, unless it exits earlier) decides success (ssm-reference §7.2).

Outputs, as Run Command reports them:

* ``ResponseCode`` -- the exit code (``-1`` when the script was killed by ``TimeoutSeconds``);
* ``Output`` -- stdout, then ``----------ERROR-------`` and stderr when stderr is not empty,
  cut to 2500 characters with the agent's ``---Output truncated---`` /
  ``---Error truncated----`` markers (§7.5);
* ``Status`` -- ``Success``, ``Failed`` or ``TimedOut``.

The full stdout and stderr are kept in ``ActionResult.logs`` (or the failure's details).

With ``InstanceIds`` or ``Targets`` the script runs on those inventory instances (SSH
hosts, containers, the local host) the way ``aws:runCommand`` runs ``AWS-RunShellScript``:
under rate control (``MaxConcurrency``, default 50; ``MaxErrors``, default 0), one
invocation per instance in the step's response (``CommandInvocations``), resumable.
``TimeoutSeconds`` then bounds each instance's run.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import (
    ActionContext,
    ActionError,
    ActionResult,
    ActionTimeout,
    FailureStage,
    SimpleAction,
    Suspend,
)
from runbook_engine.processes import ProcessOutcome, run_in_process_group

SHELL = "/bin/sh"
OUTPUT_LIMIT = 2500
ERROR_TITLE = "\n----------ERROR-------\n"
OUTPUT_TRUNCATED = "\n---Output truncated---"
ERROR_TRUNCATED = "\n---Error truncated----"
STDERR_TAIL = 500


def truncate_output(stdout: str, stderr: str, capacity: int = OUTPUT_LIMIT) -> str:
    """The plugin ``Output`` text, cut the way the SSM agent cuts it.

    Both streams keep their beginning; when both are long each gets half the room.
    """
    title = ERROR_TITLE if stderr else ""
    room = capacity - len(title)
    if len(stdout) + len(stderr) < room:
        return stdout + title + stderr
    if len(stdout) > room // 2 and len(stderr) > room // 2:
        half = (room - len(ERROR_TRUNCATED) - len(OUTPUT_TRUNCATED)) // 2
        return stdout[:half] + OUTPUT_TRUNCATED + title + stderr[:half] + ERROR_TRUNCATED
    if len(stdout) < room // 2:
        keep = room - len(ERROR_TRUNCATED) - len(stdout)
        return stdout + title + stderr[:keep] + ERROR_TRUNCATED
    keep = room - len(OUTPUT_TRUNCATED) - len(stderr)
    return stdout[:keep] + OUTPUT_TRUNCATED + title + stderr


def script_text(commands: str | Sequence[Any]) -> str:
    """The commands as one script: a string as is, a list one item a line."""
    lines = [commands] if isinstance(commands, str) else [str(c) for c in commands]
    return "\n".join(lines) + "\n"


def _check(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    commands = inputs.get("Commands")
    if isinstance(commands, list) and not commands:
        return [Finding(("Commands",), "Commands needs at least one command")]
    directory = inputs.get("WorkingDirectory")
    if isinstance(directory, str) and len(directory) > 4096:
        return [Finding(("WorkingDirectory",), "WorkingDirectory is longer than 4096 characters")]
    return []


SCHEMA = ActionSchema(
    inputs={
        "Commands": field_("StringList", "String", required=True),
        "InstanceIds": field_("StringList", "String", max_items=50),
        "Targets": field_("MapList", max_items=5),
        "WorkingDirectory": field_("String"),
        "TimeoutSeconds": field_("Integer", minimum=1),
        "MaxConcurrency": field_("String", description="with InstanceIds/Targets"),
        "MaxErrors": field_("String", description="with InstanceIds/Targets"),
    },
    at_most_one_of=(("InstanceIds", "Targets"),),
    validators=(_check,),
    outputs={
        "ResponseCode": ValueType.INTEGER,
        "Output": ValueType.STRING,
        "Status": ValueType.STRING,
    },
)


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult | Suspend:
    if inputs.get("InstanceIds") or inputs.get("Targets"):
        return await _run_on_instances(inputs, ctx)
    directory = str(inputs.get("WorkingDirectory") or "") or None
    if directory is not None and not await anyio.Path(directory).is_dir():
        raise ActionError(
            f"WorkingDirectory {directory!r} does not exist or is not a directory",
            stage=FailureStage.PRE_VERIFICATION,
        )
    timeout = inputs.get("TimeoutSeconds")
    script = _write_script(script_text(inputs["Commands"]))
    try:
        outcome = await run_in_process_group(
            [SHELL, script],
            cwd=directory,
            time_limit=float(timeout) if timeout is not None else None,
        )
    finally:
        with contextlib.suppress(FileNotFoundError):  # the script may remove itself
            os.unlink(script)
    return _result(outcome, timeout)


def _write_script(text: str) -> str:
    """The script in a private temporary file (mode 0600), its path returned.

    A single file rather than a temporary directory: removing a directory costs far
    more than removing a file on some file systems (ext4 mounted with ``discard``
    takes milliseconds per ``rmdir``), and a step should cost about one shell start.
    """
    fd, path = tempfile.mkstemp(prefix="runbook-shell-", suffix="_script.sh")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except BaseException:
        os.unlink(path)
        raise
    return path
async def _run_on_instances(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    from actions._command_document import single_plugin
    from actions._fleet_command import run_on_instances

    timeout = inputs.get("TimeoutSeconds")
    plugins = single_plugin(
        inputs["Commands"],
        str(inputs.get("WorkingDirectory") or "") or None,
        int(timeout) if timeout is not None else None,
    )
    try:
        result = await run_on_instances(
            inputs, ctx, plugins, default_timeout=None, what="aws:runShellScript"
        )
    except ActionError as exc:
        exc.outputs = {k: v for k, v in exc.outputs.items() if k in SCHEMA.outputs}
        raise
    outputs = {k: v for k, v in result.outputs.items() if k in SCHEMA.outputs}
    return ActionResult(outputs=outputs, response=result.response, logs=result.logs)


def _result(outcome: ProcessOutcome, timeout: Any) -> ActionResult:
    stdout, stderr = outcome.stdout_text, outcome.stderr_text
    logs = f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    outputs: dict[str, Any] = {
        "ResponseCode": -1 if outcome.exit_code is None else outcome.exit_code,
        "Output": truncate_output(stdout, stderr),
    }
    details = {"stdout": [stdout], "stderr": [stderr]}
    if outcome.timed_out:
        outputs["Status"] = "TimedOut"
        raise ActionTimeout(
            f"the script was killed after TimeoutSeconds={timeout}" + _tail(stderr),
            details=details,
            outputs=outputs,
        )
    if outcome.exit_code != 0:
        outputs["Status"] = "Failed"
        raise ActionError(
            f"command exited with code {outcome.exit_code}" + _tail(stderr),
            details=details,
            outputs=outputs,
        )
    outputs["Status"] = "Success"
    return ActionResult(outputs=outputs, logs=logs)


def _tail(stderr: str) -> str:
    text = stderr.strip()
    if not text:
        return ""
    if len(text) > STDERR_TAIL:
        text = "..." + text[-STDERR_TAIL:]
    return f": {text}"


ACTION = SimpleAction(
    "aws:runShellScript",
    SCHEMA,
    run,
    idempotent=False,
    description="Run shell commands on the local host as one /bin/sh script.",
)
