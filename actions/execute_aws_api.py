"""aws:executeAwsApi: call any AWS API operation; every other input is a request parameter.

``Api`` is the operation's PascalCase name (snake_case and camelCase spellings found in
real runbooks are accepted too). Outputs are the step's own selectors over the response
(normalised: no ``ResponseMetadata``, datetimes as ISO-8601 text). AWS limits each call
to 25 s; that bounds the call, not the step (real runbooks give these steps
timeoutSeconds up to 3600), so it is not a step maximum here.

An idempotency-token member the runbook leaves out (EC2 ``ClientToken``, ...) is filled
with a token derived from the execution and the step, so running the step again does not
create a second resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions.aws_common import (
    SERVICE_AND_API,
    SERVICE_AND_API_NAMES,
    check_service_and_api,
    idempotency_members,
    idempotency_token,
    request_parameters,
    streams,
)
from runbook_engine.aws_names import read_only_api
from runbook_engine.inputs import ActionSchema
from runbook_engine.plugin import (
    ActionContext,
    ActionError,
    ActionResult,
    FailureStage,
    FailureType,
    SimpleAction,
)

CALL_TIME_LIMIT = 25  # seconds per API call (ssm-reference §2.4)

SCHEMA = ActionSchema(
    inputs=SERVICE_AND_API,
    extra_inputs=True,
    validators=(check_service_and_api,),
)


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    service, api = str(inputs["Service"]), str(inputs["Api"])
    if streams(service, api):
        raise ActionError(
            f"{service}.{api} streams its request or response, which aws:executeAwsApi "
            "does not support",
            failure_type=FailureType.VERIFICATION,
            stage=FailureStage.INPUT_VALIDATION,
        )
    parameters = request_parameters(inputs, SERVICE_AND_API_NAMES)
    for member in idempotency_members(service, api):
        parameters.setdefault(member, idempotency_token(ctx))
    response = await ctx.aws.call(service, api, parameters, read_timeout=CALL_TIME_LIMIT)
    return ActionResult(response=response)


def reads_only(inputs: Mapping[str, Any]) -> bool:
    """Describe/Get/List... operations: an interrupted one is run again on resume, and
    the step's write-ahead record commits while the call runs."""
    return read_only_api(str(inputs.get("Api", "")))


# Any other operation may change something, so an interrupted call is not repeated blindly.
ACTION = SimpleAction("aws:executeAwsApi", SCHEMA, run, reads_only=reads_only)
