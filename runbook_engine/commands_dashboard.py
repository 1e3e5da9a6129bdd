"""``runbook dashboard-password``: a password hash for the dashboard's ``users`` list.

The daemon's configuration keeps only hashes (``daemon.dashboard.passwords``); this
command makes one, asking for the password twice on a terminal, or reading one line from
standard input with ``--stdin`` (for scripts), so that the password never appears on a
command line or in shell history.
"""

from __future__ import annotations

import json
import sys

import click

from runbook_engine.cli import emit_json, global_options, output_format
from runbook_engine.errors import RunbookError


class PasswordError(RunbookError):
    code = "ValidationException"


@click.command("dashboard-password")
@click.option("--name", default=None, help="Print a ready 'users:' entry for this user name.")
@click.option(
    "--stdin",
    "from_stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of asking.",
)
@global_options
@click.pass_context
def dashboard_password(ctx: click.Context, name: str | None, from_stdin: bool) -> None:
    """Hash a password for the web dashboard (the daemon's dashboard.users)."""
    from runbook_engine.daemon.dashboard.passwords import hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise PasswordError("the password is empty")
    hashed = hash_password(password)
    if output_format(ctx) == "json":
        emit_json({"name": name, "password_hash": hashed} if name else {"password_hash": hashed})
    elif name:
        click.echo(f"- {{name: {json.dumps(name)}, password_hash: {json.dumps(hashed)}}}")
    else:
        click.echo(hashed)
