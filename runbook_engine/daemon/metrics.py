"""Prometheus metrics of one daemon, in a registry of its own (served at ``/metrics``).

Counts that live in the database (executions by status, the queue of executions not
started yet) are read from the store when scraped, so every daemon on one database
reports the same figures; the rest are this process's own.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from runbook_engine.records import StepRecord
from runbook_engine.status import Status
from runbook_engine.store import StateStore

STEP_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.executions = Gauge(
            "runbook_executions",
            "Executions in the state database, by status.",
            ["status"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "runbook_queue_depth",
            "Executions waiting for a worker to start them (status Pending).",
            registry=self.registry,
        )
        self.step_duration = Histogram(
            "runbook_step_duration_seconds",
            "Duration of finished step executions run by this daemon.",
            ["action", "status"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.claims = Counter(
            "runbook_execution_claims",
            "Executions this daemon's workers claimed.",
            registry=self.registry,
        )
        self.takeovers = Counter(
            "runbook_lease_takeovers",
            "Executions claimed with a step left running by a daemon that stopped holding it.",
            registry=self.registry,
        )
        self.busy_workers = Gauge(
            "runbook_workers_busy", "Workers running an execution now.", registry=self.registry
        )
        self.requests = Counter(
            "runbook_api_requests",
            "API requests, by operation and result code.",
            ["operation", "code"],
            registry=self.registry,
        )

    def step_changed(self, record: StepRecord) -> None:
        if record.status.terminal and record.start_time and record.end_time:
            seconds = (record.end_time - record.start_time).total_seconds()
            self.step_duration.labels(record.action, record.status.value).observe(max(seconds, 0))

    async def render(self, store: StateStore) -> bytes:
        counts = await store.count_executions()
        for status in Status:
            self.executions.labels(status.value).set(counts.get(status.value, 0))
        self.queue_depth.set(counts.get(Status.PENDING.value, 0))
        return generate_latest(self.registry)
