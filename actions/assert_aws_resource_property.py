"""aws:assertAwsResourceProperty: call one AWS API once and check a property of the answer.

The step succeeds when the value at ``PropertySelector`` is one of ``DesiredValues``
(compared as Python's ``str()`` prints it: ``True``, ``16``, ``running``); a selection
of several values succeeds only if each of them is desired. Every other input is a
request parameter of ``Service``/``Api``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions.aws_common import (
    PROPERTY_CHECK_INPUTS,
    PROPERTY_CHECK_NAMES,
    check_property,
    check_property_selector,
    check_service_and_api,
    request_parameters,
)
from runbook_engine.inputs import ActionSchema
from runbook_engine.plugin import (
    ActionContext,
    ActionError,
    ActionResult,
    FailureStage,
    FailureType,
    SimpleAction,
)

SCHEMA = ActionSchema(
    inputs=PROPERTY_CHECK_INPUTS,
    extra_inputs=True,
    validators=(check_service_and_api, check_property_selector),
)


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    parameters = request_parameters(inputs, PROPERTY_CHECK_NAMES)
    response = await ctx.aws.call(str(inputs["Service"]), str(inputs["Api"]), parameters)
    problem = check_property(response, inputs)
    if problem is not None:
        raise ActionError(
            f"assertion failed: {problem}",
            failure_type=FailureType.VERIFICATION,
            stage=FailureStage.POST_VERIFICATION,
        )
    return ActionResult(response=response)


# One read-only call: re-running an interrupted attempt asks the same question again.
ACTION = SimpleAction("aws:assertAwsResourceProperty", SCHEMA, run, idempotent=True)
