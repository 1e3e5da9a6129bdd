"""Local fan-out: ``true`` on N local inventory targets at MaxConcurrency C.

The engine runs twice: with ramp-up (the default: 1, 2, 4 ... targets at once) and without.

One ``aws:runCommand`` step (``AWS-RunShellScript``, ``commands: [true]``) over
``Targets: tag:Group=bench``, resolved against an inventory of N ``local`` instances,
through the library ``Engine`` on SQLite; the invocations are checked ``Success`` before
a figure is printed. Side by side, in the same run, the floor: N ``/bin/sh -c true`` started
with ``anyio.run_process``, C at a time.

    python benchmarks/fanout_local.py [--targets 1000] [--concurrency 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import yaml

from runbook_engine.engine import Engine
from runbook_engine.inventory import parse_inventory
from runbook_engine.settings import Settings
from runbook_engine.status import Status


def runbook(concurrency: int) -> str:
    return yaml.safe_dump(
        {
            "schemaVersion": "0.3",
            "mainSteps": [
                {
                    "name": "fan",
                    "action": "aws:runCommand",
                    "inputs": {
                        "DocumentName": "AWS-RunShellScript",
                        "Targets": [{"Key": "tag:Group", "Values": ["bench"]}],
                        "Parameters": {"commands": ["true"]},
                        "MaxConcurrency": str(concurrency),
                        "MaxErrors": "0",
                    },
                }
            ],
        }
    )


async def engine_run(
    directory: Path, targets: int, concurrency: int, ramp_up: bool = True
) -> float:
    inventory = parse_inventory(
        {
            "instances": [
                {"id": f"t{n}", "local": {}, "tags": {"Group": "bench"}} for n in range(targets)
            ]
        }
    )
    document = directory / "fanout.yaml"
    document.write_text(runbook(concurrency))
    state = directory / "state.db"
    state.unlink(missing_ok=True)
    async with Engine(
        f"sqlite:///{state}",
        settings=Settings(principal="bench", ramp_up=ramp_up),
        inventory=inventory,
    ) as engine:
        started = time.perf_counter()
        view = await engine.run(str(document))
        elapsed = time.perf_counter() - started
    invocations = view.step("fan").response["CommandInvocations"]
    ok = [i for i in invocations if i["Status"] == "Success"]
    if view.status != Status.SUCCESS or len(ok) != targets:
        raise SystemExit(f"run failed: {view.status}, {len(ok)} of {targets} invocations Success")
    return elapsed


async def floor_run(targets: int, concurrency: int) -> float:
    limiter = anyio.CapacityLimiter(concurrency)

    async def one() -> None:
        async with limiter:
            await anyio.run_process(["/bin/sh", "-c", "true"])

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(targets):
            group.start_soon(one)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    engine_times, flat_times, floor_times = [], [], []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(args.repeat):
            engine_times.append(
                anyio.run(engine_run, Path(directory), args.targets, args.concurrency)
            )
            flat_times.append(
                anyio.run(engine_run, Path(directory), args.targets, args.concurrency, False)
            )
            floor_times.append(anyio.run(floor_run, args.targets, args.concurrency))
    print(
        f"{args.targets} local targets, MaxConcurrency {args.concurrency}, {args.repeat} runs"
        f" (load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )
    for name, times in (
        ("runbook-engine aws:runCommand", engine_times),
        ("  the same, ramp-up off", flat_times),
        ("floor: anyio.run_process", floor_times),
    ):
        best, median = min(times), statistics.median(times)
        print(
            f"{name:32s} best {best:6.2f} s  {args.targets / best:7.0f} invocations/s"
            f"  (median {args.targets / median:7.0f}/s)"
        )
    print(f"ratio (best engine / best floor): {min(engine_times) / min(floor_times):.2f}x")


if __name__ == "__main__":
    main()
