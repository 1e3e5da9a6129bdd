"""Signals and stop requests: what a client asks of an execution some engine drives.

Each is a durable write first (a signal row, a stop request on the execution) and then a
wake-up: the driver of this process, if any, looks again at once, and a parked execution
becomes due, so that whichever worker claims it next sees the request.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runbook_engine.errors import InvalidSignal, InvalidStatusUpdate, StaleRecord
from runbook_engine.records import ExecutionRecord, SignalRecord, StepRecord
from runbook_engine.signals import check_signal
from runbook_engine.status import Mode, SignalType, Status, StopType
from runbook_engine.store import StateStore

if TYPE_CHECKING:
    from runbook_engine.engine import Engine


async def make_due(
    store: StateStore,
    execution_id: str,
    now: Callable[[], datetime],
    known: ExecutionRecord | None = None,
) -> None:
    """Make a parked execution due now, so that a worker (``claim_next``) picks it up:
    after a signal, a stop request, or the end of a child execution it waits for.
    ``known``: the record as just read, tried first (read again if it is stale)."""
    while True:
        execution = known or await store.get_execution(execution_id)
        known = None
        moment = now()
        if execution.status.terminal or (
            execution.wake_at is not None and execution.wake_at <= moment
        ):
            return
        try:
            await store.update_execution(
                replace(execution, wake_at=moment), expected_version=execution.version
            )
            return
        except StaleRecord:
            continue


def signal_kind(signal_type: SignalType | str) -> SignalType:
    """The signal type of a request; ``Deny`` is the API's other name for ``Reject``."""
    try:
        return SignalType(signal_type)
    except ValueError:
        if str(signal_type) == "Deny":
            return SignalType.REJECT
        raise InvalidSignal(f"Unknown signal type {signal_type}") from None


@dataclass(frozen=True)
class Claimed:
    """An execution a signal woke and claimed for this engine (``send_signal(claim=True)``).

    ``steps``: its step records as read to check the signal, when nothing wrote the
    execution between that read and the claim (the version moved by the claim alone),
    so that the drive need not read them again; None otherwise.
    """

    execution: ExecutionRecord
    steps: list[StepRecord] | None


async def send_signal(
    engine: Engine,
    execution_id: str,
    signal_type: SignalType | str,
    step_name: str | None,
    payload: Mapping[str, Sequence[str]] | None,
    principal: str | None,
    execution: ExecutionRecord | None = None,
    *,
    claim: bool = False,
    steps: Sequence[StepRecord] | None = None,
) -> Claimed | None:
    """Check a signal against the execution's state and record it (``Engine.signal``).

    The signal, the wake-up and (``claim``) the lease for this engine's owner are one
    store call (``add_signal_and_wake``). Returns what was claimed, if anything: the
    caller then drives it (``Engine.drive(handed=...)``) or releases it. ``execution``
    and ``steps``: as the caller has just read them (``get_execution_and_steps``).
    """
    store = engine.store
    if execution is None or execution.execution_id != execution_id:
        execution = await store.get_execution(execution_id)
    runbook = engine.runbook_of(execution)
    if steps is None:
        steps = await store.get_steps(execution_id)
    body: dict[str, list[str]] = {k: list(v) for k, v in (payload or {}).items()}
    if step_name:
        body.setdefault("StepName", [step_name])
    who = principal or engine.settings.principal or getpass.getuser()
    kind = signal_kind(signal_type)
    check_signal(runbook, execution, steps, kind, body, who, engine.registry)
    signal = SignalRecord(None, execution_id, kind.value, body, who, engine.now())
    owner = engine.owner if claim else None
    claimed = await store.add_signal_and_wake(
        signal, engine.now(), owner=owner, lease_seconds=engine.settings.lease_seconds
    )
    engine.nudge(execution_id)
    if claimed is None:
        return None
    unchanged = claimed.version == execution.version + 1
    return Claimed(claimed, list(steps) if unchanged else None)


async def request_stop(engine: Engine, execution_id: str, kind: StopType) -> None:
    """Record a stop request (``Engine.stop``); cancelling a parent cancels its running
    children."""
    store = engine.store
    while True:
        execution = await store.get_execution(execution_id)
        if execution.status.terminal:
            raise InvalidStatusUpdate(
                f"Execution {execution_id} is already {execution.status.value}"
            )
        if kind == StopType.COMPLETE and execution.mode != Mode.INTERACTIVE:
            raise InvalidStatusUpdate("Type Complete applies to Interactive executions only")
        # wake_at: due now, so that a worker picks a parked execution up (see make_due).
        changes: dict[str, Any] = {"stop_requested": kind.value, "wake_at": engine.now()}
        if kind == StopType.CANCEL and execution.status != Status.PENDING:
            changes["status"] = Status.CANCELLING
        try:
            await store.update_execution(
                replace(execution, **changes), expected_version=execution.version
            )
            break
        except StaleRecord:
            continue
    engine.nudge(execution_id)
    if kind == StopType.CANCEL:
        for child in await store.list_executions(parent_execution_id=execution_id):
            if not child.status.terminal:
                try:
                    await request_stop(engine, child.execution_id, StopType.CANCEL)
                except InvalidStatusUpdate:
                    pass
