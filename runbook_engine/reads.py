"""Steps that only read (``plugin.only_reads``: an ``aws:executeAwsApi`` Describe call):
what a :class:`Driver` does differently with them.

Running such a step changes nothing outside the execution, so its write-ahead record
need not be committed before the call: the attempt starts, and once its call is on its
worker thread (``in_flight``) the record commits while the call runs, off the critical
path. A crash before that commit loses only a read, which runs again on resume
(``waits.continue_interrupted``). The commit also carries the held final record of the
step before; that step must have only read too, or its result would be risked for the
length of a call: otherwise the record is written first, as for any step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from runbook_engine.in_flight import listening
from runbook_engine.model import Step
from runbook_engine.plugin import Action, only_reads
from runbook_engine.records import StepRecord

if TYPE_CHECKING:
    from runbook_engine.scheduler import Driver


def held_only_reads(driver: Driver) -> bool:
    """Whether the driver's held record, if any, is of a step that only read."""
    held = driver.held
    if held is None:
        return True
    action = driver.engine.registry.get(held.action)
    return action is not None and only_reads(action, held.inputs)


async def attempt_while_writing_ahead(
    driver: Driver, step: Step, action: Action, record: StepRecord
) -> StepRecord:
    """The first attempt of a step that only reads, its write-ahead record (``record``)
    committed while the attempt's call runs. The outcome is taken once the commit is
    done; if the commit fails (the lease was lost, the database is gone), the attempt is
    cancelled and the error raised."""
    outcome: StepRecord | None = None
    in_flight = anyio.Event()  # the call is on its thread, or the attempt is over

    async def attempt() -> None:
        nonlocal outcome
        try:
            outcome = await driver.invoke(step, action, record)
        finally:
            in_flight.set()

    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        with listening(in_flight.set):
            group.start_soon(attempt)
        await in_flight.wait()
        try:
            await driver.save(record, **driver.current(step, record))  # write-ahead
        except Exception as exc:  # raised below: not wrapped in an ExceptionGroup
            failure = exc
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    assert outcome is not None
    return outcome
