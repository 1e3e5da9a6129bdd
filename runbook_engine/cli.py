"""The ``runbook`` command: the group, the options every command shares, and error output.

The contract is ``cli-contract.md``. This module stays small on purpose: each command
lives in a ``runbook_engine/commands_<topic>.py`` module and is listed in :data:`COMMANDS`;
the group imports a command's module only when that command runs (or when help lists
it), so ``runbook validate`` never loads the store, SSH or Docker libraries. To add a
command: write it in a ``commands_*.py`` module, decorate it with :func:`global_options`,
raise :class:`~runbook_engine.errors.RunbookError` subclasses for failures (they become
exit code 2 with the SSM error code), and add one line to :data:`COMMANDS`.

``--state URL`` and ``--output text|json`` are accepted both before the command name and
after it (``runbook --output json validate x.yaml`` and ``runbook validate --output json
x.yaml``); the value written last on the command line wins.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import click

from runbook_engine.errors import DocumentError, RunbookError

OutputFormat = Literal["text", "json"]

# command name -> "module:attribute" of its click command, imported on first use.
COMMANDS: dict[str, str] = {
    "validate": "runbook_engine.commands_documents:validate",
    "graph": "runbook_engine.commands_documents:graph",
    "run": "runbook_engine.commands_executions:run",
    "get": "runbook_engine.commands_executions:get",
    "list": "runbook_engine.commands_executions:list_",
    "resume": "runbook_engine.commands_executions:resume",
    "signal": "runbook_engine.commands_executions:signal_",
    "stop": "runbook_engine.commands_executions:stop",
    "serve": "runbook_engine.commands_serve:serve",
    "param": "runbook_engine.commands_parameters:param",
    "dashboard-password": "runbook_engine.commands_dashboard:dashboard_password",
    "schedule": "runbook_engine.commands_schedules:schedule",
}

# Commands that end the start-up pause of the garbage collector themselves (see
# startup_done), once their engine is open and their runbook loaded.
ENDS_STARTUP_ITSELF = frozenset({"run", "resume"})

USAGE_ERROR_CODE = "ValidationException"  # SSM's code for a malformed request
_OUTPUT_KEY = "runbook.output"
_STATE_KEY = "runbook.state"

F = TypeVar("F", bound=Callable[..., Any])


# -- shared options -----------------------------------------------------------------------


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Keep an explicitly given global option in ``ctx.meta`` (shared by nested contexts)."""
    if value is not None:
        ctx.meta[_OUTPUT_KEY if param.name == "output" else _STATE_KEY] = value
    return value


def global_options(command: F) -> F:
    """``--state`` and ``--output``, accepted on the group and on every command."""
    command = click.option(
        "--output",
        type=click.Choice(["text", "json"]),
        default=None,
        expose_value=False,
        callback=_remember,
        help="Output format (default: text).",
    )(command)
    command = click.option(
        "--state",
        metavar="URL",
        default=None,
        expose_value=False,
        callback=_remember,
        help="State database URL (default: $RUNBOOK_STATE_URL, else SQLite under "
        "$XDG_STATE_HOME/runbook/).",
    )(command)
    return command


def output_format(ctx: click.Context) -> OutputFormat:
    return "json" if ctx.meta.get(_OUTPUT_KEY) == "json" else "text"


def explicit_state_url(ctx: click.Context) -> str | None:
    """``--state``, else ``$RUNBOOK_STATE_URL``, else None (a configuration file may say)."""
    explicit = ctx.meta.get(_STATE_KEY)
    if explicit:
        return str(explicit)
    return os.environ.get("RUNBOOK_STATE_URL") or None


def state_url(ctx: click.Context) -> str:
    """``--state``, else ``$RUNBOOK_STATE_URL``, else SQLite at ``$XDG_STATE_HOME/runbook``."""
    explicit = explicit_state_url(ctx)
    if explicit:
        return explicit
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return f"sqlite:///{Path(state_home) / 'runbook' / 'state.db'}"


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


