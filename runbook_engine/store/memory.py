"""An in-memory state store for tests: same contract as the SQL store, nothing persisted.

Records are kept as encoded rows (runbook_engine.store.codec) and decoded on every
read, so the fake refuses what the database refuses and returns values of the same
shape (UTC datetimes, dicts and tuples fresh from JSON). All methods run without
awaiting in between, which makes each one atomic within an event loop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from runbook_engine.errors import ExecutionNotFound, IdempotencyMismatch, StaleRecord, StoreError
from runbook_engine.records import ExecutionRecord, SignalRecord, StepRecord
from runbook_engine.status import TERMINAL
from runbook_engine.store import RUNNABLE_STATUSES, ClientToken, ExecutionQuery
from runbook_engine.store.codec import (
    LEASE_COLUMNS,
    Row,
    execution_from_row,
    execution_to_row,
    instant,
    signal_from_row,
    signal_to_row,
    step_from_row,
    step_rows_of,
    step_to_row,
)
from runbook_engine.store.commands import CommandRepository, MemoryCommands
from runbook_engine.store.documents import DocumentRepository, MemoryDocuments
from runbook_engine.store.schedules import MemorySchedules, ScheduleRepository


class MemoryStore:
    def __init__(self) -> None:
        self._executions: dict[str, Row] = {}  # insertion order is creation order
        self._steps: dict[str, Row] = {}
        self._signals: dict[int, Row] = {}
        self._tokens: dict[str, tuple[str, str]] = {}  # token -> (execution id, fingerprint)
        self._tags: dict[str, dict[str, str]] = {}  # execution id -> tags
        self._next_signal_id = 1
        self._closed = False
        self.documents: DocumentRepository = MemoryDocuments()
        self.schedules: ScheduleRepository = MemorySchedules()
        self.commands: CommandRepository = MemoryCommands()

    def _row(self, execution_id: str) -> Row:
        if self._closed:
            raise StoreError("the state store is closed")
        try:
            return self._executions[execution_id]
        except KeyError:
            raise ExecutionNotFound(f"execution {execution_id} does not exist") from None

    async def create_execution(
        self,
        record: ExecutionRecord,
        *,
        client_token: ClientToken | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        row = execution_to_row(record)
        if record.execution_id in self._executions:
            raise StoreError(f"execution {record.execution_id} already exists")
        if client_token is not None:
            token = client_token.token.lower()
            held = self._tokens.get(token)
            if held is not None and held[0] in self._executions:
                if held[1] != client_token.fingerprint:
                    raise IdempotencyMismatch(
                        f"ClientToken {client_token.token} was used with different arguments"
                    )
                return held[0]
            self._tokens[token] = (record.execution_id, client_token.fingerprint)
        self._executions[record.execution_id] = row
        if tags:
            self._tags[record.execution_id] = dict(tags)
        return record.execution_id

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        return execution_from_row(self._row(execution_id))

    def _checked_update(self, record: ExecutionRecord, expected_version: int) -> Row:
        """The row ``record`` would become, after the compare-and-set check."""
        row = execution_to_row(record)
        stored = self._row(record.execution_id)
        if stored["version"] != expected_version:
            raise StaleRecord(
                f"execution {record.execution_id} is at version {stored['version']},"
                f" not {expected_version}"
            )
        for column in (*LEASE_COLUMNS, "document_content"):  # the text run never changes
            row[column] = stored[column]
        row["version"] = expected_version + 1
        return row

    async def get_execution_and_steps(
        self, execution_id: str
    ) -> tuple[ExecutionRecord, list[StepRecord]]:
        return await self.get_execution(execution_id), await self.get_steps(execution_id)

    async def update_execution(
        self, record: ExecutionRecord, *, expected_version: int
    ) -> ExecutionRecord:
        row = self._checked_update(record, expected_version)
        self._executions[record.execution_id] = row
        return execution_from_row(row)

    async def list_executions(
        self,
        *,
        status: str | None = None,
        parent_execution_id: str | None = None,
        document_name_prefix: str | None = None,
        limit: int = 50,
        offset: int = 0,
        query: ExecutionQuery | None = None,
    ) -> list[ExecutionRecord]:
        if self._closed:
            raise StoreError("the state store is closed")
        rows = [
            row
            for row in reversed(self._executions.values())
            if (status is None or row["status"] == status)
            and (parent_execution_id is None or row["parent_execution_id"] == parent_execution_id)
            and (
                document_name_prefix is None
                or row["document_name"].startswith(document_name_prefix)
            )
            and (query is None or self._matches(row, query))
        ]
        return [execution_from_row(row) for row in rows[offset : offset + limit]]

    def _matches(self, row: Row, query: ExecutionQuery) -> bool:
        for column, values in (
            ("status", query.statuses),
            ("execution_id", query.execution_ids),
            ("parent_execution_id", query.parent_execution_ids),
            ("current_action", query.current_actions),
        ):
            if values and row[column] not in values:
                return False
        prefixes = query.document_name_prefixes
        if prefixes and not any(row["document_name"].startswith(p) for p in prefixes):
            return False
        tags = self._tags.get(row["execution_id"], {})
        if query.tag_keys and not any(key in tags for key in query.tag_keys):
            return False
        started = row["start_time"]
        if query.started_before is not None and not (started and started < query.started_before):
            return False
        return query.started_after is None or bool(started and started > query.started_after)

    async def count_executions(self) -> Mapping[str, int]:
        if self._closed:
            raise StoreError("the state store is closed")
        return dict(Counter(row["status"] for row in self._executions.values()))

    async def put_step(self, step: StepRecord) -> None:
        row = step_to_row(step)
        self._row(step.execution_id)
        self._steps[step.step_execution_id] = row

    async def get_steps(self, execution_id: str) -> list[StepRecord]:
        rows = [row for row in self._steps.values() if row["execution_id"] == execution_id]
        rows.sort(key=lambda row: (row["sequence"], row["step_execution_id"]))
        return [step_from_row(row) for row in rows]

    async def record_steps_and_execution(
        self,
        steps: Sequence[StepRecord],
        execution: ExecutionRecord,
        expected_version: int,
        consume: Sequence[int] = (),
    ) -> ExecutionRecord:
        step_rows = step_rows_of(steps, execution)
        row = self._checked_update(execution, expected_version)
        for step_row in step_rows:
            self._steps[step_row["step_execution_id"]] = step_row
        self._executions[execution.execution_id] = row
        await self.consume_signals(consume)
        return execution_from_row(row)

    async def add_signal(self, signal: SignalRecord) -> SignalRecord:
        row = signal_to_row(signal)
        self._row(signal.execution_id)
        row["signal_id"] = self._next_signal_id
        self._next_signal_id += 1
        self._signals[row["signal_id"]] = row
        return signal_from_row(row)

    async def add_signal_and_wake(
        self,
        signal: SignalRecord,
        now: datetime | None = None,
        *,
        owner: str | None = None,
        lease_seconds: float = 0.0,
    ) -> ExecutionRecord | None:
        await self.add_signal(signal)
        now = instant(now)
        row = self._executions[signal.execution_id]
        if row["status"] in TERMINAL:
            return None
        due = row["wake_at"] is not None and row["wake_at"] <= now
        if owner is not None and _claimable(row, owner, now):
            if not due:
                row["wake_at"] = now
            return self._take(row, owner, lease_seconds, now)
        if not due:
            row["wake_at"] = now
            row["version"] += 1
        return None

    async def get_signals(
        self, execution_id: str, *, unconsumed_only: bool = True
    ) -> list[SignalRecord]:
        return [
            signal_from_row(row)
            for row in self._signals.values()
            if row["execution_id"] == execution_id and not (unconsumed_only and row["consumed"])
        ]

    async def consume_signals(self, signal_ids: Iterable[int]) -> None:
        for signal_id in signal_ids:
            if signal_id in self._signals:
                self._signals[signal_id]["consumed"] = True

    def _take(self, row: Row, owner: str, lease_seconds: float, now: datetime) -> ExecutionRecord:
        row["owner"] = owner
        row["lease_expires"] = now + timedelta(seconds=lease_seconds)
        row["version"] += 1
        return execution_from_row(row)

    async def claim(
        self,
        execution_id: str,
        owner: str,
        lease_seconds: float,
        now: datetime | None = None,
    ) -> ExecutionRecord | None:
        now = instant(now)
        row = self._row(execution_id)
        if not _claimable(row, owner, now):
            return None
        return self._take(row, owner, lease_seconds, now)

    async def renew(
        self,
        execution_id: str,
        owner: str,
        lease_seconds: float,
        now: datetime | None = None,
    ) -> bool:
        now = instant(now)
        row = self._executions.get(execution_id)
        if row is None or row["owner"] != owner:
            return False
        row["lease_expires"] = now + timedelta(seconds=lease_seconds)
        return True

    async def release(self, execution_id: str, owner: str) -> None:
        row = self._executions.get(execution_id)
        if row is not None and row["owner"] == owner:
            row["owner"] = None
            row["lease_expires"] = None

    async def claim_next(
        self,
        owner: str,
        lease_seconds: float,
        now: datetime | None = None,
        statuses: Iterable[str] = RUNNABLE_STATUSES,
    ) -> ExecutionRecord | None:
        now = instant(now)
        wanted = {str(status) for status in statuses}
        free = [row for row in self._executions.values() if _claimable(row, None, now)]
        runnable = [
            row
            for row in free
            if row["status"] in wanted and (row["wake_at"] is None or row["wake_at"] <= now)
        ]
        if runnable:
            return self._take(runnable[0], owner, lease_seconds, now)
        overdue = [
            row
            for row in free
            if row["wake_at"] is not None
            and row["wake_at"] <= now
            and row["status"] not in TERMINAL
        ]
        if overdue:
            row = min(overdue, key=lambda row: row["wake_at"])
            return self._take(row, owner, lease_seconds, now)
        return None

    async def close(self) -> None:
        self._closed = True


def _claimable(row: Row, owner: str | None, now: datetime) -> bool:
    """Nobody holds a live lease on it (or ``owner`` itself does)."""
    if row["owner"] is None or row["owner"] == owner:
        return True
    expires = row["lease_expires"]
    return expires is not None and expires < now
