"""aws:invokeWebhook against a local HTTPS server whose certificate comes from a test CA;
the integration (URL with its token, headers) is a SecureString in the Parameter Store
and never shows up in records, outputs, logs or the database file."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import anyio
import pytest

from actions.invoke_webhook import INTEGRATIONS
from runbook_engine import Engine, ExecutionView
from runbook_engine.settings import Settings
from runbook_engine.status import Status
from tests.services.https import HttpsServer

HOOK = """
schemaVersion: '0.3'
parameters:
  Message: {type: String, default: ''}
mainSteps:
  - name: notify
    action: aws:invokeWebhook
    inputs:
      IntegrationName: chat
      %s
"""


@pytest.fixture
def trusted(https_server: HttpsServer, monkeypatch: pytest.MonkeyPatch) -> HttpsServer:
    monkeypatch.setenv("SSL_CERT_FILE", str(https_server.ca_file))
    return https_server


def run_hook(
    tmp_path: Path, integration: dict[str, object] | None, body_line: str, params: dict[str, str]
) -> ExecutionView:
    document = tmp_path / "hook.yaml"
    document.write_text(HOOK % body_line)
    settings = Settings(
        poll_interval=0.05, principal="tester", parameter_key_file=str(tmp_path / "key")
    )

    async def main() -> ExecutionView:
        async with Engine(f"sqlite:///{tmp_path / 'state.db'}", settings=settings) as engine:
            if integration is not None:
                await engine.parameters.put(
                    INTEGRATIONS + "chat",
                    json.dumps(integration),
                    type="SecureString",
                    data_type="aws:ssm:integration",
                )
            return await engine.run(str(document), params)

    return anyio.run(main)


def database_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))


def test_the_webhook_is_called_and_its_secrets_stay_secret(
    tmp_path: Path, trusted: HttpsServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = "tok-" + uuid.uuid4().hex
    header_secret = "Bearer " + uuid.uuid4().hex
    integration = {
        "description": "team chat",
        "url": f"{trusted.url}/hooks/{token}",
        "headers": [{"key": "Authorization", "value": header_secret}],
        "payload": "default",
    }
    caplog.set_level(logging.DEBUG)
    view = run_hook(tmp_path, integration, "Body: '{\"text\": \"{{ Message }}\"}'", {"Message": "deployed"})
    step = view.step("notify")
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert step.outputs == {"Response": '{"ok": true}', "ResponseCode": 200}
    [request] = trusted.requests
    assert request["path"] == f"/hooks/{token}"
    assert request["headers"]["Authorization"] == header_secret
    assert json.loads(request["body"]) == {"text": "deployed"}
    for secret in (token, header_secret):
        assert secret.encode() not in database_bytes(tmp_path)
        assert secret not in caplog.text
        assert secret not in repr(view)


def test_without_a_body_the_integrations_payload_is_sent(
    tmp_path: Path, trusted: HttpsServer
) -> None:
    integration = {"url": trusted.url + "/h", "payload": '{"text": "from the integration"}'}
    view = run_hook(tmp_path, integration, "", {})
    assert view.status == Status.SUCCESS
    assert trusted.requests[0]["body"] == '{"text": "from the integration"}'


def test_an_error_status_fails_the_step_with_the_outputs(tmp_path: Path, trusted: HttpsServer) -> None:
    trusted.status, trusted.reply = 500, b"broken"
    view = run_hook(tmp_path, {"url": trusted.url + "/h"}, "Body: x", {})
    step = view.step("notify")
    assert step.status == Status.FAILED
    assert "answered HTTP 500" in (step.failure_message or "")
    assert step.outputs == {"Response": "broken", "ResponseCode": 500}


def test_an_untrusted_certificate_is_refused(tmp_path: Path, https_server: HttpsServer) -> None:
    token = uuid.uuid4().hex
    view = run_hook(tmp_path, {"url": f"{https_server.url}/{token}"}, "Body: x", {})
    step = view.step("notify")
    assert step.status == Status.FAILED
    assert "TLS failed" in (step.failure_message or "")
    assert token not in (step.failure_message or "")
    assert https_server.requests == []


def test_plain_http_is_refused(tmp_path: Path) -> None:
    view = run_hook(tmp_path, {"url": "http://127.0.0.1:9/hook"}, "Body: x", {})
    step = view.step("notify")
    assert step.status == Status.FAILED
    assert "the URL must be https://" in (step.failure_message or "")


def test_a_missing_integration_fails_clearly(tmp_path: Path) -> None:
    view = run_hook(tmp_path, None, "Body: x", {})
    step = view.step("notify")
    assert step.status == Status.FAILED
    assert "webhook integration 'chat' does not exist" in (step.failure_message or "")
