"""Stored schedules (State Manager associations): a document, its parameters and targets,
and a cron or rate expression with the time it fires next.

Every daemon on a database runs a scheduler over the same rows. A firing happens once
because of two writes, both idempotent: the execution is created with a ClientToken
named after the schedule and the scheduled time (a second daemon creating it gets the
first one's execution back), and ``advance`` moves ``next_run`` on only if it still
holds the time that fired (compare-and-set). A daemon that dies between the two leaves
the schedule due; whoever looks next creates nothing new and moves it on.

``ScheduleRepository`` is the protocol; ``MemorySchedules`` here and ``SqlSchedules``
(``sql_schedules``) implement it, carried by the stores as ``store.schedules``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from runbook_engine.errors import ScheduleMissing, StoreError


@dataclass(frozen=True)
class ScheduleRecord:
    association_id: str
    document_name: str
    schedule_expression: str
    created_by: str
    created: datetime
    next_run: datetime | None  # None: the expression has no further time
    association_name: str | None = None
    document_version: str | None = None
    parameters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    targets: Sequence[Mapping[str, Any]] = ()
    automation_target_parameter_name: str | None = None
    apply_only_at_cron_interval: bool = False
    max_concurrency: str | None = None
    max_errors: str | None = None
    last_run: datetime | None = None
    last_execution_id: str | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Firing:
    """What one firing left: moves ``next_run`` on from ``fired_at``."""

    fired_at: datetime
    next_run: datetime | None
    execution_id: str | None
    error: str | None = None


class ScheduleRepository(Protocol):
    async def create(self, record: ScheduleRecord) -> None:
        """Store a new schedule; ``StoreError`` if its id exists."""

    async def get(self, association_id: str) -> ScheduleRecord:
        """``ScheduleMissing`` if there is none."""

    async def list_all(self) -> list[ScheduleRecord]:
        """Every schedule, oldest first (then by id)."""

    async def delete(self, association_id: str) -> None:
        """``ScheduleMissing`` if there is none."""

    async def due(self, now: datetime, limit: int = 100) -> list[ScheduleRecord]:
        """Schedules whose ``next_run`` is at or before ``now``, earliest first."""

    async def advance(self, association_id: str, firing: Firing) -> bool:
        """Record a firing if ``next_run`` still equals ``firing.fired_at``; False when
        another daemon recorded it first (or the schedule was deleted)."""


class MemorySchedules:
    def __init__(self) -> None:
        self._schedules: dict[str, ScheduleRecord] = {}

    async def create(self, record: ScheduleRecord) -> None:
        if record.association_id in self._schedules:
            raise StoreError(f"schedule {record.association_id} already exists")
        self._schedules[record.association_id] = record

    async def get(self, association_id: str) -> ScheduleRecord:
        try:
            return self._schedules[association_id]
        except KeyError:
            raise ScheduleMissing(f"Association {association_id} does not exist") from None

    async def list_all(self) -> list[ScheduleRecord]:
        return sorted(self._schedules.values(), key=lambda s: (s.created, s.association_id))

    async def delete(self, association_id: str) -> None:
        await self.get(association_id)
        del self._schedules[association_id]

    async def due(self, now: datetime, limit: int = 100) -> list[ScheduleRecord]:
        due = [s for s in self._schedules.values() if s.next_run is not None and s.next_run <= now]
        return sorted(due, key=lambda s: (s.next_run, s.association_id))[:limit]

    async def advance(self, association_id: str, firing: Firing) -> bool:
        record = self._schedules.get(association_id)
        if record is None or record.next_run != firing.fired_at:
            return False
        self._schedules[association_id] = replace(
            record,
            next_run=firing.next_run,
            last_run=firing.fired_at,
            last_execution_id=firing.execution_id or record.last_execution_id,
            last_error=firing.error,
        )
        return True
