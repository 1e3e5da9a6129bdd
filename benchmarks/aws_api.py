"""aws:executeAwsApi throughput against the local AWS emulator, beside plain boto3.

Starts ``moto_server`` on a loopback port, launches one instance, then times in one run:

- plain boto3: ``describe_instances`` called N times in a loop (one client);
- the engine: one execution of a runbook of N ``aws:executeAwsApi`` DescribeInstances
  steps (each with an output selector), every step recorded durably (write-ahead and
  final record) in a SQLite state database, and again with the in-memory store.

Each is run ``--rounds`` times, alternating, and the best round is kept (the machine is
shared, the emulator runs on the same cores). The engine's share is
``(engine - boto3) / boto3``: what the engine adds to the same calls.

    python benchmarks/aws_api.py [--steps 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import anyio
import boto3

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


def plain_boto3(calls: int) -> float:
    client = boto3.client("ec2")
    client.describe_instances()  # connection and model loading outside the timing
    started = time.perf_counter()
    for _ in range(calls):
        client.describe_instances()["Reservations"][0]["Instances"][0]["State"]["Name"]
    return time.perf_counter() - started


def boto3_in_threads(calls: int) -> float:
    """The same loop, each call in a worker thread awaited from an event loop: what the
    engine must do (calls never block the loop). On some machines CPU-bound Python runs
    markedly slower in a second thread than in the main one (here up to 25%), and
    botocore's response parsing is CPU-bound: this is the floor for the engine."""
    client = boto3.client("ec2")
    client.describe_instances()

    async def loop() -> float:
        started = time.perf_counter()
        for _ in range(calls):
            answer = await anyio.to_thread.run_sync(client.describe_instances)
            answer["Reservations"][0]["Instances"][0]["State"]["Name"]
        return time.perf_counter() - started

    return anyio.run(loop)


def engine_run(document: str, state: str) -> float:
    async def main() -> float:
        async with Engine(state, settings=Settings(principal="bench")) as engine:
            await engine.aws.call("ec2", "DescribeInstances")  # client made outside the timing
            started = time.perf_counter()
            view = await engine.run(document)
            elapsed = time.perf_counter() - started
            assert view.status == Status.SUCCESS, view.execution.failure_message
            return elapsed

    return anyio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="runbook-bench-aws-"))
    process, url = start_moto(directory)
    point_clients_at(url)
    try:
        boto3.client("ec2").run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
        document = directory / "describe.yaml"
        document.write_text(runbook(args.steps))
        best: dict[str, float] = {}
        for round_ in range(args.rounds):
            timings = {
                "boto3": plain_boto3(args.steps),
                "boto3, threads": boto3_in_threads(args.steps),
                "engine, SQLite": engine_run(str(document), f"sqlite:///{directory}/s{round_}.db"),
                "engine, memory": engine_run(str(document), "memory://"),
            }
            for name, seconds in timings.items():
                best[name] = min(best.get(name, seconds), seconds)
        baseline, threaded = best["boto3"], best["boto3, threads"]
        print(f"{args.steps} DescribeInstances calls, best of {args.rounds} rounds")
        print(
            f"{'':<16}{'seconds':>9}{'calls/s':>10}{'ms/call':>9}"
            f"{'vs boto3':>10}{'vs threads':>12}"
        )
        for name, seconds in best.items():
            plain = "" if name == "boto3" else f"{(seconds - baseline) / baseline:+.0%}"
            floor = "" if name.startswith("boto3") else f"{(seconds - threaded) / threaded:+.0%}"
            print(
                f"{name:<16}{seconds:>9.2f}{args.steps / seconds:>10.0f}"
                f"{1000 * seconds / args.steps:>9.2f}{plain:>10}{floor:>12}"
            )
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
