"""SigV4 verification: requests signed by botocore's own signer pass, anything else is
refused with the AWS error codes, both in ``sigv4.verify`` and through a real daemon."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from runbook_engine.daemon.config import Credential
from runbook_engine.daemon.sigv4 import AuthError, SignedRequest, verify
from tests.services.daemon import ALICE, DaemonProcess, send, signed_request

KEYS = {ALICE[0]: Credential(ALICE[0], ALICE[1], "alice")}
BODY = b'{"AutomationExecutionId": "0123456789abcdef0123456789abcdef0123"}'


def botocore_signed(
    url: str = "http://127.0.0.1:8080/",
    body: bytes = BODY,
    key: tuple[str, str] = ALICE,
    region: str = "us-east-1",
    service: str = "ssm",
) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonSSM.GetAutomationExecution",
        },
    )
    SigV4Auth(Credentials(*key), service, region).add_auth(request)
    return request


def as_received(request: AWSRequest, **changes: Any) -> SignedRequest:
    """The request as the server sees it (botocore adds Host when it sends)."""
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = [("Host", parts.netloc), *prepared.headers.items()]
    received = {
        "method": "POST",
        "path": parts.path,
        "query": parts.query,
        "headers": headers,
        "body": prepared.body,
    }
    received.update(changes)
    return SignedRequest(**received)


def check(request: SignedRequest, now: datetime | None = None) -> Credential:
    return verify(request, KEYS.get, region="us-east-1", now=now or datetime.now(UTC))


def refused(request: SignedRequest, now: datetime | None = None) -> AuthError:
    with pytest.raises(AuthError) as failure:
        check(request, now)
    return failure.value


def test_a_request_botocore_signed_is_accepted() -> None:
    assert check(as_received(botocore_signed())).principal == "alice"


def test_query_strings_and_paths_canonicalise_as_botocore_does() -> None:
    signed = botocore_signed("http://127.0.0.1:8080/a/./b/../c?z=1&a=two%20words&a=1&k=%7E")
    assert check(as_received(signed)).principal == "alice"


def test_a_wrong_secret_a_changed_body_or_a_changed_header_break_the_signature() -> None:
    wrong_secret = botocore_signed(key=(ALICE[0], "not-the-secret"))
    assert refused(as_received(wrong_secret)).code == "InvalidSignatureException"
    assert refused(as_received(botocore_signed(), body=BODY + b" ")).code == (
        "InvalidSignatureException"
    )
    request = as_received(botocore_signed())
    changed = [
        (k, "AmazonSSM.StopAutomationExecution" if k.lower() == "x-amz-target" else v)
        for k, v in request.headers
    ]
    error = refused(as_received(botocore_signed(), headers=changed))
    assert (error.code, error.status) == ("InvalidSignatureException", 400)
    assert "signature we calculated does not match" in error.message


def test_missing_and_malformed_authorization() -> None:
    request = as_received(botocore_signed())
    unsigned = [(k, v) for k, v in request.headers if k.lower() != "authorization"]
    error = refused(as_received(botocore_signed(), headers=unsigned))
    assert (error.code, error.status) == ("MissingAuthenticationTokenException", 403)
    for header in (
        "AWS4-HMAC-SHA256 Credential=x",
        "Basic dXNlcjpwYXNz",
        "AWS4-HMAC-SHA256 Credential=AKID/20200101/us-east-1/ssm, SignedHeaders=host, Signature=00",
    ):
        headers = [*unsigned, ("Authorization", header)]
        assert refused(as_received(botocore_signed(), headers=headers)).code == (
            "IncompleteSignatureException"
        )
    no_date = [(k, v) for k, v in request.headers if k.lower() != "x-amz-date"]
    assert refused(as_received(botocore_signed(), headers=no_date)).code == (
        "IncompleteSignatureException"
    )


def test_an_unknown_access_key_is_unrecognized() -> None:
    stranger = botocore_signed(key=("AKIDSTRANGER0000", "whatever"))
    assert refused(as_received(stranger)).code == "UnrecognizedClientException"


def test_a_wrong_region_or_service_scope_is_refused() -> None:
    assert "region" in refused(as_received(botocore_signed(region="eu-west-1"))).message
    assert "service" in refused(as_received(botocore_signed(service="ec2"))).message


def test_a_request_replayed_outside_the_clock_skew_is_refused() -> None:
    request = as_received(botocore_signed())
    assert check(request, datetime.now(UTC) + timedelta(minutes=4)).principal == "alice"
    late = refused(request, datetime.now(UTC) + timedelta(minutes=6))
    assert late.code == "InvalidSignatureException"
    assert late.message.startswith("Signature expired")
    early = refused(request, datetime.now(UTC) - timedelta(minutes=6))
    assert early.message.startswith("Signature not yet current")


# -- through a real daemon ------------------------------------------------------------------


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("sigv4")
    process = DaemonProcess(
        root, {"state": f"sqlite:///{root / 'state.db'}", "clock_skew_seconds": 2, "workers": 1}
    )
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def test_the_daemon_refuses_unsigned_and_wrongly_signed_requests(daemon: DaemonProcess) -> None:
    body = json.dumps({}).encode()
    good = signed_request(daemon.url, "DescribeAutomationExecutions", body)
    assert send(good)[0] == 200
    unsigned = AWSRequest(
        method="POST",
        url=daemon.url + "/",
        data=body,
        headers={"X-Amz-Target": "AmazonSSM.DescribeAutomationExecutions"},
    )
    assert send(unsigned) == (
        403,
        {
            "__type": "MissingAuthenticationTokenException",
            "message": "Missing Authentication Token",
            "Message": "Missing Authentication Token",
        },
    )
    wrong = signed_request(
        daemon.url, "DescribeAutomationExecutions", body, key=(ALICE[0], "wrong")
    )
    assert send(wrong)[1]["__type"] == "InvalidSignatureException"
    stranger = signed_request(
        daemon.url, "DescribeAutomationExecutions", body, key=("AKIDSTRANGER0000", "x")
    )
    assert send(stranger)[1]["__type"] == "UnrecognizedClientException"
    tampered = signed_request(daemon.url, "DescribeAutomationExecutions", body)
    assert send(tampered, body=b'{"MaxResults": 1}')[1]["__type"] == "InvalidSignatureException"


def test_the_daemon_refuses_a_replay_after_the_allowed_skew(daemon: DaemonProcess) -> None:
    request = signed_request(daemon.url, "DescribeAutomationExecutions", b"{}")
    assert send(request)[0] == 200
    time.sleep(3)  # the test daemon allows 2 seconds of skew
    status, answer = send(request)
    assert (status, answer["__type"]) == (400, "InvalidSignatureException")
    assert answer["message"].startswith("Signature expired")


def test_boto3_with_a_clock_off_by_ten_minutes_is_refused(
    daemon: DaemonProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.auth

    skewed = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: skewed)
    with pytest.raises(ClientError) as failure:
        daemon.client(ALICE).describe_automation_executions()
    assert failure.value.response["Error"]["Code"] == "InvalidSignatureException"
