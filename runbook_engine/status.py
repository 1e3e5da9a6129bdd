"""Execution and step statuses, spelled as SSM spells them, and which are terminal."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    WAITING = "Waiting"
    SUCCESS = "Success"
    TIMED_OUT = "TimedOut"
    CANCELLING = "Cancelling"
    CANCELLED = "Cancelled"
    FAILED = "Failed"
    EXITED = "Exited"  # aws:loop left early by an inner step

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {Status.SUCCESS, Status.TIMED_OUT, Status.CANCELLED, Status.FAILED, Status.EXITED}
)
FAILURES = frozenset({Status.FAILED, Status.TIMED_OUT, Status.CANCELLED})


class Mode(StrEnum):
    AUTO = "Auto"
    INTERACTIVE = "Interactive"


class SignalType(StrEnum):
    APPROVE = "Approve"
    REJECT = "Reject"
    START_STEP = "StartStep"
    STOP_STEP = "StopStep"
    RESUME = "Resume"


class StopType(StrEnum):
    CANCEL = "Cancel"
    COMPLETE = "Complete"
