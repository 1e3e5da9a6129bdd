"""aws:sleep: wait for a Duration (ISO-8601, e.g. PT10M) or until a Timestamp.

The wait is durable: the action answers with the wake-up time and the scheduler parks
the step; a resumed execution sleeps only for the time left.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import isodate

from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_
from runbook_engine.plugin import (
    ActionContext,
    ActionError,
    ActionResult,
    FailureStage,
    SimpleAction,
    Suspend,
)

MAX_DELAY = timedelta(seconds=604799)


@lru_cache(maxsize=256)  # checked at validation, checked again and used at run time
def parse_duration(text: str) -> timedelta:
    try:
        duration = isodate.parse_duration(text.strip())
    except (isodate.ISO8601Error, ValueError, AttributeError) as exc:
        raise ValueError(f"Duration {text!r} is not an ISO-8601 duration such as PT10M") from exc
    if not isinstance(duration, timedelta):  # years/months have no fixed length
        raise ValueError(f"Duration {text!r} must be in days, hours, minutes or seconds")
    if duration < timedelta(0):
        raise ValueError(f"Duration {text!r} must not be negative")
    if duration > MAX_DELAY:
        raise ValueError(f"Duration {text!r} is over the maximum of 604799 seconds")
    return duration


def parse_timestamp(text: str) -> datetime:
    try:
        moment = isodate.parse_datetime(text.strip())
    except (isodate.ISO8601Error, ValueError, AttributeError) as exc:
        raise ValueError(
            f"Timestamp {text!r} is not an ISO-8601 instant such as 2020-01-01T01:00:00Z"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _check(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    for name, parse in (("Duration", parse_duration), ("Timestamp", parse_timestamp)):
        value = inputs.get(name)
        if isinstance(value, str) and not (static and contains_expression(value)):
            try:
                parse(value)
            except ValueError as exc:
                return [Finding((name,), str(exc))]
    return []


SCHEMA = ActionSchema(
    inputs={"Duration": field_("String"), "Timestamp": field_("String")},
    exactly_one_of=(("Duration", "Timestamp"),),
    validators=(_check,),
    cancel_target_allowed=False,
)


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult | Suspend:
    now = ctx.now()
    if "wake_at" in ctx.state:
        wake_at = datetime.fromisoformat(str(ctx.state["wake_at"]))
    else:
        try:
            if "Duration" in inputs:
                wake_at = now + parse_duration(str(inputs["Duration"]))
            else:
                wake_at = parse_timestamp(str(inputs["Timestamp"]))
        except ValueError as exc:
            raise ActionError(str(exc), stage=FailureStage.INPUT_VALIDATION) from exc
        if wake_at - now > MAX_DELAY:
            raise ActionError(
                "Timestamp is more than 604799 seconds away", stage=FailureStage.INPUT_VALIDATION
            )
    if wake_at <= now:
        return ActionResult()
    return Suspend(status="InProgress", wake_at=wake_at, state={"wake_at": wake_at.isoformat()})


ACTION = SimpleAction("aws:sleep", SCHEMA, run, idempotent=True)
