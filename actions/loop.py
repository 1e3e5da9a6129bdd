"""aws:loop: run nested ``Steps`` once per item of ``Iterators`` ("for each"), or again
while ``LoopCondition`` holds after each pass ("do while"); at most 100 iterations.

The parser reads ``Steps`` as nested steps and the engine runs the loop itself; this
module declares and checks the loop's inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runbook_engine.conditions import check_condition
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, field_, is_dynamic
from runbook_engine.model import ValueType
from runbook_engine.plugin import SimpleAction

MAX_ITERATIONS = 100


def _check_loop_condition(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    condition = inputs.get("LoopCondition")
    if condition is None or (static and is_dynamic(condition)):
        return []
    return [
        Finding(("LoopCondition", *f.path), f.message, f.severity, f.at_key)
        for f in check_condition(condition, static=static)
    ]


SCHEMA = ActionSchema(
    inputs={
        # Items are maps when IteratorDataType is StringMap.
        "Iterators": field_("StringList", "MapList", max_items=MAX_ITERATIONS,
                            description="items to iterate over"),
        "IteratorDataType": field_("String", allowed=("Boolean", "Integer", "String", "StringMap")),
        "LoopCondition": field_("StringMap", description="checked after each pass"),
        "MaxIterations": field_("Integer", minimum=1, maximum=MAX_ITERATIONS),
        "Steps": field_("MapList", required=True, description="nested steps"),
    },
    exactly_one_of=(("Iterators", "LoopCondition"),),
    validators=(_check_loop_condition,),
    outputs={"CurrentIteration": ValueType.INTEGER, "CurrentIteratorValue": ValueType.STRING},
    on_cancel_allowed=False,
)

# The loop has no side effect of its own; its inner steps carry their own flags.
ACTION = SimpleAction(
    "aws:loop", SCHEMA, None, idempotent=True, runnable_reason="executed by the engine"
)