# -- start-up ---------------------------------------------------------------------------
#
# A ``runbook`` process spends most of its start-up importing (click, the engine,
# SQLAlchemy and SQLModel, the actions): hundreds of thousands of objects, nearly all of
# them alive until the process exits. The cyclic garbage collector, left on, walks them
# again and again while they are made (each full pass walks every object made so far):
# about 10% of a no-op ``runbook run``. So the process's own command runs its imports
# with the collector off and turns it back on before the work starts: right after the
# command's module is imported, or, for the commands of ENDS_STARTUP_ITSELF (they open an
# engine, which imports the store, then run), when they call startup_done.

_collector_paused = False


def _pause_collector() -> None:
    global _collector_paused
    if gc.isenabled():
        gc.disable()
        _collector_paused = True


def _resume_collector(freeze: bool) -> None:
    global _collector_paused
    if _collector_paused:
        _collector_paused = False
        if freeze:
            gc.freeze()
        gc.enable()


def startup_done() -> None:
    """Turn the garbage collector back on if start-up turned it off (else do nothing).

    What start-up made (modules, classes, the store's tables) is frozen first
    (``gc.freeze``): the collections of the run then never walk it again. Only for
    commands that end with their process (``run``, ``resume``); those freeze everything
    at exit anyway.
    """
    _resume_collector(freeze=True)


# -- errors -----------------------------------------------------------------------------


def report_error(ctx: click.Context, error: RunbookError) -> NoReturn:
    """Print ``error`` the way the contract says and exit with code 2."""
    if output_format(ctx) == "json":
        emit_json({"__type": error.code, "message": error.message})
    elif isinstance(error, DocumentError) and error.diagnostics:
        for diagnostic in error.diagnostics:
            if diagnostic.is_error:
                click.echo(diagnostic.format(), err=True)
        count = sum(1 for d in error.diagnostics if d.is_error)
        click.echo(f"runbook: error: invalid document ({_plural(count, 'error')})", err=True)
    else:
        click.echo(f"runbook: error: {error.message}", err=True)
    ctx.exit(2)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _json_requested(argv: Sequence[str]) -> bool:
    """``--output json`` anywhere on the command line (for errors met before it was read)."""
    for index, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--output=json" or (
            arg == "--output" and index + 1 < len(argv) and argv[index + 1] == "json"
        ):
            return True
    return False


class RunbookGroup(click.Group):
    """A group that loads commands lazily and prints errors per ``--output``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name not in ENDS_STARTUP_ITSELF:
            _resume_collector(freeze=False)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunbookError as error:
            report_error(ctx, error)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command; usage errors become a JSON object with ``--output json``."""
        argv = list(sys.argv[1:] if args is None else args)
        if args is None:  # the process's own command (not a test's CliRunner)
            _pause_collector()
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except click.ClickException as exc:
            failed_in: click.Context | None = getattr(exc, "ctx", None)
            in_json = failed_in is not None and output_format(failed_in) == "json"
            if in_json or _json_requested(argv):
                emit_json({"__type": USAGE_ERROR_CODE, "message": exc.format_message()})
            else:
                exc.show()
            code = exc.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = 1
        _resume_collector(freeze=False)  # a command that failed before startup_done
        if standalone_mode:
            if args is None:  # the process's own command (not a test's CliRunner): exiting
                # Objects made so far are never collected again: the exit then skips a
                # cyclic collection of every SQLAlchemy/asyncssh object (0.2 to 0.6 s).
                gc.freeze()
            sys.exit(code)
        return code


@click.group(cls=RunbookGroup, context_settings={"help_option_names": ["-h", "--help"]})
@global_options
@click.version_option(package_name="runbook-engine", prog_name="runbook")
def main() -> None:
    """Run AWS Systems Manager Automation runbooks on your own machines."""
