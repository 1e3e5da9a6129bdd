"""What the execution page shows, worked out from the records before any template runs:
the step timeline (one row per step execution: retries, loop iterations and onCancel
steps each get theirs), durations, and the steps that wait for an approval."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.status import SignalType, Status

BAR_SCALE = 1000  # the timeline bars are drawn in an SVG this wide


@dataclass(frozen=True)
class TimelineRow:
    record: StepRecord
    anchor: str | None  # "step-NAME" on the first record of each step name
    duration: str
    bar: tuple[float, float] | None  # x and width of the bar, out of BAR_SCALE
    where: str  # "loop L, iteration 2", "onCancel", or ""


def timeline(
    execution: ExecutionRecord, steps: Sequence[StepRecord], now: datetime
) -> list[TimelineRow]:
    starts = [s.start_time for s in steps if s.start_time] + (
        [execution.start_time] if execution.start_time else []
    )
    begin = min(starts, default=None)
    ends = [s.end_time for s in steps if s.end_time]
    finish = execution.end_time or (
        now if not execution.status.terminal else max(ends, default=now)
    )
    span = (finish - begin).total_seconds() if begin else 0.0
    rows: list[TimelineRow] = []
    named: set[str] = set()
    for record in steps:
        anchor = None
        if record.step_name not in named:
            named.add(record.step_name)
            anchor = f"step-{record.step_name}"
        end = record.end_time or (None if record.status.terminal else now)
        seconds = (end - record.start_time).total_seconds() if end and record.start_time else None
        bar = None
        if begin is not None and record.start_time and end and span > 0:
            x = (record.start_time - begin).total_seconds() / span * BAR_SCALE
            width = max(seconds or 0.0, 0.0) / span * BAR_SCALE
            bar = (round(min(max(x, 0.0), BAR_SCALE - 2), 1), round(max(width, 2.0), 1))
        rows.append(TimelineRow(record, anchor, duration(seconds), bar, _where(record)))
    return rows


def _where(record: StepRecord) -> str:
    parts = []
    if record.loop is not None:
        parts.append(f"loop {record.loop.step_name}, iteration {record.loop.iteration}")
    if record.cancel_run:
        parts.append("onCancel")
    if record.target:
        parts.append(f"target {record.target}")
    return "; ".join(parts)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def when(moment: datetime | None) -> str:
    """UTC, to the second, as operators read logs."""
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def pretty(value: Any) -> str:
    """JSON with indentation; a plain string stays as it is."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def latest_statuses(steps: Sequence[StepRecord]) -> dict[str, str]:
    """Each step's status in its most recent step execution (for colouring the graph)."""
    return {record.step_name: record.status.value for record in steps}


def waiting_approvals(steps: Sequence[StepRecord]) -> list[StepRecord]:
    return [
        record
        for record in steps
        if not record.status.terminal and SignalType.APPROVE.value in record.waiting_for
    ]


def approvers(record: StepRecord) -> list[str]:
    """The names a waiting approval step accepts, as its rendered inputs list them."""
    plain = record.inputs.get("Approvers") or []
    names = [plain] if isinstance(plain, str) else [str(n) for n in plain]
    enhanced = record.inputs.get("EnhancedApprovals")
    if isinstance(enhanced, dict):
        for entry in enhanced.get("Approvers") or []:
            if isinstance(entry, dict) and entry.get("approver"):
                names.append(f"{entry['approver']} ({entry.get('type') or 'IamUser'})")
    return names


LIVE_STATUSES = frozenset({Status.PENDING, Status.IN_PROGRESS, Status.CANCELLING})
