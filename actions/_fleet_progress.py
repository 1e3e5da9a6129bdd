"""The checkpointed progress of a command over many instances, written in groups.

A fan-out over 1,000 instances that wrote the step's checkpoint twice per invocation
spent most of its time there: every write is a store commit, and it encodes the whole
state (every finished invocation so far), so the cost grew with the square of the
instance count. Writes are grouped instead, under two rules:

* an invocation is durably marked *started* before its command runs (so that a crash
  never lets a resume run it a second time). The marks of invocations that start
  together share one write (group commit: whoever needs a write while one is in flight
  waits for the next, which carries everything asked for meanwhile);
* a *finished* invocation rides along with the next write (usually the next start), and
  a background flush writes it at most ``FINISH_FLUSH_SECONDS`` later when nothing else
  does. A crash inside that window loses the outcome, not the guarantee: the resumed
  step finds the invocation started but not finished and records it ``Failed`` as
  interrupted, without running it again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import anyio

from runbook_engine.plugin import ActionContext

FINISH_FLUSH_SECONDS = 1.0
# A write costs time in proportion to the state's size; after one that took d seconds the
# next starts no sooner than WRITE_GAP_FACTOR * d later, so that writing takes at most a
# quarter of the time however many invocations have finished, and the marks of the
# invocations that start meanwhile are all carried by that next write.
WRITE_GAP_FACTOR = 3.0


class FleetProgress:
    """What the checkpoint holds (JSON-able), and when it is written."""

    def __init__(self, ctx: ActionContext, state: Mapping[str, Any]) -> None:
        self.ctx = ctx
        self.command_id: str = state.get("command_id") or str(uuid.uuid4())
        self.requested: str = state.get("requested") or ctx.now().isoformat()
        self.instances: list[str] = list(state.get("instances") or [])
        self.started: list[str] = list(state.get("started") or [])
        self.done: dict[str, dict[str, Any]] = dict(state.get("done") or {})
        self.writes = 0
        self._changes = 0  # bumped on every change to the state
        self._written = 0  # the change count the last completed write carried
        self._writing = False
        self._wrote = anyio.Event()
        self._unwritten_finish = anyio.Event()
        self._oldest_unwritten: float | None = None
        self._next_write = 0.0  # time.monotonic() before which no write starts

    def snapshot(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "requested": self.requested,
            "instances": list(self.instances),
            "started": list(self.started),
            "done": dict(self.done),
        }

    async def save(self) -> None:
        """Write everything now (the resolved instance list, before anything starts)."""
        self._changes += 1
        await self._durable(self._changes)

    async def start(self, instance_id: str) -> None:
        """Mark an invocation started; returns once the mark is durable."""
        self.started.append(instance_id)
        self._changes += 1
        await self._durable(self._changes)

    def finish(self, instance_id: str, outcome_state: dict[str, Any]) -> None:
        """Record a finished invocation; written with the next write (see the module doc)."""
        self.done[instance_id] = outcome_state
        self._changes += 1
        if self._oldest_unwritten is None:
            self._oldest_unwritten = time.monotonic()
            self._unwritten_finish.set()

    async def flush(self) -> None:
        """Write what no write has carried yet: at the end of the fan-out, so that every
        finished invocation is durable before the step's result (and a caller reading the
        checkpoints, such as the daemon's command runner, sees every finish)."""
        if self._written < self._changes:
            await self._durable(self._changes)

    async def flush_finished(self) -> None:
        """Run beside the fan-out: write finished invocations no other write has carried
        within ``FINISH_FLUSH_SECONDS``. Cancel it when the fan-out is over."""
        while True:
            await self._unwritten_finish.wait()
            oldest = self._oldest_unwritten
            if oldest is not None:
                await anyio.sleep(max(0.0, oldest + FINISH_FLUSH_SECONDS - time.monotonic()))
                if self._oldest_unwritten == oldest:  # no write carried it meanwhile
                    await self._durable(self._changes)
            if self._oldest_unwritten is None:
                self._unwritten_finish = anyio.Event()

    async def _durable(self, changes: int) -> None:
        """Return once a write that carries change number ``changes`` has completed."""
        while self._written < changes:
            if self._writing:
                await self._wrote.wait()
                continue
            self._writing = True
            try:
                # Invocations started in the same wave ask for a write one after another in
                # this loop turn: let them all add their marks before the snapshot is taken.
                await anyio.sleep(max(0.0, self._next_write - time.monotonic()))
                carried, had_finish = self._changes, self._oldest_unwritten is not None
                self._oldest_unwritten = None
                began = time.monotonic()
                try:
                    await self.ctx.checkpoint(self.snapshot())
                except BaseException:
                    if had_finish and self._oldest_unwritten is None:
                        self._oldest_unwritten = time.monotonic()
                    raise
                self.writes += 1
                ended = time.monotonic()
                self._next_write = ended + WRITE_GAP_FACTOR * (ended - began)
                self._written = max(self._written, carried)
            finally:
                self._writing = False
                wrote, self._wrote = self._wrote, anyio.Event()
                wrote.set()
