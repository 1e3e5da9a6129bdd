"""Engine settings: explicit values passed in, never read from the environment at import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    region: str = "us-east-1"
    account_id: str = "000000000000"
    partition: str = "aws"
    principal: str | None = None  # who starts and signals; default: the OS user
    step_budget: int = 10_000  # step runs per execution before it is stopped as a runaway
    poll_interval: float = 0.5  # seconds between looks for signals and stops from elsewhere
    lease_seconds: float = 30.0  # how long a claim on an execution lasts without renewal
    # A driver run until_waiting parks a step whose timer (aws:sleep, a retry wait) is
    # further away than this many seconds, freeing its worker; None: timers hold it.
    park_timers_after: float | None = None
