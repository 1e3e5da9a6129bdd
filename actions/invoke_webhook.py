"""aws:invokeWebhook: call a webhook integration stored in the Parameter Store.

The integration is the parameter ``/d9d01087-4a3f-49e0-b0b4-d568d7826553/ssm/integrations/
webhook/<IntegrationName>`` (a SecureString in AWS's layout, DataType
``aws:ssm:integration``) holding JSON ``{description, url, headers, payload}``
(ssm-reference §4.16), read from the engine's Parameter Store: the local one by default,
AWS SSM when configured. The URL must be HTTPS; the server's certificate is verified
against the system's trust store (OpenSSL's ``SSL_CERT_FILE``/``SSL_CERT_DIR`` add to it).

The integration's URL and headers are secrets (webhook URLs often carry their token): they
never reach the step's inputs, outputs, records or messages, which name the integration
and the host only. Outputs: ``Response`` (the body as text) and ``ResponseCode``; an
HTTP status of 400 or more fails the step.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread

from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.model import ValueType
from runbook_engine.parameters import ParameterStoreError
from runbook_engine.plugin import (
    ActionContext,
    ActionError,
    ActionResult,
    FailureStage,
    FailureType,
    SimpleAction,
)

INTEGRATIONS = "/d9d01087-4a3f-49e0-b0b4-d568d7826553/ssm/integrations/webhook/"
REQUEST_TIMEOUT = 30.0
MAX_RESPONSE = 100_000  # characters of the response kept

SCHEMA = ActionSchema(
    inputs={
        "IntegrationName": field_("String", required=True),
        "Body": field_("String", description="overrides the integration's default payload"),
    },
    outputs={"Response": ValueType.STRING, "ResponseCode": ValueType.INTEGER},
)


def _invalid(message: str) -> ActionError:
    return ActionError(
        message, failure_type=FailureType.VERIFICATION, stage=FailureStage.PRE_VERIFICATION
    )


def _headers(value: Any) -> dict[str, str]:
    """Headers as a map, or a list of ``{key, value}`` (any capitalisation)."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    headers: dict[str, str] = {}
    for item in value or []:
        if isinstance(item, Mapping):
            lowered = {str(k).lower(): v for k, v in item.items()}
            name = lowered.get("key", lowered.get("name"))
            if name is not None:
                headers[str(name)] = str(lowered.get("value", ""))
    return headers


async def _integration(ctx: ActionContext, name: str) -> Mapping[str, Any]:
    try:
        stored = await ctx.parameters.get(INTEGRATIONS + name, with_decryption=True)
    except ParameterStoreError as exc:
        if exc.code == "ParameterNotFound":
            raise _invalid(f"webhook integration {name!r} does not exist") from exc
        raise ActionError(f"webhook integration {name!r}: {exc.code}: {exc.message}") from exc
    try:
        value = json.loads(stored.value)
    except ValueError:
        value = None
    if not isinstance(value, Mapping) or not isinstance(value.get("url"), str):
        raise _invalid(f"webhook integration {name!r} is not a JSON object with a url")
    return value


def _post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    parts = urlsplit(url)
    context = ssl.create_default_context()
    connection = http.client.HTTPSConnection(
        parts.hostname or "", parts.port, timeout=REQUEST_TIMEOUT, context=context
    )
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        text = answer.read().decode("utf-8", errors="replace")
        return answer.status, text[:MAX_RESPONSE]
    finally:
        connection.close()


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    name = str(inputs["IntegrationName"])
    integration = await _integration(ctx, name)
    url = str(integration["url"])
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise _invalid(f"webhook integration {name!r}: the URL must be https://")
    headers = _headers(integration.get("headers"))
    body = inputs.get("Body")
    if body is None:
        body = integration.get("payload") or ""
    payload = body if isinstance(body, str) else json.dumps(body)
    where = f"webhook integration {name!r} ({parts.hostname})"
    try:
        status, text = await anyio.to_thread.run_sync(
            _post, url, headers, payload.encode("utf-8"), abandon_on_cancel=True
        )
    except ssl.SSLError as exc:
        raise ActionError(f"{where}: TLS failed: {exc.reason or exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ActionError(f"{where}: request failed: {type(exc).__name__}: {exc}") from None
    outputs = {"Response": text, "ResponseCode": status}
    if status >= 400:
        raise ActionError(f"{where} answered HTTP {status}", outputs=outputs)
    return ActionResult(outputs=outputs)


# A webhook call may notify someone; an interrupted one is not repeated blindly.
ACTION = SimpleAction("aws:invokeWebhook", SCHEMA, run)
