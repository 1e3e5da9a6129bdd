"""aws:executeAwsApi: call any AWS API operation; every other input is a request parameter.

``Api`` is the operation's PascalCase name (snake_case and camelCase spellings found in
real runbooks are accepted too). Outputs are the step's own selectors over the response.
AWS limits each call to 25 s; that bounds the call, not the step (real runbooks give
these steps timeoutSeconds up to 3600), so it is not a step maximum here.
"""

from __future__ import annotations

from actions.aws_common import NO_AWS_BACKEND, SERVICE_AND_API, check_service_and_api
from runbook_engine.inputs import ActionSchema
from runbook_engine.plugin import SimpleAction

CALL_TIME_LIMIT = 25  # seconds per API call (ssm-reference §2.4)

SCHEMA = ActionSchema(
    inputs=SERVICE_AND_API,
    extra_inputs=True,
    validators=(check_service_and_api,),
)

# Any operation may change something, so an interrupted call is not repeated blindly.
ACTION = SimpleAction("aws:executeAwsApi", SCHEMA, None, runnable_reason=NO_AWS_BACKEND)
