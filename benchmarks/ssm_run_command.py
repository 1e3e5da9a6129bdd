"""aws:runCommand on SSM managed nodes against the local AWS emulator, beside plain boto3.

Starts ``moto_server`` on a loopback port, launches one instance (not in any inventory,
so aws:runCommand sends its commands to SSM), then times in one run:

- plain boto3: per command ``send_command``, ``list_commands`` (the status poll) and
  ``get_command_invocation``, N times in a loop;
- the engine: one execution of a runbook of N aws:runCommand steps (AWS-RunShellScript on
  that instance), each deciding its side, sending through the AWS caller, recording the
  CommandId before polling, polling once (the emulator ends commands at once) and reading
  the invocation, every step recorded durably in a SQLite state database.

The emulator lists every instance of the region as a node of every command, so the run
has exactly one instance. Rounds alternate; the best of each is kept. The engine's share
is ``(engine - boto3) / boto3``.

    python benchmarks/ssm_run_command.py [--steps 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import anyio
import boto3
from aws_api import point_clients_at, start_moto

from runbook_engine import Engine
from runbook_engine.settings import AwsSettings, Settings
from runbook_engine.status import Status

REQUEST = {"DocumentName": "AWS-RunShellScript", "Parameters": {"commands": ["uptime"]}}


def runbook(steps: int, instance_id: str) -> str:
    lines = ["schemaVersion: '0.3'", "mainSteps:"]
    for n in range(steps):
        lines += [
            f"  - name: rc{n}",
            "    action: aws:runCommand",
            "    inputs:",
            "      DocumentName: AWS-RunShellScript",
            f"      InstanceIds: [{instance_id}]",
            "      Parameters: {commands: [uptime]}",
        ]
    return "\n".join(lines) + "\n"


def plain_boto3(commands: int, instance_id: str) -> float:
    ssm = boto3.client("ssm")
    ssm.list_commands(MaxResults=1)  # connection and model loading outside the timing
    started = time.perf_counter()
    for _ in range(commands):
        command_id = ssm.send_command(InstanceIds=[instance_id], **REQUEST)["Command"]["CommandId"]
        assert ssm.list_commands(CommandId=command_id)["Commands"][0]["Status"] == "Success"
        ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    return time.perf_counter() - started


def engine_run(document: str, state: str) -> float:
    settings = Settings(principal="bench", aws=AwsSettings(poll_interval=0.05))

    async def main() -> float:
        async with Engine(state, settings=settings) as engine:
            await engine.aws.call("ssm", "ListCommands", {"MaxResults": 1})  # client made
            started = time.perf_counter()
            view = await engine.run(document)
            elapsed = time.perf_counter() - started
            assert view.status == Status.SUCCESS, view.execution.failure_message
            return elapsed

    return anyio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="runbook-bench-ssm-"))
    process, url = start_moto(directory)
    point_clients_at(url)
    try:
        answer = boto3.client("ec2").run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
        instance_id = answer["Instances"][0]["InstanceId"]
        document = directory / "run-command.yaml"
        document.write_text(runbook(args.steps, instance_id))
        best: dict[str, float] = {}
        for round_ in range(args.rounds):
            timings = {
                "boto3": plain_boto3(args.steps, instance_id),
                "engine, SQLite": engine_run(str(document), f"sqlite:///{directory}/s{round_}.db"),
            }
            for name, seconds in timings.items():
                best[name] = min(best.get(name, seconds), seconds)
        baseline = best["boto3"]
        print(f"{args.steps} Run Commands on SSM (send, poll, read), best of {args.rounds} rounds")
        print(f"{'':<16}{'seconds':>9}{'cmds/s':>9}{'ms/cmd':>9}{'engine share':>14}")
        for name, seconds in best.items():
            share = "" if name == "boto3" else f"{(seconds - baseline) / baseline:+.0%}"
            print(
                f"{name:<16}{seconds:>9.2f}{args.steps / seconds:>9.1f}"
                f"{1000 * seconds / args.steps:>9.2f}{share:>14}"
            )
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
