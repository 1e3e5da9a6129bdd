"""Scale-out: 1, 2 and 4 daemons on one PostgreSQL running 1,000 executions of an
I/O-bound runbook (two ``aws:sleep PT1S`` steps), and the takeover time after a kill.

Throughput is executions per second from the first step start to the last execution
end, read from the records; the executions are created (Pending) before the daemons
start, so only running them is measured. Each daemon has ``--workers`` workers; a sleep
of one second is under the daemon's ``park_timers_after_seconds`` (5), so it holds its
worker, and a daemon runs at most ``--workers`` executions at once: this measures how
running executions spread over daemons, on a machine whose two cores all daemons share.

Takeover: two daemons with ``lease_seconds`` = ``--lease``; one is killed (SIGKILL) while
it holds executions in their sleeps; the time from the kill to the survivor's claim of
each orphaned execution (its ``claimed`` log line with ``taken_over``), and a check that
every execution still succeeds with each step run once.

The daemons run with the environment of ``_cli_env.py``: bytecode under the temporary
root (its imports at start-up write it), as an installed engine runs from bytecode.

    python benchmarks/scale_out.py [--executions 1000] [--daemons 1,2,4] [--workers 25]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from _cli_env import cli_env
from daemon_services import DaemonProcess, postgres

from runbook_engine.engine import Engine
from runbook_engine.status import Status
from runbook_engine.store import open_store

IO_BOUND = """\
schemaVersion: '0.3'
mainSteps:
  - name: one
    action: aws:sleep
    inputs: {Duration: PT1S}
  - name: two
    action: aws:sleep
    inputs: {Duration: PT1S}
"""
TAKEOVER = """\
schemaVersion: '0.3'
mainSteps:
  - name: before
    action: aws:sleep
    inputs: {Duration: PT0S}
  - name: long
    action: aws:sleep
    inputs: {Duration: PT4S}
  - name: after
    action: aws:sleep
    inputs: {Duration: PT0S}
"""


async def create(url: str, documents: Path, name: str, count: int) -> list[str]:
    async with Engine(url, documents=[documents]) as engine:
        return [await engine.start(name) for _ in range(count)]


async def finished(url: str, ids: list[str], patience: float) -> list[Any]:
    """Wait until every execution is terminal; their records."""
    store = open_store(url)
    try:
        with anyio.fail_after(patience):
            while True:
                counts = await store.count_executions()
                done = sum(n for status, n in counts.items() if Status(status).terminal)
                if done >= len(ids):
                    break
                await anyio.sleep(0.5)
        return await store.list_executions(limit=len(ids) + 10)
    finally:
        await store.close()


def start_daemons(root: Path, count: int, settings: dict[str, Any]) -> list[DaemonProcess]:
    env = cli_env(root)
    started = [DaemonProcess(root, settings, f"daemon{n}", env) for n in range(count)]
    return [daemon.wait_ready() for daemon in started]


def throughput(
    server: Any,
    root: Path,
    documents: Path,
    count: int,
    executions: int,
    workers: int,
    park_after: float | None,
) -> None:
    url = server.create_database(f"scale_{count}_{int(time.time() * 1000)}")
    ids = anyio.run(create, url, documents, "io-bound", executions)
    settings: dict[str, Any] = {"state": url, "documents": [str(documents)], "workers": workers}
    if park_after is not None:
        settings["park_timers_after_seconds"] = park_after
    daemons = start_daemons(root, count, settings)
    try:
        records = anyio.run(finished, url, ids, 900.0)
    finally:
        for daemon in daemons:
            daemon.stop()
    statuses = {r.status for r in records}
    first = min(r.start_time for r in records if r.start_time)
    last = max(r.end_time for r in records if r.end_time)
    elapsed = (last - first).total_seconds()
    shares = [len(d.events("claimed")) for d in daemons]
    parking = f", sleeps over {park_after:g} s parked" if park_after is not None else ""
    print(
        f"{count} daemon(s) x {workers} workers{parking}: {executions} executions in {elapsed:.1f} s ="
        f" {executions / elapsed:.1f} executions/s; statuses {sorted(s.value for s in statuses)};"
        f" claims per daemon {shares}",
        flush=True,
    )


def takeover(server: Any, root: Path, documents: Path, executions: int, lease: float) -> None:
    url = server.create_database("takeover")
    ids = anyio.run(create, url, documents, "takeover", executions)
    settings = {"state": url, "documents": [str(documents)], "workers": 25, "lease_seconds": lease}
    victim, survivor = start_daemons(root, 2, settings)
    try:
        time.sleep(3)  # both are in the middle of their executions' long sleeps
        owners = anyio.run(owned_by, url, ids, victim.pid)
        killed_at = time.time()
        victim.kill()
        records = anyio.run(finished, url, ids, 300.0)
        steps = anyio.run(step_names, url, owners)
    finally:
        survivor.stop()
        victim.stop()
    claims = {
        e["execution_id"]: datetime.fromisoformat(e["time"]).timestamp()
        for e in survivor.events("claimed")
        if e["execution_id"] in owners and e.get("taken_over")
    }
    delays = [claims[i] - killed_at for i in owners if i in claims]
    repeated = sum(1 for names in steps.values() if sorted(names) != ["after", "before", "long"])
    print(
        f"takeover (lease {lease:g} s): {len(owners)} executions orphaned by SIGKILL;"
        f" {len(delays)} taken over, after {statistics.median(delays):.1f} s median,"
        f" {max(delays):.1f} s max; statuses {sorted({r.status.value for r in records})};"
        f" executions with a step run twice: {repeated}",
        flush=True,
    )


async def owned_by(url: str, ids: list[str], pid: int) -> list[str]:
    store = open_store(url)
    try:
        owned = []
        for execution_id in ids:
            owner = (await store.get_execution(execution_id)).owner
            if owner and owner.split(":")[1] == str(pid):
                owned.append(execution_id)
        return owned
    finally:
        await store.close()


async def step_names(url: str, ids: list[str]) -> dict[str, list[str]]:
    store = open_store(url)
    try:
        return {i: [s.step_name for s in await store.get_steps(i)] for i in ids}
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--daemons", default="1,2,4")
    parser.add_argument("--workers", type=int, default=25)
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--takeover-executions", type=int, default=100)
    parser.add_argument(
        "--park-after",
        type=float,
        default=None,
        help="park_timers_after_seconds for the daemons (e.g. 0.5: the sleeps free workers)",
    )
    parser.add_argument("--no-takeover", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, postgres() as server:
        root = Path(scratch)
        documents = root / "documents"
        documents.mkdir()
        (documents / "io-bound.yaml").write_text(IO_BOUND)
        (documents / "takeover.yaml").write_text(TAKEOVER)
        for count in (int(n) for n in args.daemons.split(",")):
            throughput(
                server, root, documents, count, args.executions, args.workers, args.park_after
            )
        if not args.no_takeover:
            takeover(server, root, documents, args.takeover_executions, args.lease)


if __name__ == "__main__":
    main()
