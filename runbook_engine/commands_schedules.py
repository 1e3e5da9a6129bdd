"""``runbook schedule create | list | delete``: schedules in the state database, fired by
the daemons (``runbook serve``) that share it.

``create`` checks the expression, the document (stored, in a ``--documents`` directory
or bundled) and the parameters before storing; a daemon fires the schedule at its
times (the first one at once, unless ``--apply-only-at-cron-interval``). JSON output
uses State Manager's shapes: ``AssociationDescription`` and ``{"Associations": [...]}``.
"""

from __future__ import annotations

import getpass

import anyio
import click

from runbook_engine.cli import emit_json, global_options, output_format, state_url
from runbook_engine.engine import Engine
from runbook_engine.schedules import (
    association_description,
    association_summary,
    create_schedule,
    last_status,
)


@click.group()
def schedule() -> None:
    """Run a runbook on a cron or rate schedule (fired by runbook serve)."""


def _pairs(values: tuple[str, ...]) -> dict[str, list[str]]:
    parameters: dict[str, list[str]] = {}
    for pair in values:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="-p")
        parameters.setdefault(name, []).append(value)
    return parameters


@schedule.command()
@click.argument("document")
@click.option(
    "--schedule",
    "expression",
    required=True,
    help="cron(MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR) or rate(N minutes|hours|days).",
)
@click.option("-p", "--parameter", "pairs", multiple=True, help="NAME=VALUE (repeat for a list).")
@click.option("--document-version", default=None, help="$DEFAULT (default), $LATEST or N.")
@click.option("--name", "association_name", default=None, help="A name for the schedule.")
@click.option(
    "--apply-only-at-cron-interval",
    is_flag=True,
    help="Wait for the first cron time instead of running once at creation.",
)
@click.option(
    "--documents",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A directory of runbooks the name may be in (repeatable).",
)
@global_options
@click.pass_context
def create(
    ctx: click.Context,
    document: str,
    expression: str,
    pairs: tuple[str, ...],
    document_version: str | None,
    association_name: str | None,
    apply_only_at_cron_interval: bool,
    documents: tuple[str, ...],
) -> None:
    """Schedule a runbook (by name) with its parameters."""
    parameters = _pairs(pairs)

    async def main() -> None:
        async with Engine(state_url(ctx), documents=documents) as engine:
            record = await create_schedule(
                engine,
                document_name=document,
                expression=expression,
                created_by=getpass.getuser(),
                parameters=parameters,
                document_version=document_version,
                association_name=association_name,
                apply_only_at_cron_interval=apply_only_at_cron_interval,
            )
        if output_format(ctx) == "json":
            emit_json(
                {"AssociationDescription": association_description(record, "Pending", None, "iso")}
            )
            return
        first = record.next_run.isoformat(timespec="seconds") if record.next_run else "never"
        click.echo(f"{record.association_id}  first run {first}")

    anyio.run(main)


@schedule.command(name="list")
@global_options
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List the schedules, oldest first."""

    async def main() -> None:
        async with Engine(state_url(ctx)) as engine:
            records = await engine.store.schedules.list_all()
            statuses = [(await last_status(engine, record))[0] for record in records]
        if output_format(ctx) == "json":
            shapes = [
                association_summary(r, s, "iso") for r, s in zip(records, statuses, strict=True)
            ]
            emit_json({"Associations": shapes})
            return
        for record, status in zip(records, statuses, strict=True):
            upcoming = record.next_run.isoformat(timespec="seconds") if record.next_run else "-"
            click.echo(
                f"{record.association_id}  {record.schedule_expression or '(once)':<24}"
                f" next {upcoming:<25} {status:<10} {record.document_name}"
            )

    anyio.run(main)


@schedule.command()
@click.argument("association_id")
@global_options
@click.pass_context
def delete(ctx: click.Context, association_id: str) -> None:
    """Delete a schedule (executions it started are kept)."""

    async def main() -> None:
        async with Engine(state_url(ctx)) as engine:
            await engine.store.schedules.delete(association_id)

    anyio.run(main)
    if output_format(ctx) == "json":
        emit_json({})
