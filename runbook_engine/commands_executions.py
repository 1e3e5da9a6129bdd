"""``runbook run | get | list | resume | signal | stop``: executions from the command line.

Exit codes (cli-contract.md): 0 Success, 1 Failed/TimedOut/Cancelled, 2 nothing was
started (usage, document or parameter error), 3 ``--no-wait`` and the execution waits.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import click
import yaml

from runbook_engine.api import automation_execution, metadata
from runbook_engine.cli import emit_json, global_options, output_format, startup_done, state_url
from runbook_engine.engine import Engine, ExecutionView, StartOptions
from runbook_engine.errors import ExecutionClaimed, ParameterError, RunbookError
from runbook_engine.inventory import Inventory, inventory_from_option
from runbook_engine.model import Runbook, ValueType
from runbook_engine.preview import Preview
from runbook_engine.progress import Progress
from runbook_engine.settings import settings_from_environment
from runbook_engine.status import Status
from runbook_engine.testing import KillAfterWrites, kill_after_writes_from

EXIT_SUCCESS, EXIT_FAILED, EXIT_WAITING = 0, 1, 3
INVENTORY_OPTION = click.option(
    "--inventory",
    "inventory",
    type=click.Path(dir_okay=False),
    default=None,
    help="Inventory of managed instances (default: $XDG_CONFIG_HOME/runbook/inventory.yaml "
    "when it exists).",
)


def _engine(
    ctx: click.Context,
    documents: Sequence[str] = (),
    principal: str | None = None,
    progress: Progress | None = None,
    inventory: Inventory | None = None,
) -> Engine:
    kill_after = kill_after_writes_from(os.environ)
    return Engine(
        state_url(ctx),
        documents=documents,
        inventory=inventory,
        settings=settings_from_environment(os.environ, principal=principal or getpass.getuser()),
        listener=progress.step_changed if progress else None,
        wrap_store=(lambda store: KillAfterWrites(store, kill_after)) if kill_after else None,
    )


def _exit_code(view: ExecutionView) -> int:
    if view.status == Status.SUCCESS:
        return EXIT_SUCCESS
    if view.status.terminal:
        return EXIT_FAILED
    return EXIT_WAITING


def _show(ctx: click.Context, engine: Engine, view: ExecutionView) -> None:
    runbook = engine.runbook_of(view.execution)
    if output_format(ctx) == "json":
        emit_json(automation_execution(view.execution, view.steps, runbook))
        return
    Progress.summary(view)


def parse_parameters(
    runbook: Runbook, pairs: Sequence[str], parameters_file: str | None
) -> dict[str, Any]:
    """``-p NAME=VALUE`` (repeatable; StringList also comma-separated) over a parameters file."""
    values: dict[str, Any] = {}
    if parameters_file:
        loaded = _read_parameters_file(parameters_file)
        if not isinstance(loaded, dict):
            raise ParameterError(
                f"parameters file {parameters_file} must hold a map of name to value"
            )
        values.update({str(k): v for k, v in loaded.items()})
    given: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.UsageError(f"-p takes NAME=VALUE, not {pair!r}")
        given.setdefault(name, []).append(value)
    for name, items in given.items():
        param = runbook.parameters.get(name)
        if param is not None and param.value_type is ValueType.STRING_LIST:
            values[name] = [part for item in items for part in item.split(",")]
        else:
            values[name] = items
    return values


def _read_parameters_file(path: str) -> Any:
    """A JSON or YAML document. JSON is read as JSON first: PyYAML (YAML 1.1) refuses
    some valid JSON, such as a file indented with tabs (``jq --tab``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"cannot read parameters file {path}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if path.lower().endswith(".json"):
            raise ParameterError(f"parameters file {path} is not valid JSON: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParameterError(f"parameters file {path} is not valid YAML: {exc}") from exc


async def _drive_with_ctrl_c(
    engine: Engine, execution_id: str, until_waiting: bool
) -> ExecutionView:
    """Run in the foreground; Ctrl-C asks for a Cancel (onCancel runs), a second one quits."""
    result: ExecutionView | None = None
    try:
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    count = 0
                    async for _ in signals:
                        count += 1
                        if count > 1:
                            group.cancel_scope.cancel()
                            return
                        click.echo("Cancelling (Ctrl-C again to quit at once)...", err=True)
                        await engine.stop(execution_id)

            group.start_soon(watch)
            result = await engine.wait(execution_id, until_waiting=until_waiting)
            group.cancel_scope.cancel()
    except BaseExceptionGroup as errors:
        # The task group wraps what engine.wait raised; a RunbookError (ExecutionClaimed:
        # another process runs it) must reach the command as itself to exit with code 2.
        known = [e for e in errors.exceptions if isinstance(e, RunbookError)]
        if len(known) == len(errors.exceptions) == 1:
            raise known[0] from None
        raise
    if result is None:
        raise SystemExit(130)
    return result


@click.command()
@click.argument("document")
@click.option(
    "-p",
    "--parameter",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A runbook parameter (repeatable).",
)
@click.option(
    "--parameters-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON or YAML map of parameter names to values.",
)
@click.option("--mode", type=click.Choice(["Auto", "Interactive"]), default="Auto")
@click.option(
    "--documents",
    "documents",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A directory of documents that names resolve against (repeatable).",
)
@INVENTORY_OPTION
@click.option(
    "--target-parameter-name",
    default=None,
    help="Rate control: the parameter that receives each target value (one child each).",
)
@click.option(
    "--targets",
    "target_specs",
    multiple=True,
    metavar="Key=K,Values=V1,V2",
    help="Targets: ParameterValues, tag:<key>, ResourceGroup or AWS::EC2::Instance (repeatable).",
)
@click.option(
    "--target-maps",
    default=None,
    metavar="JSON",
    help="Rate control: a JSON list of parameter maps, one child execution per map.",
)
@click.option("--max-concurrency", default=None, metavar="N|P%", help="Children at once (10).")
@click.option("--max-errors", default=None, metavar="N|P%", help="Failed children tolerated (0).")
@click.option("--no-wait", is_flag=True, help="Return (exit 3) as soon as the execution waits.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Resolve parameters and report what each step would change; run nothing.",
)
@global_options
@click.pass_context
def run(
    ctx: click.Context,
    document: str,
    pairs: tuple[str, ...],
    parameters_file: str | None,
    mode: str,
    documents: tuple[str, ...],
    inventory: str | None,
    target_parameter_name: str | None,
    target_specs: tuple[str, ...],
    target_maps: str | None,
    max_concurrency: str | None,
    max_errors: str | None,
    no_wait: bool,
    dry_run: bool,
) -> None:
    """Run a runbook (a file path or a document name) until it ends."""
    options = StartOptions(
        max_concurrency=max_concurrency,
        max_errors=max_errors,
        target_parameter_name=target_parameter_name,
        targets=[parse_target(spec) for spec in target_specs],
        target_maps=_target_maps(target_maps),
    )
    if dry_run:
        _dry_run(ctx, document, pairs, parameters_file, documents, inventory, options)
        return
    progress = Progress(output_format(ctx) == "text")

    async def main() -> int:
        async with _engine(
            ctx, documents, progress=progress, inventory=inventory_from_option(inventory)
        ) as engine:
            _text, runbook = engine.load(document)
            parameters = parse_parameters(runbook, pairs, parameters_file)
            startup_done()
            execution_id = await engine.start(document, parameters, mode=mode, options=options)
            progress.started(execution_id, runbook)
            view = await _drive_with_ctrl_c(engine, execution_id, no_wait)
            progress.stop()
            _show(ctx, engine, view)
            return _exit_code(view)

    ctx.exit(anyio.run(main))


def parse_target(spec: str) -> dict[str, Any]:
    """``Key=tag:Role,Values=web,db`` -> ``{"Key": "tag:Role", "Values": ["web", "db"]}``."""
    key_part, sep, values_part = spec.partition(",Values=")
    if not sep or not key_part.startswith("Key=") or len(key_part) == 4:
        raise click.BadParameter(
            f"expected Key=K,Values=V1,V2, not {spec!r}", param_hint="--targets"
        )
    values = [v for v in values_part.split(",") if v]
    return {"Key": key_part[4:], "Values": values}


def _target_maps(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    try:
        maps = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--target-maps") from exc
    if not isinstance(maps, list) or not all(isinstance(m, dict) for m in maps):
        raise click.BadParameter("expected a JSON list of objects", param_hint="--target-maps")
    return maps


def _dry_run(
    ctx: click.Context,
    document: str,
    pairs: tuple[str, ...],
    parameters_file: str | None,
    documents: tuple[str, ...],
    inventory: str | None,
    options: StartOptions,
) -> None:
    """Print what each step would do, and where; nothing runs and no state is written."""

    async def main() -> Preview:
        async with Engine(
            "memory://", documents=documents, inventory=inventory_from_option(inventory)
        ) as engine:
            _text, runbook = engine.load(document)
            parameters = parse_parameters(runbook, pairs, parameters_file)
            startup_done()
            return await engine.preview(document, parameters, options)

    preview = anyio.run(main)
    if output_format(ctx) == "json":
        emit_json(preview.as_json())
        return
    for line in preview.text_lines():
        click.echo(line)


@click.command()
@click.argument("execution_id")
@global_options
@click.pass_context
def get(ctx: click.Context, execution_id: str) -> None:
    """Show an execution and its steps."""

    async def main() -> None:
        async with _engine(ctx) as engine:
            _show(ctx, engine, await engine.get(execution_id))

    anyio.run(main)


@click.command(name="list")
@click.option("--status", default=None, type=click.Choice([s.value for s in Status]))
@click.option("--limit", default=50, type=click.IntRange(1, 1000), show_default=True)
@global_options
@click.pass_context
def list_(ctx: click.Context, status: str | None, limit: int) -> None:
    """List executions, newest first."""

    async def main() -> None:
        async with _engine(ctx) as engine:
            records = await engine.list(status=status, limit=limit)
        if output_format(ctx) == "json":
            emit_json({"AutomationExecutionMetadataList": [metadata(r) for r in records]})
            return
        for r in records:
            started = r.start_time.isoformat(timespec="seconds") if r.start_time else "-"
            click.echo(f"{r.execution_id}  {r.status.value:<11} {started:<25} {r.document_name}")

    anyio.run(main)


@click.command()
@click.argument("execution_id")
@click.option(
    "--documents",
    "documents",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A directory of documents that names resolve against (repeatable).",
)
@INVENTORY_OPTION
@click.option("--no-wait", is_flag=True, help="Return (exit 3) as soon as the execution waits.")
@global_options
@click.pass_context
def resume(
    ctx: click.Context,
    execution_id: str,
    documents: tuple[str, ...],
    inventory: str | None,
    no_wait: bool,
) -> None:
    """Continue an execution whose process died, or one that waits."""
    progress = Progress(output_format(ctx) == "text")

    async def main() -> int:
        async with _engine(
            ctx, documents, progress=progress, inventory=inventory_from_option(inventory)
        ) as engine:
            before = await engine.get(execution_id)
            runbook = engine.runbook_of(before.execution)
            startup_done()
            progress.started(execution_id, runbook, before.steps)
            view = await _drive_with_ctrl_c(engine, execution_id, no_wait)
            progress.stop()
            _show(ctx, engine, view)
            return _exit_code(view)

    ctx.exit(anyio.run(main))


@click.command(name="signal")
@click.argument("execution_id")
@click.option(
    "--type",
    "signal_type",
    required=True,
    type=click.Choice(["Approve", "Reject", "StartStep", "StopStep", "Resume"]),
)
@click.option(
    "--step", default=None, help="Step name (StartStep, Resume) or step execution id (StopStep)."
)
@click.option("--comment", default=None)
@click.option("--as", "principal", default=None, help="Who signals (default: the OS user).")
@global_options
@click.pass_context
def signal_(
    ctx: click.Context,
    execution_id: str,
    signal_type: str,
    step: str | None,
    comment: str | None,
    principal: str | None,
) -> None:
    """Send a signal to an execution (approve, reject, run a step, resume a pause)."""
    payload: dict[str, list[str]] = {}
    if comment:
        payload["Comment"] = [comment]
    if step and signal_type == "StopStep":
        payload["StepExecutionId"] = [step]
        step = None

    async def main() -> None:
        async with _engine(ctx, principal=principal) as engine:
            await engine.signal(
                execution_id,
                signal_type,
                step_name=step,
                payload=payload,
                principal=principal or getpass.getuser(),
            )
        if output_format(ctx) == "json":
            emit_json({})
        else:
            click.echo(f"{signal_type} sent to {execution_id}")

    anyio.run(main)


@click.command()
@click.argument("execution_id")
@click.option("--type", "stop_type", type=click.Choice(["Cancel", "Complete"]), default="Cancel")
@global_options
@click.pass_context
def stop(ctx: click.Context, execution_id: str, stop_type: str) -> None:
    """Stop an execution: Cancel (runs onCancel) or Complete (Interactive mode)."""

    async def main() -> int:
        async with _engine(ctx) as engine:
            await engine.stop(execution_id, stop_type)
            try:  # nobody runs it (it waited, or its process died): finish the stop here
                view = await engine.wait(execution_id)
            except ExecutionClaimed:
                view = await engine.get(execution_id)
            _show(ctx, engine, view)
            return _exit_code(view) if view.status.terminal else EXIT_SUCCESS

    ctx.exit(anyio.run(main))
