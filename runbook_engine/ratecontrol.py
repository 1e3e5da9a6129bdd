"""Rate control: how many targets run at once and when to stop launching (pure).

The same arithmetic serves every fan-out (``aws:runCommand`` over instances,
``aws:runShellScript`` over instances, rate-controlled automations):

* ``MaxConcurrency``: a count, or a percentage of the N targets turned into
  ``max(1, floor(N * p / 100))``;
* ``MaxErrors``: a count, or ``floor(N * p / 100)``; no target is *started* once
  ``errors > MaxErrors``. Work already running finishes; targets never started are
  reported ``Cancelled`` by the caller;
* ramp-up (on by default): the first target runs alone; then at most 2, 4, 8 ... run at
  once, the limit doubling each time as many targets have finished as were allowed
  before (``2**floor(log2(finished + 1))``), capped by ``MaxConcurrency``.

:class:`Dispatch` is the decision-maker the async dispatcher (:mod:`runbook_engine.fanout`)
drives: ask :meth:`Dispatch.next_start` what to start, report :meth:`Dispatch.finish`;
it holds no clock and no I/O, so property-based tests can replay any completion order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CONCURRENCY_PATTERN = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
ERRORS_PATTERN = re.compile(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")
RUN_COMMAND_CONCURRENCY = "50"  # SendCommand's defaults (ssm-reference §7.6)
RUN_COMMAND_ERRORS = "0"


def max_concurrency(value: str | int, total: int) -> int:
    """Targets that may run at once: a count as given, a percentage of ``total`` rounded
    down but never below 1. A malformed value is a :class:`ValueError`."""
    text = str(value).strip()
    if not CONCURRENCY_PATTERN.match(text):
        raise ValueError(
            f"MaxConcurrency must be a count such as 10 or a percentage such as 10%, not {value!r}"
        )
    if text.endswith("%"):
        return max(1, total * int(text[:-1]) // 100)
    return int(text)


def max_errors(value: str | int, total: int) -> int:
    """Errors tolerated before launching stops: a count, or ``floor(total * p / 100)``."""
    text = str(value).strip()
    if not ERRORS_PATTERN.match(text):
        raise ValueError(
            f"MaxErrors must be a count such as 0 or 10 or a percentage such as 10%, not {value!r}"
        )
    if text.endswith("%"):
        return total * int(text[:-1]) // 100
    return int(text)


def threshold_exceeded(errors: int, tolerated: int) -> bool:
    """Launching stops once the errors are more than the tolerated count."""
    return errors > tolerated


def ramp_limit(finished: int, concurrency: int, ramp_up: bool = True) -> int:
    """How many targets may be in flight once ``finished`` targets are done."""
    if not ramp_up:
        return concurrency
    stage = 1
    while stage * 2 <= finished + 1 and stage < concurrency:
        stage *= 2
    return min(stage, concurrency)


@dataclass(frozen=True)
class RateControl:
    """The user's settings, before they meet a target count."""

    max_concurrency: str = RUN_COMMAND_CONCURRENCY
    max_errors: str = RUN_COMMAND_ERRORS
    ramp_up: bool = True

    def check(self) -> None:
        """Raise :class:`ValueError` for malformed values, whatever the target count."""
        max_concurrency(self.max_concurrency, 1)
        max_errors(self.max_errors, 1)

    def dispatch(self, total: int) -> Dispatch:
        return Dispatch(
            total=total,
            concurrency=max_concurrency(self.max_concurrency, total),
            tolerated_errors=max_errors(self.max_errors, total),
            ramp_up=self.ramp_up,
        )


@dataclass
class Dispatch:
    """Which of ``total`` targets (by index, in order) to start next, given what finished."""

    total: int
    concurrency: int
    tolerated_errors: int
    ramp_up: bool = True
    started: set[int] = field(default_factory=set)
    running: set[int] = field(default_factory=set)
    finished: dict[int, bool] = field(default_factory=dict)  # index -> failed
    _next: int = 0
    _errors: int = 0  # failed entries of ``finished``, counted as they come (not re-summed)

    @property
    def errors(self) -> int:
        return self._errors

    @property
    def stopped(self) -> bool:
        """The error threshold was crossed: nothing more is started."""
        return threshold_exceeded(self.errors, self.tolerated_errors)

    @property
    def limit(self) -> int:
        return ramp_limit(len(self.finished), self.concurrency, self.ramp_up)

    def already_finished(self, index: int, failed: bool) -> None:
        """A target that finished before (a resumed execution): counts, is not started."""
        self.started.add(index)
        self._record(index, failed)

    def _record(self, index: int, failed: bool) -> None:
        self._errors += int(failed) - int(self.finished.get(index, False))
        self.finished[index] = failed

    def next_start(self) -> int | None:
        """The next target to start now, or None (wait for a finish, or all done)."""
        if self.stopped or len(self.running) >= self.limit:
            return None
        while self._next < self.total and self._next in self.started:
            self._next += 1
        if self._next >= self.total:
            return None
        index = self._next
        self.started.add(index)
        self.running.add(index)
        return index

    def finish(self, index: int, failed: bool) -> None:
        self.running.discard(index)
        self._record(index, failed)

    @property
    def done(self) -> bool:
        """Nothing runs and nothing more will start."""
        return not self.running and (self.stopped or len(self.started) >= self.total)

    def never_started(self) -> list[int]:
        return [i for i in range(self.total) if i not in self.started]
