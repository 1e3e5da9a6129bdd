"""aws:executeScript: run a Python handler (or a PowerShell script) in a separate process.

Python: ``handler(events, context)`` runs in its own interpreter (``sys.executable``
unless :class:`ScriptSettings` says otherwise) through ``actions/_script_runner.py``, so
a script cannot touch the engine's memory and dies with the step: the step's timeout
or cancellation kills the process group (at most 600 s per run, as on AWS).

* ``events`` is ``InputPayload`` (a map, or text holding JSON); ``context`` is a dict
  with ``automation:EXECUTION_ID``, ``automation:STEP_EXECUTION_ID``, ``global:REGION``,
  ``global:ACCOUNT_ID``, ``step_name`` and ``attempt``.
* ``Handler`` is a function of the inline ``Script``, of a ``.py`` attachment, or
  ``file.function`` inside a ``.py``/``.zip`` attachment (bytes from ``ctx.files``).
* The engine's environment is passed through, so boto3 credentials set there reach
  the script.
* Output ``Payload`` is the JSON form of the return value: a list keeps its first 100
  items; JSON over 100 KB becomes the text cut at 100 KB. ``ActionResult.response`` is
  ``{"Payload": value}`` with the full value (lists still cut to 100), so custom
  outputs select ``$.Payload...``. Times, decimals and sets in the value are turned
  into ISO text, numbers and lists; other non-JSON values fail the step.
* What the script prints (stdout and stderr) is kept in ``ActionResult.logs``.
* An uncaught exception fails the step with ``"<Type>: <message>"``; the traceback is
  in the failure's ``details``.

PowerShell runtimes run ``Script`` with ``pwsh`` when it is installed, ``InputPayload``
in the environment variable ``InputPayload`` as JSON; the script's pipeline output
becomes ``Payload``. Without ``pwsh`` the step fails saying so.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from actions import _script_runner
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_
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

PYTHON_RUNTIMES = tuple(f"python3.{minor}" for minor in range(6, 13))
POWERSHELL_RUNTIMES = ("PowerShell Core 6.0", "PowerShell 7.0", "PowerShell 7.4")
MAX_SECONDS = 600
PAYLOAD_BYTES = 100 * 1024
PAYLOAD_ITEMS = 100
STDERR_TAIL = 500
RUNNER = Path(_script_runner.__file__)


@dataclass(frozen=True)
class ScriptSettings:
    """Where the interpreters are; ``pwsh=None`` looks it up on PATH at run time."""

    python: str = sys.executable
    pwsh: str | None = None
    time_limit: float = MAX_SECONDS


def _check(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    runtime = inputs.get("Runtime")
    if not isinstance(runtime, str) or (static and contains_expression(runtime)):
        return []
    if runtime in PYTHON_RUNTIMES:
        if "Handler" not in inputs:
            return [Finding((), f"a {runtime} script needs a Handler (the function to call)")]
        if "Script" not in inputs and "Attachment" not in inputs:
            return [Finding((), "a Python script needs Script or Attachment")]
    elif "Script" not in inputs and "Attachment" not in inputs:
        return [Finding((), "a PowerShell script needs Script")]
    attachment = inputs.get("Attachment")
    if isinstance(attachment, str) and not (static and contains_expression(attachment)):
        kinds = (".py", ".zip") if runtime in PYTHON_RUNTIMES else (".zip",)
        if not attachment.lower().endswith(kinds):
            return [Finding(("Attachment",), f"Attachment must be a {' or '.join(kinds)} file")]
    return []


SCHEMA = ActionSchema(
    inputs={
        "Runtime": field_("String", required=True, allowed=PYTHON_RUNTIMES + POWERSHELL_RUNTIMES),
        "Handler": field_("String"),
        "Script": field_("String"),
        "Attachment": field_("String"),
        "InputPayload": field_("StringMap", "String"),
    },
    validators=(_check,),
    outputs={"Payload": ValueType.STRING_MAP},
    default_timeout=MAX_SECONDS,
    max_timeout=MAX_SECONDS,
)


async def run_with(
    settings: ScriptSettings, inputs: Mapping[str, Any], ctx: ActionContext
) -> ActionResult | Suspend:
    events = _events(inputs.get("InputPayload"))
    runtime = str(inputs["Runtime"])
    nonce = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="runbook-script-") as workdir:
        if runtime in POWERSHELL_RUNTIMES:
            outcome = await _run_powershell(settings, inputs, ctx, events, nonce, workdir)
        else:
            outcome = await _run_python(settings, inputs, ctx, events, nonce, workdir)
    return _result(outcome, nonce, settings.time_limit)


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult | Suspend:
    return await run_with(ScriptSettings(), inputs, ctx)


def make_action(settings: ScriptSettings) -> SimpleAction:
    """The action with other interpreters (the entry point uses the defaults)."""
    return SimpleAction(
        "aws:executeScript", SCHEMA, partial(run_with, settings), idempotent=False,
        description="Run a Python handler or a PowerShell script in a separate process.",
    )


def _events(payload: Any) -> Any:
    if payload is None:
        return {}
    if isinstance(payload, str):
        try:
            return json.loads(payload) if payload.strip() else {}
        except json.JSONDecodeError as exc:
            raise ActionError(
                f"InputPayload is text but not JSON: {exc}", stage=FailureStage.INPUT_VALIDATION
            ) from exc
    return payload


def _context(ctx: ActionContext) -> dict[str, Any]:
    return {
        "automation:EXECUTION_ID": ctx.execution_id,
        "automation:STEP_EXECUTION_ID": ctx.step_execution_id,
        "global:REGION": ctx.region,
        "global:ACCOUNT_ID": ctx.account_id,
        "step_name": ctx.step_name,
        "attempt": ctx.attempt,
    }


def _attachment(inputs: Mapping[str, Any], ctx: ActionContext) -> tuple[str, bytes] | None:
    name = inputs.get("Attachment")
    if not name:
        return None
    name = str(name)
    if name not in ctx.files:
        known = ", ".join(sorted(ctx.files)) or "none"
        raise ActionError(
            f"Attachment {name!r} is not among the runbook's files (known: {known})",
            stage=FailureStage.PRE_VERIFICATION,
        )
    return name, ctx.files[name]


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)  # AWS credentials and proxies reach the script
    env.update({"PYTHONIOENCODING": "utf-8", **extra})
    return env


async def _run_python(
    settings: ScriptSettings,
    inputs: Mapping[str, Any],
    ctx: ActionContext,
    events: Any,
    nonce: str,
    workdir: str,
) -> ProcessOutcome:
    attachment = _attachment(inputs, ctx)
    envelope = {
        "nonce": nonce,
        "handler": str(inputs.get("Handler") or ""),
        "script": inputs.get("Script"),
        "attachment": (
            {"name": attachment[0], "data": base64.b64encode(attachment[1]).decode("ascii")}
            if attachment
            else None
        ),
        "events": events,
        "context": _context(ctx),
    }
    try:
        stdin = json.dumps(envelope).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ActionError(
            f"InputPayload cannot be passed as JSON: {exc}", stage=FailureStage.INPUT_VALIDATION
        ) from exc
    return await run_in_process_group(
        [settings.python, str(RUNNER)],
        stdin=stdin,
        cwd=workdir,
        env=_environment({}),
        time_limit=settings.time_limit,
        kill_leftovers=True,
    )


POWERSHELL_WRAPPER = """\
$ErrorActionPreference = 'Stop'
$nonce = $env:RUNBOOK_RESULT_NONCE
try {
    $payload = & (Join-Path $PSScriptRoot 'script.ps1')
    $result = @{ ok = $true; payload = $payload } | ConvertTo-Json -Depth 32 -Compress
} catch {
    [Console]::Error.WriteLine(($_ | Out-String))
    $result = @{ ok = $false; phase = 'run'; type = $_.Exception.GetType().Name;
                 message = $_.Exception.Message; traceback = ($_.ScriptStackTrace | Out-String)
               } | ConvertTo-Json -Compress
}
[Console]::Out.Write("`n<<<runbook-result $nonce>>>`n$result`n<<<end runbook-result $nonce>>>`n")
"""


async def _run_powershell(
    settings: ScriptSettings,
    inputs: Mapping[str, Any],
    ctx: ActionContext,
    events: Any,
    nonce: str,
    workdir: str,
) -> ProcessOutcome:
    pwsh = settings.pwsh or shutil.which("pwsh")
    if pwsh is None:
        raise ActionError(
            "PowerShell runtime needs pwsh, which is not installed",
            stage=FailureStage.PRE_VERIFICATION,
        )
    _prepare_powershell(Path(workdir), str(inputs.get("Script") or ""), _attachment(inputs, ctx))
    env = _environment(
        {
            "InputPayload": json.dumps(events),
            "RUNBOOK_RESULT_NONCE": nonce,
            "RUNBOOK_CONTEXT": json.dumps(_context(ctx)),
        }
    )
    return await run_in_process_group(
        [pwsh, "-NoLogo", "-NoProfile", "-NonInteractive", "-File", "runner.ps1"],
        cwd=workdir,
        env=env,
        time_limit=settings.time_limit,
        kill_leftovers=True,
    )


def _prepare_powershell(workdir: Path, script: str, attachment: tuple[str, bytes] | None) -> None:
    if attachment is not None:
        with zipfile.ZipFile(io.BytesIO(attachment[1])) as archive:
            archive.extractall(workdir)
    (workdir / "script.ps1").write_text(script, encoding="utf-8")
    (workdir / "runner.ps1").write_text(POWERSHELL_WRAPPER, encoding="utf-8")


def split_result(stdout: str, nonce: str) -> tuple[dict[str, Any] | None, str]:
    """(the runner's result, everything else the script printed)."""
    begin = _script_runner.BEGIN.format(nonce=nonce)
    end = _script_runner.END.format(nonce=nonce)
    start = stdout.rfind("\n" + begin + "\n")
    stop = stdout.find("\n" + end + "\n", start + 1) if start >= 0 else -1
    if start < 0 or stop < 0:
        return None, stdout
    body = stdout[start + len(begin) + 2 : stop]
    prints = stdout[:start] + stdout[stop + len(end) + 2 :]
    try:
        return json.loads(body), prints
    except json.JSONDecodeError:
        return None, stdout


def shape_payload(value: Any) -> tuple[Any, Any]:
    """(the ``Payload`` output, the selector value): lists cut to 100 items, then the
    output cut to 100 KB of JSON text when it is longer."""
    if isinstance(value, list):
        value = value[:PAYLOAD_ITEMS]
    text = json.dumps(value)
    if len(text.encode("utf-8")) <= PAYLOAD_BYTES:
        return value, value
    cut = text.encode("utf-8")[:PAYLOAD_BYTES].decode("utf-8", errors="ignore")
    return cut, value


def _result(outcome: ProcessOutcome, nonce: str, time_limit: float) -> ActionResult:
    result, prints = split_result(outcome.stdout_text, nonce)
    logs = f"--- stdout ---\n{prints}\n--- stderr ---\n{outcome.stderr_text}"
    details = {"Logs": [logs]}
    if outcome.timed_out:
        raise ActionTimeout(
            f"the script ran longer than the {time_limit:g} s allowed", details=details
        )
    if result is None:
        raise ActionError(
            f"the script process ended with exit code {outcome.exit_code} and no result"
            + _tail(outcome.stderr_text),
            details=details,
        )
    if not result.get("ok"):
        kind, message = result.get("type", "Exception"), result.get("message", "")
        prefix = "cannot load the handler: " if result.get("phase") == "load" else ""
        raise ActionError(
            f"{prefix}{kind}: {message}",
            details={"Traceback": [str(result.get("traceback", ""))], **details},
        )
    output, selectable = shape_payload(result.get("payload"))
    outputs = {} if output is None else {"Payload": output}
    return ActionResult(outputs=outputs, response={"Payload": selectable}, logs=logs)


def _tail(stderr: str) -> str:
    text = stderr.strip()
    if not text:
        return ""
    return ": " + (text if len(text) <= STDERR_TAIL else "..." + text[-STDERR_TAIL:])


ACTION = make_action(ScriptSettings())
