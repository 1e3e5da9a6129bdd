"""``runbook param put | get | list | delete``: the Parameter Store from the command line.

Parameters live in the state database named by ``--state`` (the same one ``runbook run``
uses, so ``{{ssm:name}}`` defaults find them), or in AWS SSM when the environment says
``RUNBOOK_PARAMETER_STORE=aws`` (then boto3's standard configuration applies). The
SecureString key file is ``$RUNBOOK_PARAMETER_KEY_FILE``, else
``$XDG_CONFIG_HOME/runbook/parameter.key``.

SecureString values are masked in every output unless ``get --with-decryption`` asks for
the plain text; ``put`` never echoes a value.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import click

from runbook_engine.cli import emit_json, global_options, output_format, state_url
from runbook_engine.parameter_access import open_parameter_store
from runbook_engine.parameters import PARAMETER_TYPES, ParameterStore, StoredParameter
from runbook_engine.settings import settings_from_environment

T = TypeVar("T")


def _with_store(ctx: click.Context, work: Callable[[ParameterStore], Awaitable[T]]) -> T:
    settings = settings_from_environment(os.environ)

    async def main() -> T:
        from runbook_engine.aws import Boto3Caller

        callers: list[Boto3Caller] = []

        def aws() -> Boto3Caller:
            callers.append(Boto3Caller(settings.aws, fallback_region=settings.region))
            return callers[-1]

        store = open_parameter_store(settings, state_url=state_url(ctx), aws=aws)
        try:
            return await work(store)
        finally:
            store.close()
            for caller in callers:
                caller.close()

    return anyio.run(main)


@click.group("param")
@global_options
def param() -> None:
    """Parameter Store: String, StringList and SecureString parameters."""


@param.command("put")
@click.argument("name")
@click.argument("value")
@click.option(
    "--type",
    "type_",
    type=click.Choice(PARAMETER_TYPES),
    default=None,
    help="Required when the parameter is new.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing parameter (new version).")
@click.option("--description", default=None)
@global_options
@click.pass_context
def put(
    ctx: click.Context,
    name: str,
    value: str,
    type_: str | None,
    overwrite: bool,
    description: str | None,
) -> None:
    """Create or update a parameter; prints the new version."""
    version = _with_store(
        ctx,
        lambda store: store.put(
            name,
            value,
            type=type_ or (None if overwrite else "String"),
            overwrite=overwrite,
            description=description,
        ),
    )
    if output_format(ctx) == "json":
        emit_json({"Version": version, "Tier": "Standard"})
    else:
        click.echo(f"{name}: version {version}")


@param.command("get")
@click.argument("name")
@click.option("--with-decryption", is_flag=True, help="Show a SecureString in plain text.")
@global_options
@click.pass_context
def get(ctx: click.Context, name: str, with_decryption: bool) -> None:
    """Print a parameter's value (``NAME``, ``NAME:VERSION`` or ``NAME:LABEL``)."""
    found = _with_store(ctx, lambda store: store.get(name, with_decryption=with_decryption))
    masked = not with_decryption
    if output_format(ctx) == "json":
        emit_json({"Parameter": found.api(masked=masked)})
    else:
        click.echo(found.api(masked=masked)["Value"])


def _listing(found: list[StoredParameter]) -> list[dict[str, Any]]:
    return [p.api(masked=True) for p in found]


@param.command("list")
@click.option("--path", default=None, help="Only parameters below this hierarchy path.")
@click.option("--recursive", is_flag=True, help="With --path: the whole subtree.")
@global_options
@click.pass_context
def list_(ctx: click.Context, path: str | None, recursive: bool) -> None:
    """List parameters (latest versions; SecureString values masked)."""
    found = _with_store(ctx, lambda store: store.list_parameters(path, recursive=recursive))
    if output_format(ctx) == "json":
        emit_json({"Parameters": _listing(found)})
        return
    for shape in _listing(found):
        click.echo(f"{shape['Name']}\t{shape['Type']}\tv{shape['Version']}\t{shape['Value']}")


@param.command("delete")
@click.argument("name")
@global_options
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete a parameter and all its versions."""
    _with_store(ctx, lambda store: store.delete(name))
    if output_format(ctx) == "json":
        emit_json({})
    else:
        click.echo(f"{name}: deleted")
