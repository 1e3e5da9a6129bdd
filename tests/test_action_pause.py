"""aws:pause: parked until a Resume signal names the step."""

from __future__ import annotations

import pytest

from actions.pause import ACTION, SCHEMA, check_signal
from runbook_engine.plugin import ActionResult, Suspend
from tests.action_context import FakeContext, signal

pytestmark = pytest.mark.anyio


async def test_waits_for_resume() -> None:
    outcome = await ACTION.run({}, FakeContext(step_name="holdOn"))
    assert isinstance(outcome, Suspend)
    assert outcome.status == "Waiting"
    assert outcome.signals == ("Resume",)
    assert outcome.wake_at is None
    assert outcome.message == "Paused: send a Resume signal with StepName=holdOn to go on"


async def test_resume_naming_the_step_finishes_it_with_no_outputs() -> None:
    ctx = FakeContext(step_name="holdOn", signals=[signal("Resume", StepName=["holdOn"])])
    outcome = await ACTION.run({}, ctx)
    assert isinstance(outcome, ActionResult)
    assert outcome.outputs == {}


async def test_resume_naming_another_step_is_ignored() -> None:
    ctx = FakeContext(step_name="holdOn", signals=[signal("Resume", StepName=["other"])])
    assert isinstance(await ACTION.run({}, ctx), Suspend)


def test_check_signal() -> None:
    assert check_signal("holdOn", "Resume", {"StepName": ["holdOn"]}) is None
    assert check_signal("holdOn", "Approve", {}) == (
        "a paused step takes a Resume signal, not Approve"
    )
    assert check_signal("holdOn", "Resume", {}) == "a Resume signal needs the payload StepName"
    assert check_signal("holdOn", "Resume", {"StepName": ["x"]}) == (
        "the Resume signal names step x, but holdOn is paused"
    )


def test_takes_no_inputs() -> None:
    assert SCHEMA.check({}, static=True) == []
    assert [f.message for f in SCHEMA.check({"Wait": 1}, static=True)] == [
        "unknown input 'Wait' (known: none)"
    ]
    assert (SCHEMA.default_timeout, SCHEMA.max_timeout) == (604800, 2592000)
