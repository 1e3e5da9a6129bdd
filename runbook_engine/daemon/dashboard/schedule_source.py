"""The dashboard's view of the schedules in the state store (CreateAssociation,
``runbook schedule create``): listed as the page shows them, and deleted by id.

Deleting goes to the same ``ScheduleRepository.delete`` as DeleteAssociation and
``runbook schedule delete``; the executions a schedule started are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runbook_engine.daemon.dashboard.providers import ScheduleEntry
from runbook_engine.store.schedules import ScheduleRecord, ScheduleRepository


class StoreScheduleSource:
    """A ``ScheduleSource`` and ``ScheduleDeleter`` over a store's schedules."""

    def __init__(self, schedules: Callable[[], ScheduleRepository]) -> None:
        self._schedules = schedules  # the engine's store exists only once it is entered

    async def list_schedules(self) -> Sequence[ScheduleEntry]:
        entries = [schedule_entry(r) for r in await self._schedules().list_all()]
        return sorted(entries, key=lambda entry: (entry.name, entry.association_id or ""))

    async def delete_schedule(self, association_id: str) -> None:
        await self._schedules().delete(association_id)


def schedule_entry(record: ScheduleRecord) -> ScheduleEntry:
    return ScheduleEntry(
        name=record.association_name or record.association_id,
        document_name=record.document_name,
        expression=record.schedule_expression,
        enabled=record.next_run is not None,
        next_run=record.next_run,
        last_run=record.last_run,
        last_execution_id=record.last_execution_id,
        parameters={k: list(v) for k, v in record.parameters.items()},
        association_id=record.association_id,
        targets=tuple(target_text(target) for target in record.targets),
        last_error=record.last_error,
    )


def target_text(target: Mapping[str, Any]) -> str:
    """One target as State Manager writes it: ``Key=value1,value2``."""
    values = target.get("Values") or ()
    return f"{target.get('Key', '?')}={','.join(str(v) for v in values)}"
