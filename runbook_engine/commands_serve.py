"""``runbook serve``: the executor daemon (runbook_engine.daemon), configured by a file
(``--config``, cli-contract.md) that the flags override."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import anyio
import click

from runbook_engine.cli import explicit_state_url, global_options, state_url


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The daemon's configuration file (YAML).",
)
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on (default 8080; 0 picks a free one).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 1000),
    default=None,
    help="Executions this daemon runs at once (default 4).",
)
@click.option(
    "--documents",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A directory of runbooks that names resolve against (repeatable).",
)
@click.option(
    "--tls-certificate",
    type=click.Path(dir_okay=False),
    default=None,
    help="Serve HTTPS with this certificate (PEM); needs --tls-key.",
)
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None)
@global_options
@click.pass_context
def serve(
    ctx: click.Context,
    config_path: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    documents: tuple[str, ...],
    tls_certificate: str | None,
    tls_key: str | None,
) -> None:
    """Serve the SSM Automation API and run executions from the state database."""
    from runbook_engine.daemon import logs
    from runbook_engine.daemon.config import ConfigError, DaemonConfig, load_config
    from runbook_engine.daemon.server import serve as run_server

    config = load_config(config_path) if config_path else DaemonConfig()
    changes: dict[str, Any] = {}
    for key, value in (("host", host), ("port", port), ("workers", workers)):
        if value is not None:
            changes[key] = value
    if documents:
        changes["documents"] = (*config.documents, *documents)
    if bool(tls_certificate) != bool(tls_key):
        raise ConfigError("--tls-certificate and --tls-key go together")
    if tls_certificate:
        changes["tls_certificate"], changes["tls_key"] = tls_certificate, tls_key
    config = replace(config, **changes)
    # --state / $RUNBOOK_STATE_URL win over the file; the file over the default.
    url = explicit_state_url(ctx) or config.state or state_url(ctx)
    logs.configure()
    try:
        anyio.run(run_server, config, url)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc}") from exc
