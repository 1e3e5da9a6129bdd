"""Long timers park like waits when the engine is told so (``Settings.park_timers_after``,
the daemon's ``park_timers_after_seconds``): the driver returns, the worker is free, and
the execution is claimable again only when its timer is due, resuming the same sleep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbook_engine.engine import Engine
from runbook_engine.settings import Settings
from runbook_engine.status import Status

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
SLEEPY = """\
schemaVersion: '0.3'
mainSteps:
  - name: nap
    action: aws:sleep
    inputs: {Duration: PT30S}
  - name: after
    action: aws:sleep
    inputs: {Duration: PT0S}
"""


class ClockEngine(Engine):
    clock = T0

    def now(self) -> datetime:
        return self.clock


async def test_a_long_sleep_parks_and_resumes_where_it_was(tmp_path: Path) -> None:
    document = tmp_path / "sleepy.yaml"
    document.write_text(SLEEPY)
    async with ClockEngine("memory://", settings=Settings(park_timers_after=5)) as engine:
        execution_id = await engine.start(str(document))
        parked = await engine.wait(execution_id, until_waiting=True)
        assert parked.status == Status.IN_PROGRESS
        assert parked.execution.owner is None
        assert parked.execution.wake_at == T0 + timedelta(seconds=30)
        assert [(s.step_name, s.status) for s in parked.steps] == [("nap", Status.IN_PROGRESS)]

        early = await engine.store.claim_next("other", 30, T0 + timedelta(seconds=29))
        assert early is None
        engine.clock = T0 + timedelta(seconds=31)
        claimed = await engine.store.claim_next("worker", 30, engine.clock)
        assert claimed is not None and claimed.execution_id == execution_id
        await engine.store.release(execution_id, "worker")

        done = await engine.wait(execution_id, until_waiting=True)
        assert done.status == Status.SUCCESS
        naps = [s for s in done.steps if s.step_name == "nap"]
        assert len(naps) == 1 and naps[0].end_time == T0 + timedelta(seconds=31)


async def test_short_sleeps_and_engines_without_the_setting_keep_their_driver(
    tmp_path: Path,
) -> None:
    document = tmp_path / "sleepy.yaml"
    document.write_text(SLEEPY.replace("PT30S", "PT0.2S"))
    async with Engine("memory://", settings=Settings(park_timers_after=5)) as engine:
        view = await engine.run(str(document), until_waiting=True)
        assert view.status == Status.SUCCESS
