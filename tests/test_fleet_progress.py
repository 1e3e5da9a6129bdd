"""Grouped checkpoints of a fleet command (actions/_fleet_progress.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

import actions._fleet_progress as fleet_progress
from actions._fleet_progress import FleetProgress


class Recorder:
    """Just enough of an ActionContext: the clock and a checkpoint that takes time."""

    def __init__(self, delay: float = 0.01, fail: int = 0) -> None:
        self.delay = delay
        self.fail = fail  # how many of the next writes fail
        self.states: list[dict[str, Any]] = []

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)

    async def checkpoint(self, state: Mapping[str, Any]) -> None:
        await anyio.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        self.states.append(dict(state))


def progress(recorder: Recorder) -> FleetProgress:
    return FleetProgress(recorder, {"instances": ["a", "b", "c", "d"]})  # type: ignore[arg-type]


def test_starts_of_one_wave_share_one_write_that_precedes_every_command() -> None:
    recorder = Recorder()
    journal = progress(recorder)
    ran: dict[str, list[str]] = {}

    async def start(name: str) -> None:
        await journal.start(name)
        ran[name] = list(recorder.states[-1]["started"]) if recorder.states else []

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for name in "abcd":
                group.start_soon(start, name)

    anyio.run(main)
    assert len(recorder.states) == 1
    assert all(name in durable for name, durable in ran.items())  # written before it ran
    assert sorted(recorder.states[0]["started"]) == ["a", "b", "c", "d"]


def test_a_start_during_a_write_waits_for_the_next_one_which_carries_finishes() -> None:
    recorder = Recorder(delay=0.05)
    journal = progress(recorder)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(journal.start, "a")
            await anyio.sleep(0.02)  # a's write is in flight
            journal.finish("x", {"record": {}})
            await journal.start("b")
            assert recorder.states[-1]["started"] == ["a", "b"]
            assert "x" in recorder.states[-1]["done"]

    anyio.run(main)
    assert [s["started"] for s in recorder.states] == [["a"], ["a", "b"]]
    assert journal.writes == 2


def test_a_finish_no_start_carries_is_flushed_within_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fleet_progress, "FINISH_FLUSH_SECONDS", 0.05)
    recorder = Recorder(delay=0.001)
    journal = progress(recorder)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(journal.flush_finished)
            await journal.start("a")
            journal.finish("a", {"record": {"Status": "Success"}})
            assert "a" not in recorder.states[-1]["done"]
            await anyio.sleep(0.3)
            assert recorder.states[-1]["done"] == {"a": {"record": {"Status": "Success"}}}
            journal.finish("b", {"record": {}})  # the flusher keeps watching
            await anyio.sleep(0.3)
            assert set(recorder.states[-1]["done"]) == {"a", "b"}
            group.cancel_scope.cancel()

    anyio.run(main)
    assert journal.writes == 3  # a's start, then one flush per finish: no idle writes


def test_a_failed_write_fails_the_start_and_the_next_write_carries_everything() -> None:
    recorder = Recorder(fail=1)
    journal = progress(recorder)

    async def main() -> None:
        journal.finish("x", {"record": {}})
        with pytest.raises(OSError, match="disk full"):
            await journal.start("a")
        await journal.start("b")

    anyio.run(main)
    assert recorder.states == [
        {
            "command_id": journal.command_id,
            "requested": journal.requested,
            "instances": ["a", "b", "c", "d"],
            "started": ["a", "b"],
            "done": {"x": {"record": {}}},
        }
    ]
