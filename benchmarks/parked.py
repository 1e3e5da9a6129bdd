"""Parked work: 10,000 executions waiting on ``aws:approve`` under one daemon.

Reports the daemon's resident memory with the executions parked (target: under 400 MB)
and the time from SendAutomationSignal (the client sending it) to the next step
starting (its step record's start time; target: p99 under 200 ms), for signals sent one
after another and for a burst sent by 8 threads at once.

The executions are made efficiently: a few are started and driven to their approval
step by the engine, then their rows (execution and step records, exactly as the engine
wrote them) are copied under new ids up to the count, in batches. Parked executions
are rows, not coroutines, so the daemon starts without loading any of them.

The daemon runs with the environment of ``_cli_env.py``: bytecode under the temporary
root (its imports at start-up write it), as an installed engine runs from bytecode.

    python benchmarks/parked.py [--executions 10000] [--signals 200] [--state postgres|sqlite]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import anyio
from _cli_env import cli_env
from daemon_api import _state
from daemon_services import ALICE, DaemonProcess, rss_mb, summary

from runbook_engine.engine import Engine
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.status import Status
from runbook_engine.store import open_store
from runbook_engine.store.codec import execution_to_row, step_to_row
from runbook_engine.store.document_texts import stored_row
from runbook_engine.store.engines import create_store_engine
from runbook_engine.store.schema import EXECUTIONS, STEPS

GATE = """\
schemaVersion: '0.3'
mainSteps:
  - name: gate
    action: aws:approve
    inputs: {Approvers: [alice]}
  - name: after
    action: aws:sleep
    inputs: {Duration: PT0S}
"""
BATCH = 1000


async def seed(url: str, document: Path, count: int) -> list[str]:
    """``count`` executions parked at the approval; their ids."""
    async with Engine(url) as engine:
        execution_id = await engine.start(str(document))
        view = await engine.wait(execution_id, until_waiting=True)
        assert view.status == Status.WAITING, view.status
        template: ExecutionRecord = view.execution
        steps: list[StepRecord] = list(view.steps)
    ids = [execution_id]
    database = create_store_engine(url)
    try:
        while len(ids) < count:
            executions, step_rows = [], []
            for _ in range(min(BATCH, count - len(ids))):
                new_id = str(uuid.uuid4())
                ids.append(new_id)
                row = execution_to_row(replace(template, execution_id=new_id))
                executions.append(stored_row(row)[0])  # the text is stored: the same runbook
                for step in steps:
                    copy = replace(step, execution_id=new_id, step_execution_id=str(uuid.uuid4()))
                    step_rows.append(step_to_row(copy))
            with database.begin() as conn:
                conn.execute(EXECUTIONS.insert(), executions)
                conn.execute(STEPS.insert(), step_rows)
    finally:
        database.dispose()
    return ids


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all threads (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def signal_all(daemon: DaemonProcess, ids: list[str], threads: int, gap: float) -> dict[str, float]:
    """Approve each execution; when each signal was sent (wall clock, like the records)."""
    sent: dict[str, float] = {}
    lock = threading.Lock()
    chunks = [ids[i::threads] for i in range(threads)]

    def worker(chunk: list[str]) -> None:
        client = daemon.client(ALICE)
        client.describe_automation_executions(MaxResults=1)  # warm the connection
        for execution_id in chunk:
            moment = time.time()
            client.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Approve")
            with lock:
                sent[execution_id] = moment
            if gap:
                time.sleep(gap)

    workers = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return sent


async def next_step_starts(url: str, ids: list[str], patience: float = 120) -> dict[str, datetime]:
    """When the step after the approval started, for each execution (waits for them)."""
    store = open_store(url)
    found: dict[str, datetime] = {}
    deadline = time.monotonic() + patience
    try:
        while len(found) < len(ids) and time.monotonic() < deadline:
            for execution_id in ids:
                if execution_id in found:
                    continue
                for step in await store.get_steps(execution_id):
                    if step.step_name == "after" and step.start_time is not None:
                        found[execution_id] = step.start_time
            await anyio.sleep(0.5)
    finally:
        await store.close()
    return found


def latencies(sent: dict[str, float], started: dict[str, datetime]) -> list[float]:
    missing = set(sent) - set(started)
    if missing:
        raise SystemExit(f"{len(missing)} executions did not go on after their signal")
    return [started[i].timestamp() - sent[i] for i in sent]


def _profile(pid: int, path: str) -> subprocess.Popen[bytes]:
    """``py-spy record`` of the daemon (collapsed stacks: ``--format raw``), until SIGINT."""
    command = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--output", path]
    profiler = subprocess.Popen([*command, "--rate", "250", "--threads", "--gil"])
    time.sleep(1)  # attached
    return profiler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--signals", type=int, default=200)
    parser.add_argument("--state", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--profile", help="py-spy record the daemon during the burst, to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch, _state(args.state, Path(scratch)) as url:
        root = Path(scratch)
        document = root / "gate.yaml"
        document.write_text(GATE)
        began = time.monotonic()
        ids = anyio.run(seed, url, document, args.executions)
        print(
            f"{len(ids)} parked executions made in {time.monotonic() - began:.1f} s ({args.state})"
        )

        daemon = DaemonProcess(
            root,
            {
                "state": url,
                "documents": [str(root)],
                "workers": args.workers,
                "poll_seconds": 1.0,
            },
            environment=cli_env(root),
        ).wait_ready()
        try:
            time.sleep(3)
            status, body = daemon.get("/healthz")
            print(f"daemon up: /healthz {status} {body}")
            idle = rss_mb(daemon.pid)
            print(f"resident memory with {len(ids)} parked: {idle:.0f} MB")

            one_by_one, burst = ids[: args.signals], ids[args.signals : 2 * args.signals]
            sent = signal_all(daemon, one_by_one, threads=1, gap=0.02)
            started = anyio.run(next_step_starts, url, one_by_one)
            sequential = latencies(sent, started)
            print(f"signal -> next step, one at a time: {summary(sequential)}")

            profiler = _profile(daemon.pid, args.profile) if args.profile else None
            cpu = cpu_seconds(daemon.pid)
            began = time.monotonic()
            sent = signal_all(daemon, burst, threads=8, gap=0)
            sending = time.monotonic() - began
            started = anyio.run(next_step_starts, url, burst)
            # The daemon's CPU for the burst: the signals, and the drives they wake.
            cpu = cpu_seconds(daemon.pid) - cpu
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait()
            print(
                f"signal -> next step, burst of {len(burst)} from 8 threads:"
                f" {summary(latencies(sent, started))}; sent in {sending:.2f} s,"
                f" daemon CPU {cpu / len(burst) * 1000:.1f} ms per signal"
            )
            handled = [
                line["duration_ms"] / 1000
                for line in daemon.events("request")
                if line.get("operation") == "SendAutomationSignal"
            ][-len(burst) :]
            if handled:  # the daemon's own time per request of the burst (from its log)
                print(f"  SendAutomationSignal inside the daemon: {summary(handled)}")
            print(f"resident memory after the signals: {rss_mb(daemon.pid):.0f} MB")
            print(f"mean one at a time: {statistics.mean(sequential) * 1000:.1f} ms")
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
