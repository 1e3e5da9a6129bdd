"""aws:executeAwsApi throughput against the local AWS emulator, beside plain boto3.

Starts ``moto_server`` on a loopback port, launches one instance, then times in one run:

- plain boto3: ``describe_instances`` called N times in a loop (one client);
- the engine: one execution of a runbook of N ``aws:executeAwsApi`` DescribeInstances
  steps (each with an output selector), every step recorded durably (write-ahead and
  final record) in a SQLite state database, and again with the in-memory store.

Each is run ``--rounds`` times, alternating (the order turns by one each round, so that
no variant always follows the same one). The engine's share is
``(engine - boto3) / boto3``: what the engine adds to the same calls. It is given two
ways: between the best rounds of each (the machine is shared, the emulator runs on the
same cores), and as the median over rounds of the share within each round, where the
variants ran one after the other, a few seconds apart.

The emulator's own speed drifts from one second to the next (the same 1,000 plain calls
take 7.7 s in one round and 11 s in another), and that drift lands in those differences.
So every variant also times the calls themselves (botocore's ``_make_api_call``: request,
emulator, response parsing), and the table gives the time spent outside them per call and
its share of the time spent in them, the median over rounds: the engine's own work against
the boto3 time of the very same calls, free of the drift. That the engine makes its calls
on a worker thread does not make them slower: a last check alternates the same call one
by one on the main thread and on a worker thread, and prints both sums and the hop.

    python benchmarks/aws_api.py [--steps 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import boto3
from botocore.client import BaseClient

from runbook_engine import Engine
from runbook_engine.settings import Settings
from runbook_engine.status import Status


def start_moto(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    executable = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    log = (directory / "moto.log").open("wb")
    process = subprocess.Popen(
        [executable, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/moto-api/config", timeout=1).read()
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"moto_server did not start: {(directory / 'moto.log').read_text()}")


def point_clients_at(url: str) -> None:
    """Every boto3 client of this process (ours and the engine's) talks to the emulator."""
    os.environ.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
    )


def runbook(steps: int) -> str:
    lines = ["schemaVersion: '0.3'", "mainSteps:"]
    for n in range(steps):
        lines += [
            f"  - name: describe{n}",
            "    action: aws:executeAwsApi",
            "    inputs: {Service: ec2, Api: DescribeInstances}",
            "    outputs: [{Name: State, Selector: '$.Reservations[0].Instances[0].State.Name'}]",
        ]
    return "\n".join(lines) + "\n"


