"""aws:updateVariable: give a runbook variable a new value.

Inputs: ``Name`` in the form ``variable:NAME`` and ``Value`` (any type). The action
cannot see the execution's variables, so it only names the change; the engine applies it.

Contract with the engine:

* ``run`` returns ``ActionResult(outputs={}, response={"variable": NAME, "value": VALUE})``
  with ``NAME`` stripped of the ``variable:`` prefix and ``VALUE`` exactly as rendered.
* On that result the engine looks up the variable: an undeclared one fails the step;
  otherwise it calls :func:`runbook_engine.variables.check_variable_value` with the
  declared type, fails the step with the message returned (stage ``InputValidation``),
  or stores the new value (shown in ``AutomationExecution.Variables``) for later
  ``{{ variable:NAME }}`` references.
* ``onCancel`` is not allowed on this step (``SCHEMA.on_cancel_allowed`` is False).

The name form and the type rules live in :mod:`runbook_engine.variables`, shared with
the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
from runbook_engine.variables import check_variable_value, variable_name

__all__ = ["ACTION", "SCHEMA", "check_variable_value", "run", "variable_name"]


def _check(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    name = inputs.get("Name")
    literal = isinstance(name, str) and not (static and contains_expression(name))
    if literal and variable_name(str(name)) is None:
        return [Finding(("Name",), f"Name must be variable:NAME, not {name!r}")]
    return []


SCHEMA = ActionSchema(
    inputs={"Name": field_("String", required=True), "Value": field_(required=True)},
    validators=(_check,),
    on_cancel_allowed=False,
)


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult | Suspend:
    name = variable_name(str(inputs["Name"]))
    if name is None:
        raise ActionError(
            f"Name must be variable:NAME, not {inputs['Name']!r}",
            stage=FailureStage.INPUT_VALIDATION,
        )
    return ActionResult(outputs={}, response={"variable": name, "value": inputs["Value"]})


ACTION = SimpleAction(
    "aws:updateVariable",
    SCHEMA,
    run,
    idempotent=True,
    description="Set a runbook variable (the engine applies the change).",
)
