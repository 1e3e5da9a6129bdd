"""The daemon's API under load: StartAutomationExecution and GetAutomationExecution
requests per second from boto3 clients (SigV4-signed, one client per thread), with
p50/p99 latency as the client sees it.

The runbook parks at an ``aws:approve`` step, so the workers' share of the work per
execution is small and fixed (claim, two step writes, park). Clients and daemon share the
machine's cores; the figures are for the whole loop, client signing included.

The daemon runs with the environment of ``_cli_env.py``: bytecode under the temporary
root (its imports at start-up write it), as an installed engine runs from bytecode.

    python benchmarks/daemon_api.py [--state sqlite|postgres] [--clients 4] [--seconds 10]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _cli_env import cli_env
from daemon_services import ALICE, DaemonProcess, postgres, summary

GATE = """\
schemaVersion: '0.3'
mainSteps:
  - name: gate
    action: aws:approve
    inputs: {Approvers: [alice]}
"""


def hammer(
    daemon: DaemonProcess, clients: int, seconds: float, call: Callable[[Any, int], Any]
) -> tuple[int, list[float], list[Any]]:
    """Run ``call(client, n)`` from ``clients`` threads for ``seconds``; count, latencies."""
    latencies: list[float] = []
    results: list[Any] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        client = daemon.client(ALICE)
        call(client, -1)  # warm the connection and the client's model
        mine: list[float] = []
        out: list[Any] = []
        n = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            out.append(call(client, n))
            mine.append(time.perf_counter() - started)
            n += 1
        with lock:
            latencies.extend(mine)
            results.extend(out)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    return round(len(latencies) / elapsed), latencies, results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch, _state(args.state, Path(scratch)) as url:
        root = Path(scratch)
        (root / "documents").mkdir()
        (root / "documents" / "gate.yaml").write_text(GATE)
        daemon = DaemonProcess(
            root,
            {"state": url, "documents": [str(root / "documents")], "workers": args.workers},
            environment=cli_env(root),
        ).wait_ready()
        try:
            rate, latencies, ids = hammer(
                daemon,
                args.clients,
                args.seconds,
                lambda c, n: c.start_automation_execution(DocumentName="gate")[
                    "AutomationExecutionId"
                ],
            )
            print(f"StartAutomationExecution: {rate} requests/s, {summary(latencies)}")
            rate, latencies, _ = hammer(
                daemon,
                args.clients,
                args.seconds,
                lambda c, n: c.get_automation_execution(AutomationExecutionId=random.choice(ids)),
            )
            print(f"GetAutomationExecution:   {rate} requests/s, {summary(latencies)}")
            rate, latencies, _ = hammer(
                daemon,
                args.clients,
                args.seconds,
                lambda c, n: c.describe_automation_executions(MaxResults=10),
            )
            print(
                f"DescribeAutomationExecutions (10 per page): {rate} requests/s, {summary(latencies)}"
            )
            print(
                f"state {args.state}, {args.clients} client threads, daemon workers {args.workers}"
            )
        finally:
            daemon.stop()


class _state:
    """The state URL: a SQLite file in the scratch directory, or a private PostgreSQL."""

    def __init__(self, kind: str, scratch: Path) -> None:
        self.kind = kind
        self.scratch = scratch
        self._cluster: Any = None

    def __enter__(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.scratch / 'state.db'}"
        self._cluster = postgres()
        server = self._cluster.__enter__()
        return str(server.create_database("bench"))

    def __exit__(self, *exc: object) -> None:
        if self._cluster is not None:
            self._cluster.__exit__(*exc)


if __name__ == "__main__":
    main()
