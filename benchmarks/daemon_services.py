"""What the daemon benchmarks share: a private PostgreSQL cluster, ``runbook serve``
processes, resident memory, percentiles. Reuses the test services (tests/services), so
run the benchmarks from the repository root with the test extra installed.

The benchmarks start their daemons with the environment of ``_cli_env.py``
(``DaemonProcess(..., environment=cli_env(root))``): bytecode written under their
temporary root, as an installed engine runs from bytecode."""

from __future__ import annotations

import contextlib
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.services.daemon import ALICE, DaemonProcess  # noqa: E402
from tests.services.postgres import PostgresServer, _Cluster  # noqa: E402

__all__ = ["ALICE", "DaemonProcess", "percentile", "postgres", "rss_mb", "summary"]


@contextlib.contextmanager
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster on a loopback port, deleted afterwards."""
    cluster = _Cluster()
    try:
        cluster.init()
        port = cluster.start()
        yield PostgresServer("127.0.0.1", port, "runbook", cluster.password)
    finally:
        cluster.stop()


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: Sequence[float]) -> str:
    """p50 / p99 / max in milliseconds."""
    ms = [v * 1000 for v in values]
    return (
        f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms,"
        f" max {max(ms):.1f} ms (n={len(ms)})"
    )
