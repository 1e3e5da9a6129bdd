"""The state store: where executions, step executions and signals persist.

One small protocol, three implementations that pass one contract suite
(tests/test_store_contract.py): ``MemoryStore`` for fast tests, and ``SqlStore`` for
SQLite (the default, a file under the XDG state directory) and PostgreSQL (several
daemons sharing one database). Rows become frozen records (runbook_engine.records) at
this boundary and never leak upwards.

Concurrency rules every implementation keeps:

- ``version`` is a compare-and-set counter. ``update_execution`` and
  ``record_steps_and_execution`` write only if the stored version is the expected one,
  and raise ``StaleRecord`` otherwise; ``claim`` and ``claim_next`` bump it too, so a
  process whose lease was taken over finds out on its next write.
- ``owner`` and ``lease_expires`` belong to ``claim``/``renew``/``release`` (and to
  ``create_execution``, which may create an execution already owned). The other
  writes leave them as stored and return the stored values, so renewing a lease
  between two writes never makes the record stale nor shortens the lease.
- Every write is committed before its method returns.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runbook_engine.records import ExecutionRecord, SignalRecord, StepRecord
from runbook_engine.status import Status

if TYPE_CHECKING:
    from runbook_engine.store.commands import CommandRepository
    from runbook_engine.store.documents import DocumentRepository
    from runbook_engine.store.schedules import ScheduleRepository

__all__ = [
    "RUNNABLE_STATUSES",
    "ClientToken",
    "ExecutionQuery",
    "StateStore",
    "default_state_path",
    "open_store",
]

# What a worker picks up without being woken: work in flight or not yet started.
RUNNABLE_STATUSES: tuple[Status, ...] = (Status.PENDING, Status.IN_PROGRESS, Status.CANCELLING)


@dataclass(frozen=True)
class ClientToken:
    """An idempotency token of a start request, and a digest of the request's arguments.

    Tokens compare without regard to case (they are UUIDs). A token is never reused: a
    retry with the same arguments gets the first execution back, different arguments
    are refused with ``IdempotencyMismatch``.
    """

    token: str
    fingerprint: str


@dataclass(frozen=True)
class ExecutionQuery:
    """Filters of DescribeAutomationExecutions: values of one field are OR-ed, fields AND-ed.

    An empty tuple does not filter. ``tag_keys`` match executions that carry a tag with
    one of those keys; ``started_before``/``started_after`` compare ``start_time``.
    """

    statuses: tuple[str, ...] = ()
    execution_ids: tuple[str, ...] = ()
    parent_execution_ids: tuple[str, ...] = ()
    document_name_prefixes: tuple[str, ...] = ()
    current_actions: tuple[str, ...] = ()
    tag_keys: tuple[str, ...] = ()
    started_before: datetime | None = None
    started_after: datetime | None = None


class StateStore(Protocol):
    # Stored documents (CreateDocument) and schedules (CreateAssociation), on the same
    # database and connections as the executions.
    documents: DocumentRepository
    schedules: ScheduleRepository
    commands: CommandRepository  # Run Command (SendCommand) and its invocations

    async def create_execution(
        self,
        record: ExecutionRecord,
        *,
        client_token: ClientToken | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Insert a new execution (and its tags); ``StoreError`` if its id exists already.

        Returns the id of the execution the caller should report: ``record``'s, or, when
        ``client_token`` was used before with the same fingerprint, the execution created
        then (nothing new is written). A used token with another fingerprint raises
        ``IdempotencyMismatch``. Token and execution are written in one transaction.
        """

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        """The stored execution; ``ExecutionNotFound`` if there is none."""

    async def get_execution_and_steps(
        self, execution_id: str
    ) -> tuple[ExecutionRecord, list[StepRecord]]:
        """``get_execution`` and ``get_steps`` in one call (on PostgreSQL one hop to a
        database thread and one pooled connection instead of two): what a signal is
        checked against. The two reads are not one snapshot; the steps may be newer."""

    async def update_execution(
        self, record: ExecutionRecord, *, expected_version: int
    ) -> ExecutionRecord:
        """Write ``record`` if the stored version is ``expected_version``.

        Returns what is now stored (version ``expected_version + 1``); raises
        ``StaleRecord`` if another write came first, ``ExecutionNotFound`` if the
        execution does not exist. The lease columns and ``document_content`` are not
        written: claims own the first, and the text an execution runs is fixed when it
        is created.
        """

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
        """Executions newest first (by creation), filtered by every given criterion."""

    async def count_executions(self) -> Mapping[str, int]:
        """How many executions there are of each status (statuses with none left out)."""

    async def put_step(self, step: StepRecord) -> None:
        """Insert or replace the step execution ``step.step_execution_id``."""

    async def get_steps(self, execution_id: str) -> list[StepRecord]:
        """Step executions ordered by ``sequence`` (empty for an unknown execution)."""

    async def record_steps_and_execution(
        self,
        steps: Sequence[StepRecord],
        execution: ExecutionRecord,
        expected_version: int,
        consume: Sequence[int] = (),
    ) -> ExecutionRecord:
        """``put_step`` of each of ``steps`` (distinct step executions of ``execution``),
        ``update_execution`` and ``consume_signals(consume)``, in one transaction: all or
        nothing. A step transition is one such write: the record of the step that just
        ended with the write-ahead record of the next one; a waiting step's result with
        the signals it acted on (an approval), so that a crash cannot leave the step
        waiting with its signal consumed."""

    async def add_signal(self, signal: SignalRecord) -> SignalRecord:
        """Store a signal; returns it with the ``signal_id`` the store assigned."""

    async def add_signal_and_wake(
        self,
        signal: SignalRecord,
        now: datetime | None = None,
        *,
        owner: str | None = None,
        lease_seconds: float = 0.0,
    ) -> ExecutionRecord | None:
        """``add_signal`` and make the execution due at ``now`` (``wake_at``, unless it is
        due already or terminal), in one transaction; with ``owner``, also ``claim`` it for
        ``owner`` if nobody else holds a live lease (the lease is left alone otherwise).

        Returns the claimed record (version bumped), or None: no ``owner`` given, another
        holds the lease, or the execution is terminal. ``ExecutionNotFound`` if the
        execution does not exist. A signal's wake-up and the hand-off's claim were three
        transactions; a signal is what a parked execution waits for, so this is its hot path.
        """

    async def get_signals(
        self, execution_id: str, *, unconsumed_only: bool = True
    ) -> list[SignalRecord]:
        """Signals sent to an execution, oldest first."""

    async def consume_signals(self, signal_ids: Iterable[int]) -> None:
        """Mark signals consumed so that no later run acts on them again."""

    async def claim(
        self,
        execution_id: str,
        owner: str,
        lease_seconds: float,
        now: datetime | None = None,
    ) -> ExecutionRecord | None:
        """Take the execution's lease if nobody holds a live one (or ``owner`` does).

        Atomic: of several processes claiming at once exactly one gets the record
        (with its version bumped); the others get None. ``ExecutionNotFound`` if the
        execution does not exist.
        """

    async def renew(
        self,
        execution_id: str,
        owner: str,
        lease_seconds: float,
        now: datetime | None = None,
    ) -> bool:
        """Extend ``owner``'s lease; False if ``owner`` does not hold it any more."""

    async def release(self, execution_id: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it; otherwise do nothing."""

    async def claim_next(
        self,
        owner: str,
        lease_seconds: float,
        now: datetime | None = None,
        statuses: Iterable[str] = RUNNABLE_STATUSES,
    ) -> ExecutionRecord | None:
        """Claim one due execution that nobody holds a live lease on, or return None.

        Due: its status is in ``statuses`` and it is not parked until later
        (``wake_at`` empty or past), or it is not terminal and its ``wake_at`` has
        passed (a timer fired, or a signal woke it by setting ``wake_at``).
        Runnable executions come first, oldest first; then the longest overdue.
        """

    async def close(self) -> None:
        """Release connections. The store cannot be used afterwards."""


def default_state_path() -> Path:
    """``$XDG_STATE_HOME/runbook/state.db``, XDG's default being ``~/.local/state``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "runbook" / "state.db"


def open_store(url: str | None = None) -> StateStore:
    """Open (and create or migrate) the store a URL names.

    ``None`` is SQLite at ``default_state_path()`` (directories are created);
    ``sqlite:///path``, ``postgresql+psycopg://user:pw@host:port/db`` and ``memory://``
    (nothing persisted) are the other forms.
    """
    if url == "memory://":
        from runbook_engine.store.memory import MemoryStore

        return MemoryStore()
    if url is None:
        path = default_state_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    from runbook_engine.store.sql import SqlStore

    return SqlStore.open(url)
