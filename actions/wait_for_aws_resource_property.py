"""aws:waitForAwsResourceProperty: poll an AWS API until a property has a desired value.

Same inputs as aws:assertAwsResourceProperty; on timeout (default 3600 s) the step
ends ``TimedOut``.

Polling happens in the running step, with a jittered sleep between calls
(``AwsSettings.poll_interval``, 5 s by default), rather than by parking the step
durably: each poll needs a live API call anyway, the step's cancel scope then gives
timeouts (``TimedOut``) and cancellation for free, and the action is read-only, so an
execution resumed after a crash simply polls again. API errors while polling are
retried until the timeout (resources appear late: ``InvalidInstanceID.NotFound``),
except those that cannot heal by waiting: invalid parameters and denied access.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

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
    default_timeout=3600,
)


def _lasting(error: ActionError) -> bool:
    """An error that polling again cannot make go away."""
    return (
        error.stage == FailureStage.INPUT_VALIDATION
        or error.failure_type == FailureType.PERMISSION
    )


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    service, api = str(inputs["Service"]), str(inputs["Api"])
    parameters = request_parameters(inputs, PROPERTY_CHECK_NAMES)
    aws = ctx.aws
    polls = 0
    while True:
        polls += 1
        try:
            response = await aws.call(service, api, parameters)
        except ActionError as exc:
            if _lasting(exc):
                raise
            ctx.log.info("poll %d of %s.%s failed, will retry: %s", polls, service, api, exc)
        else:
            problem = check_property(response, inputs)
            if problem is None:
                return ActionResult(response=response)
            ctx.log.info("poll %d: %s", polls, problem)
        await anyio.sleep(aws.poll_delay())


ACTION = SimpleAction(
    "aws:waitForAwsResourceProperty",
    SCHEMA,
    run,
    idempotent=True,  # read-only polling
)
