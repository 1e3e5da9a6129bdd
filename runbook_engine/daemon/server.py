"""``runbook serve``: the HTTP server and the workers in one event loop, until SIGTERM.

The listening socket is bound here (not by uvicorn), so that a port that cannot be had
is a clear error, and ``--port 0`` works: the port actually bound is in the ``listening``
log line. uvicorn's own signal handling is switched off: SIGTERM and SIGINT stop the
HTTP server, then the workers (``WorkerPool.shutdown``: leases released), then the store.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
from collections.abc import Iterator

import anyio
import uvicorn

from runbook_engine.daemon import logs
from runbook_engine.daemon.app import build_app
from runbook_engine.daemon.association_operations import AssociationOperations
from runbook_engine.daemon.command_operations import CommandOperations
from runbook_engine.daemon.command_runner import CommandRunner
from runbook_engine.daemon.config import DaemonConfig
from runbook_engine.daemon.dashboard.parameter_source import StoreParameterSource
from runbook_engine.daemon.dashboard.providers import Providers
from runbook_engine.daemon.dashboard.schedule_source import StoreScheduleSource
from runbook_engine.daemon.document_operations import DocumentOperations
from runbook_engine.daemon.metrics import Metrics
from runbook_engine.daemon.operations import Operations
from runbook_engine.daemon.schedule_runner import ScheduleRunner
from runbook_engine.daemon.worker import WorkerPool
from runbook_engine.engine import Engine
from runbook_engine.inventory import inventory_from_option
from runbook_engine.records import StepRecord
from runbook_engine.settings import Settings


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon handles SIGTERM/SIGINT itself (see serve)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio switches Nagle off (TCP_NODELAY) only on accepted
    # sockets whose protocol says TCP, and with Nagle on, a response written in two parts
    # (head, body) waits for the client's delayed ACK: 40 ms per keep-alive request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def freeze_startup_objects() -> None:
    """Keep what starting allocated (modules, SQLAlchemy and botocore models, documents)
    out of the garbage collector's full passes (``gc.freeze``), which walked all of it:
    about 0.1 s each on a loaded machine, the longest stall a signal met (the maxima of
    benchmarks/parked.py one at a time went from about 110 ms to 30 ms)."""
    gc.collect()
    gc.freeze()


async def serve(config: DaemonConfig, state_url: str) -> None:
    """Run until SIGTERM or SIGINT; the database is migrated when the store opens."""
    metrics = Metrics()

    pool: WorkerPool | None = None

    def step_changed(record: StepRecord) -> None:
        metrics.step_changed(record)
        logs.step_changed(record)
        if pool is not None:
            pool.step_changed(record)

    settings = Settings(
        region=config.region,
        account_id=config.account_id,
        lease_seconds=config.lease_seconds,
        park_timers_after=config.park_timers_after_seconds,
        # The same key as `runbook param` by default, so both read one another's secrets.
        parameter_key_file=config.parameter_key_file
        or os.environ.get("RUNBOOK_PARAMETER_KEY_FILE")
        or None,
    )
    sock = bind(config.host, config.port)
    async with Engine(
        state_url,
        documents=config.documents,
        settings=settings,
        listener=step_changed,
        inventory=inventory_from_option(config.inventory),
    ) as engine:
        pool = WorkerPool(engine, metrics, workers=config.workers, poll_seconds=config.poll_seconds)
        operations = Operations(engine, config, pool.notify, pool.hand_off)
        operations.handlers.update(DocumentOperations(engine, config).handlers)
        operations.handlers.update(AssociationOperations(engine, config).handlers)
        commands = CommandRunner(
            engine, lease_seconds=config.lease_seconds, poll_seconds=config.poll_seconds
        )
        operations.handlers.update(CommandOperations(engine, config, commands).handlers)
        schedules = ScheduleRunner(engine, pool.notify, poll_seconds=config.schedule_poll_seconds)
        providers = Providers(
            parameters=StoreParameterSource(lambda: engine.parameters),
            schedules=StoreScheduleSource(lambda: engine.store.schedules),
        )
        app = build_app(config, engine, operations, metrics, providers)
        server = _Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="off",
                ssl_certfile=config.tls_certificate,
                ssl_keyfile=config.tls_key,
                timeout_graceful_shutdown=5,
            )
        )
        freeze_startup_objects()
        host, port = sock.getsockname()[:2]
        scheme = "https" if config.tls_certificate else "http"
        logs.event(
            "listening",
            host=host,
            port=port,
            url=f"{scheme}://{host}:{port}",
            owner=engine.owner,
            workers=config.workers,
            credentials=len(config.credentials),
        )
        async with anyio.create_task_group() as group:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for received in signals:
                        logs.event("stopping", signal=signal.Signals(received).name)
                        server.should_exit = True
                        await pool.shutdown(config.shutdown_grace_seconds)
                        group.cancel_scope.cancel()
                        return

            async def http() -> None:
                await server.serve(sockets=[sock])

            group.start_soon(stop_on_signal)
            group.start_soon(pool.run)
            group.start_soon(schedules.run)
            group.start_soon(commands.run)
            group.start_soon(http)
        sock.close()
    logs.event("stopped")
