"""aws:pause: wait (status ``Waiting``) until a ``Resume`` signal names this step.

The step parks durably and holds no task; the engine runs it again when a signal is
delivered, and it finishes once ``ctx.signals`` holds a ``Resume``. The API requires
the payload ``StepName=[<this step>]``: the engine refuses other signals with
``InvalidAutomationSignalException`` using :func:`check_signal`, and a ``Resume``
naming another step is ignored here too. No outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runbook_engine.inputs import ActionSchema
from runbook_engine.plugin import ActionContext, ActionResult, SimpleAction, Suspend

RESUME = "Resume"

SCHEMA = ActionSchema(
    inputs={},
    default_timeout=604800,
    max_timeout=2592000,
    cancel_target_allowed=False,
)


def check_signal(
    step_name: str, signal_type: str, payload: Mapping[str, Sequence[str]]
) -> str | None:
    """Why the engine must refuse this signal for a paused step, or None."""
    if signal_type != RESUME:
        return f"a paused step takes a Resume signal, not {signal_type}"
    names = list(payload.get("StepName") or [])
    if not names:
        return "a Resume signal needs the payload StepName"
    if names != [step_name]:
        return f"the Resume signal names step {', '.join(names)}, but {step_name} is paused"
    return None


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult | Suspend:
    for signal in ctx.signals:
        named = list(signal.payload.get("StepName") or [ctx.step_name])
        if signal.type == RESUME and named == [ctx.step_name]:
            return ActionResult()
    return Suspend(
        status="Waiting",
        signals=(RESUME,),
        message=f"Paused: send a Resume signal with StepName={ctx.step_name} to go on",
    )


ACTION = SimpleAction(
    "aws:pause",
    SCHEMA,
    run,
    idempotent=True,
    description="Wait until a Resume signal names this step.",
    signal_check=lambda request: check_signal(
        request.step_name, request.signal_type, request.payload
    ),
)
