"""The daemon's scheduler task: start the executions of due schedules, once per firing
across every daemon on the database.

Each daemon runs one ``ScheduleRunner``; every ``poll_seconds`` it reads the due
schedules (an indexed ``next_run <= now``) and fires each:

1. the execution is created with the ClientToken ``association-<id>-<scheduled time>``:
   a daemon racing on the same firing gets the first daemon's execution back instead
   of a second one (the token's primary key decides, in the same transaction as the
   execution);
2. ``next_run`` moves on with a compare-and-set on the time that fired.

Both steps are idempotent, so a daemon that dies between them leaves the firing for the
next look, which creates nothing new. A firing that cannot start its runbook (document
deleted, parameters no longer valid) is recorded on the schedule (``last_error``) and
the schedule goes on. Missed firings fire once (``runbook_engine.schedules``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import anyio

from runbook_engine.daemon import logs
from runbook_engine.engine import Engine, StartOptions
from runbook_engine.errors import RunbookError, StoreError
from runbook_engine.schedule_expressions import parse_schedule
from runbook_engine.schedules import ASSOCIATION_TAG
from runbook_engine.store import ClientToken
from runbook_engine.store.schedules import Firing, ScheduleRecord


def firing_token(record: ScheduleRecord, fired_at: datetime) -> str:
    return f"association-{record.association_id}-{fired_at.isoformat()}"


class ScheduleRunner:
    def __init__(
        self, engine: Engine, notify: Callable[[], None], *, poll_seconds: float = 1.0
    ) -> None:
        self.engine = engine
        self.notify = notify
        self.poll_seconds = poll_seconds

    async def run(self) -> None:
        while True:
            try:
                await self.tick(self.engine.now())
            except StoreError:  # the database is out of reach: look again later
                logging.getLogger("runbook_engine.daemon").exception("schedules: store error")
            await anyio.sleep(self.poll_seconds)

    async def tick(self, now: datetime) -> list[str]:
        """Fire every schedule due at ``now``; the ids of the executions this call
        recorded (a firing another daemon recorded first is not counted here)."""
        started: list[str] = []
        for record in await self.engine.store.schedules.due(now):
            firing = await self.fire(record, now)
            recorded = await self.engine.store.schedules.advance(record.association_id, firing)
            if recorded:
                logs.event(
                    "schedule_fired",
                    association_id=record.association_id,
                    scheduled_time=firing.fired_at,
                    execution_id=firing.execution_id,
                    next_run=firing.next_run,
                    error=firing.error,
                )
                if firing.execution_id is not None:
                    started.append(firing.execution_id)
        if started:
            self.notify()
        return started

    async def fire(self, record: ScheduleRecord, now: datetime) -> Firing:
        """Start the execution of the firing due in ``record`` (idempotent) and say how
        to record it; ``tick`` records it."""
        assert record.next_run is not None
        fired_at = record.next_run
        try:
            next_run = parse_schedule(record.schedule_expression, allow_seconds=True).next_after(
                fired_at, now
            )
        except RunbookError as exc:  # stored before a rule changed: stop, and say why
            return Firing(fired_at, None, None, exc.message)
        token = firing_token(record, fired_at)
        try:
            document = await self.engine.find_by_name(record.document_name, record.document_version)
            execution_id = await self.engine.start(
                document,
                {k: list(v) for k, v in record.parameters.items()},
                principal=record.created_by,
                options=StartOptions(
                    client_token=ClientToken(token, token),
                    tags={ASSOCIATION_TAG: record.association_id},
                    max_concurrency=record.max_concurrency,
                    max_errors=record.max_errors,
                ),
            )
        except StoreError:
            raise
        except RunbookError as exc:
            return Firing(fired_at, next_run, None, f"{exc.code}: {exc.message}")
        return Firing(fired_at, next_run, execution_id)