class CallClock:
    """Time spent inside botocore API calls, from any thread, since ``reset``."""

    def __init__(self) -> None:
        self.spans: list[float] = []
        original = BaseClient._make_api_call

        def timed(client: BaseClient, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(client, *args, **kwargs)
            finally:
                self.spans.append(time.perf_counter() - started)  # atomic under the GIL

        BaseClient._make_api_call = timed

    def reset(self) -> None:
        self.spans = []

    def inside(self) -> float:
        return sum(self.spans)


Timing = tuple[float, float]  # (seconds, seconds inside the API calls)


def settle() -> None:
    """Before every timed run, what a long-running program does once its start-up is
    over, and what ``runbook run`` does once its engine is open (``cli.startup_done``): a
    full collection, then ``gc.freeze()``. The objects made while warming up (the engine's
    own botocore session loads the EC2 model, some 170,000 objects) are then left out of
    later collections, instead of being walked again by each full collection the timed
    run triggers."""
    gc.collect()
    gc.freeze()


def plain_boto3(calls: int, clock: CallClock) -> Timing:
    client = boto3.client("ec2")
    client.describe_instances()  # connection and model loading outside the timing
    settle()
    clock.reset()
    started = time.perf_counter()
    for _ in range(calls):
        client.describe_instances()["Reservations"][0]["Instances"][0]["State"]["Name"]
    return time.perf_counter() - started, clock.inside()


def boto3_in_threads(calls: int, clock: CallClock) -> Timing:
    """The same loop, each call in a worker thread awaited from an event loop: what the
    engine must do (calls never block the loop): the floor for the engine, the hop to
    the worker and back."""
    client = boto3.client("ec2")
    client.describe_instances()

    async def loop() -> Timing:
        settle()
        clock.reset()
        started = time.perf_counter()
        for _ in range(calls):
            answer = await anyio.to_thread.run_sync(client.describe_instances)
            answer["Reservations"][0]["Instances"][0]["State"]["Name"]
        return time.perf_counter() - started, clock.inside()

    return anyio.run(loop)


def engine_run(document: str, state: str, clock: CallClock) -> Timing:
    async def main() -> Timing:
        async with Engine(state, settings=Settings(principal="bench")) as engine:
            await engine.aws.call("ec2", "DescribeInstances")  # client made outside the timing
            settle()
            clock.reset()
            started = time.perf_counter()
            view = await engine.run(document)
            elapsed = time.perf_counter() - started
            assert view.status == Status.SUCCESS, view.execution.failure_message
            return elapsed, clock.inside()

    return anyio.run(main)


def report(runs: dict[str, list[Timing]], steps: int) -> None:
    best = {name: min(timings) for name, timings in runs.items()}
    baseline = best["boto3"][0]
    print(f"{steps} DescribeInstances calls, {len(runs['boto3'])} rounds")
    print(
        f"{'':<16}{'seconds':>9}{'calls/s':>10}{'ms/call':>9}{'vs boto3':>10}"
        f"{'per round':>11}{'outside calls':>15}{'of in calls':>13}"
    )
    for name, (seconds, _) in best.items():
        plain = "" if name == "boto3" else f"{(seconds - baseline) / baseline:+.0%}"
        paired = "" if name == "boto3" else f"{median_share(runs[name], runs['boto3']):+.0%}"
        outside = statistics.median(total - inside for total, inside in runs[name])
        share = statistics.median((total - inside) / inside for total, inside in runs[name])
        print(
            f"{name:<16}{seconds:>9.2f}{steps / seconds:>10.0f}{1000 * seconds / steps:>9.2f}"
            f"{plain:>10}{paired:>11}{1000 * outside / steps:>12.3f} ms{share:>13.1%}"
        )
    print(
        "seconds, calls/s, ms/call, vs boto3: each variant's best round. per round: the"
        " median over rounds of (variant - boto3) / boto3 within the round. outside calls,"
        " of in calls: the median over rounds of the time outside the API calls, per call"
        " and as a share of the time in them."
    )


def median_share(timings: list[Timing], baselines: list[Timing]) -> float:
    pairs = zip(timings, baselines, strict=True)
    return statistics.median((seconds - base) / base for (seconds, _), (base, _) in pairs)


def worker_thread_check(calls: int) -> None:
    """The same call alternately on the main thread and on a worker thread, one by one,
    so that both see the same emulator speed."""
    client = boto3.client("ec2")
    client.describe_instances()

    def timed() -> float:
        started = time.perf_counter()
        client.describe_instances()
        return time.perf_counter() - started

    main_thread = worker = hop = 0.0
    with ThreadPoolExecutor(1) as pool:
        pool.submit(timed).result()
        settle()
        for _ in range(calls):
            main_thread += timed()
            started = time.perf_counter()
            inside = pool.submit(timed).result()
            worker += inside
            hop += time.perf_counter() - started - inside
    print(
        f"{calls} calls alternated: main thread {main_thread:.2f} s, worker thread"
        f" {worker:.2f} s ({(worker - main_thread) / main_thread:+.1%}); the hop to the"
        f" worker and back {1000 * hop / calls:.3f} ms per call"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="runbook-bench-aws-"))
    process, url = start_moto(directory)
    point_clients_at(url)
    try:
        boto3.client("ec2").run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
        document = directory / "describe.yaml"
        document.write_text(runbook(args.steps))
        clock = CallClock()
        variants: dict[str, Callable[[int], Timing]] = {
            "boto3": lambda n: plain_boto3(args.steps, clock),
            "boto3, threads": lambda n: boto3_in_threads(args.steps, clock),
            "engine, SQLite": lambda n: engine_run(
                str(document), f"sqlite:///{directory}/s{n}.db", clock
            ),
            "engine, memory": lambda n: engine_run(str(document), "memory://", clock),
        }
        runs: dict[str, list[Timing]] = {name: [] for name in variants}
        names = list(variants)
        for round_ in range(args.rounds):
            turn = round_ % len(names)
            for name in names[turn:] + names[:turn]:
                runs[name].append(variants[name](round_))
        report(runs, args.steps)
        worker_thread_check(args.steps)
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
