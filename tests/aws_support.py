"""Helpers for the tests that run AWS actions against the emulator (tests/services/moto.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import boto3

from runbook_engine import Engine, ExecutionView
from runbook_engine.settings import AwsSettings, Settings

# Fast polls and backoff so that tests take seconds; the code path is the production one.
FAST_AWS = AwsSettings(
    poll_interval=0.1, poll_jitter=0.2, throttle_base_delay=0.01, throttle_max_delay=0.05
)


def settings(**aws: Any) -> Settings:
    from dataclasses import replace

    return Settings(poll_interval=0.05, principal="tester", aws=replace(FAST_AWS, **aws))


def client(service: str) -> Any:
    """A plain boto3 client of the emulator (uses the environment aws_env set)."""
    return boto3.client(service)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(
    state: str,
    document: str,
    parameters: dict[str, Any] | None = None,
    *,
    config: Settings | None = None,
) -> ExecutionView:
    async def main() -> ExecutionView:
        async with Engine(state, settings=config or settings()) as engine:
            return await engine.run(document, parameters)

    return anyio.run(main)


def new_instance(image: str = "ami-12345678") -> str:
    answer = client("ec2").run_instances(ImageId=image, MinCount=1, MaxCount=1)
    instance_id: str = answer["Instances"][0]["InstanceId"]
    return instance_id
