"""The AWS caller (runbook_engine.aws): normalised answers, coerced and validated
parameters, error mapping, throttling retry, assumeRole — over HTTP against real servers:
the emulator, a second emulator that enforces IAM, and a small proxy in front of the
emulator that answers "throttled" a given number of times."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import boto3
import botocore.session
import pytest

from runbook_engine.aws import Boto3Caller, normalize
from runbook_engine.aws_params import coerce
from runbook_engine.plugin import ActionError
from runbook_engine.status import Status
from tests.aws_support import FAST_AWS, new_instance, run, settings, write
from tests.services.moto import MotoServer, running_moto


def test_normalize_strips_metadata_and_makes_selectable_values() -> None:
    class Stream:
        def read(self) -> bytes:
            return b'{"a": 1}'

    answer = normalize(
        {
            "ResponseMetadata": {"RequestId": "x"},
            "When": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
            "Count": Decimal("3"),
            "Ratio": Decimal("0.5"),
            "Items": ("a", "b"),
            "Body": Stream(),
            "Blob": b"\xff\x00",
        }
    )
    assert answer == {
        "When": "2024-05-01T12:00:00+00:00",
        "Count": 3,
        "Ratio": 0.5,
        "Items": ["a", "b"],
        "Body": '{"a": 1}',
        "Blob": "/wA=",
    }


def test_normalize_walks_nested_plain_and_other_containers_alike() -> None:
    from types import MappingProxyType

    inner = {"On": True, "Off": False, "None": None, "N": 7, "F": 1.5, "S": "x"}
    answer = normalize(
        {
            "List": [inner, {"ResponseMetadata": {}, "At": date(2024, 5, 1)}],
            "Proxy": MappingProxyType({"Tuple": (Decimal("2"),), "ResponseMetadata": {}}),
        }
    )
    assert answer == {
        "List": [inner, {"At": "2024-05-01"}],
        "Proxy": {"Tuple": [2]},
    }
    assert type(answer["Proxy"]) is dict and answer["List"][0]["On"] is True


def _input(service: str, operation: str) -> Any:
    model = botocore.session.get_session().get_service_model(service)
    return model.operation_model(operation).input_shape


def test_parameters_are_coerced_toward_the_operation_shapes() -> None:
    shape = _input("ec2", "DescribeInstances")
    assert coerce({"InstanceIds": "i-1", "MaxResults": "5", "DryRun": "false"}, shape) == {
        "InstanceIds": ["i-1"],
        "MaxResults": 5,
        "DryRun": False,
    }
    logs = _input("logs", "PutRetentionPolicy")
    assert coerce({"logGroupName": ["g"], "retentionInDays": "365"}, logs) == {
        "logGroupName": "g",
        "retentionInDays": 365,
    }
    # What cannot convert unambiguously is left for the validator to name.
    assert coerce({"MaxResults": "lots"}, shape) == {"MaxResults": "lots"}


# -- against the emulator -----------------------------------------------------------------


def call(caller: Boto3Caller, service: str, api: str, **parameters: Any) -> Any:
    async def main() -> Any:
        return await caller.call(service, api, parameters)

    return anyio.run(main)


@pytest.mark.usefixtures("aws_env")
def test_calls_take_pascal_snake_and_camel_case_operation_names() -> None:
    caller = Boto3Caller(FAST_AWS)
    instance = new_instance()
    for api in ("DescribeInstances", "describe_instances", "describeInstances"):
        answer = call(caller, "ec2", api, InstanceIds=[instance])
        assert answer["Reservations"][0]["Instances"][0]["InstanceId"] == instance
    caller.close()


@pytest.mark.usefixtures("aws_env")
def test_identity_comes_from_sts() -> None:
    caller = Boto3Caller(FAST_AWS)

    async def main() -> Any:
        return await caller.identity()

    identity = anyio.run(main)
    assert (identity.account_id, identity.region, identity.partition) == (
        "123456789012",
        "us-east-1",
        "aws",
    )


# -- throttling -------------------------------------------------------------------------

THROTTLED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
    b"<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
    b"</Error></Errors><RequestID>test</RequestID></Response>"
)


class ThrottlingProxy:
    """Forwards to the emulator, except that the next ``throttle`` requests get a
    RequestLimitExceeded answer (HTTP 503, as EC2 sends it)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.throttle = 0
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.requests += 1
                if proxy.throttle > 0:
                    proxy.throttle -= 1
                    self._answer(503, THROTTLED, {"Content-Type": "text/xml"})
                    return
                connection = http.client.HTTPConnection(
                    proxy.upstream.hostname or "", proxy.upstream.port, timeout=30
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request("POST", self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                passed = {k: v for k, v in answer.getheaders() if k.lower() in ("content-type",)}
                self._answer(answer.status, data, passed)
                connection.close()

            def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[ThrottlingProxy]:
    proxy = ThrottlingProxy(moto_server.url)
    thread = threading.Thread(target=proxy.server.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.server.shutdown()
    proxy.server.server_close()
    thread.join(timeout=5)


@pytest.mark.usefixtures("aws_env")
def test_throttled_calls_are_retried_until_they_pass(proxy: ThrottlingProxy) -> None:
    from dataclasses import replace

    caller = Boto3Caller(replace(FAST_AWS, endpoint_url=proxy.url, throttle_max_retries=5))
    proxy.throttle = 3
    answer = call(caller, "ec2", "DescribeRegions")
    assert answer["Regions"]
    assert proxy.requests == 4


@pytest.mark.usefixtures("aws_env")
def test_throttling_beyond_the_limit_fails_with_failure_type_throttling(
    proxy: ThrottlingProxy,
) -> None:
    from dataclasses import replace

    caller = Boto3Caller(replace(FAST_AWS, endpoint_url=proxy.url, throttle_max_retries=2))
    proxy.throttle = 100
    with pytest.raises(ActionError) as raised:
        call(caller, "ec2", "DescribeRegions")
    assert raised.value.failure_type == "Throttling"
    assert "RequestLimitExceeded" in raised.value.message
    assert "still throttled after 2 retries" in raised.value.message
    assert proxy.requests == 3


@pytest.mark.usefixtures("aws_env")
def test_a_throttled_step_fails_with_throttling_and_records_nothing_else(
    tmp_path: Path, proxy: ThrottlingProxy
) -> None:
    proxy.throttle = 100
    document = write(
        tmp_path,
        "t.yaml",
        """
schemaVersion: '0.3'
mainSteps:
  - name: regions
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: DescribeRegions}
    outputs: [{Name: First, Selector: '$.Regions[0].RegionName'}]
""",
    )
    config = settings(endpoint_url=proxy.url, throttle_retry_seconds=0.2, throttle_max_retries=50)
    view = run(f"sqlite:///{tmp_path / 's.db'}", document, config=config)
    step = view.step("regions")
    assert view.status == Status.FAILED
    assert step.failure_type == "Throttling"
    assert step.outputs == {} and step.response is None
    assert len(view.steps) == 1


# -- permissions ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def restricted_keys() -> Iterator[tuple[MotoServer, dict[str, str]]]:
    """An emulator that enforces IAM, and the keys of a user who may only describe
    instances (the first three requests make that user, unauthenticated)."""
    with running_moto(INITIAL_NO_AUTH_ACTION_COUNT="3") as server:
        iam = boto3.client(
            "iam",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="reader")
        keys = iam.create_access_key(UserName="reader")["AccessKey"]
        iam.put_user_policy(
            UserName="reader",
            PolicyName="describe-only",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",'
            ' "Action": ["ec2:DescribeInstances"], "Resource": "*"}]}',
        )
        yield server, {
            "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
        }


@pytest.fixture
def restricted(
    restricted_keys: tuple[MotoServer, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> MotoServer:
    server, keys = restricted_keys
    for name, value in {**server.environment(), **keys}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return server


@pytest.mark.usefixtures("restricted")
def test_access_denied_fails_with_failure_type_permission(tmp_path: Path) -> None:
    document = write(
        tmp_path,
        "deny.yaml",
        """
schemaVersion: '0.3'
mainSteps:
  - name: allowed
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: DescribeInstances}
  - name: denied
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: CreateTags, Resources: [i-1], Tags: [{Key: a, Value: b}]}
""",
    )
    view = run(f"sqlite:///{tmp_path / 's.db'}", document)
    assert view.step("allowed").status == Status.SUCCESS
    denied = view.step("denied")
    assert denied.status == Status.FAILED
    assert denied.failure_type == "Permission"
    assert "ec2.CreateTags failed:" in (denied.failure_message or "")


@pytest.mark.usefixtures("restricted")
def test_a_role_that_cannot_be_assumed_fails_the_step_clearly(tmp_path: Path) -> None:
    document = write(
        tmp_path,
        "role.yaml",
        """
schemaVersion: '0.3'
assumeRole: arn:aws:iam::123456789012:role/not-for-you
mainSteps:
  - name: describe
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: DescribeInstances}
""",
    )
    view = run(f"sqlite:///{tmp_path / 's.db'}", document)
    step = view.step("describe")
    assert step.status == Status.FAILED
    assert step.failure_type == "Permission"
    assert "cannot assume role arn:aws:iam::123456789012:role/not-for-you" in (
        step.failure_message or ""
    )


# -- assumeRole -------------------------------------------------------------------------


@pytest.mark.usefixtures("aws_env")
def test_steps_run_as_the_runbooks_assume_role(tmp_path: Path) -> None:
    role = boto3.client("iam").create_role(RoleName="automation", AssumeRolePolicyDocument="{}")
    document = write(
        tmp_path,
        "whoami.yaml",
        """
schemaVersion: '0.3'
assumeRole: '{{ AutomationAssumeRole }}'
parameters:
  AutomationAssumeRole: {type: String, default: ''}
mainSteps:
  - name: whoami
    action: aws:executeAwsApi
    inputs: {Service: sts, Api: GetCallerIdentity}
    outputs: [{Name: Arn, Selector: $.Arn}]
""",
    )
    state = f"sqlite:///{tmp_path / 's.db'}"
    as_role = run(state, document, {"AutomationAssumeRole": role["Role"]["Arn"]})
    assert as_role.status == Status.SUCCESS, as_role.execution.failure_message
    arn = as_role.step("whoami").outputs["Arn"]
    assert f"assumed-role/automation/runbook-{as_role.execution_id}" in arn
    as_caller = run(state, document)  # assumeRole '' : the caller's own credentials
    assert "assumed-role" not in as_caller.step("whoami").outputs["Arn"]


@pytest.mark.usefixtures("aws_env")
def test_global_account_and_region_come_from_the_session_when_asked(tmp_path: Path) -> None:
    document = write(
        tmp_path,
        "globals.yaml",
        """
schemaVersion: '0.3'
parameters:
  Account: {type: String, default: '{{ global:ACCOUNT_ID }}'}
mainSteps:
  - name: where
    action: aws:executeAwsApi
    inputs: {Service: sts, Api: GetCallerIdentity}
    outputs: [{Name: Place, Selector: $.Account}]
  - name: echo
    action: aws:updateVariable
    inputs: {Name: 'variable:Region', Value: '{{ global:REGION }}/{{ Account }}'}
variables:
  Region: {type: String, default: none}
""",
    )
    state = f"sqlite:///{tmp_path / 's.db'}"
    from_session = run(state, document, config=settings(identity_from_session=True))
    assert from_session.status == Status.SUCCESS, from_session.execution.failure_message
    assert from_session.execution.parameters["Account"] == "123456789012"
    assert from_session.execution.variables["Region"] == "us-east-1/123456789012"
    configured = run(state, document)  # the settings' defaults
    assert configured.execution.parameters["Account"] == "000000000000"


def test_settings_from_the_environment() -> None:
    from runbook_engine.settings import SettingsError, settings_from_environment

    chosen = settings_from_environment(
        {"RUNBOOK_PARAMETER_STORE": "aws", "RUNBOOK_AWS_IDENTITY": "1"}, principal="me"
    )
    assert (chosen.parameter_store, chosen.aws.identity_from_session, chosen.principal) == (
        "aws",
        True,
        "me",
    )
    assert settings_from_environment({}).parameter_store == "local"
    with pytest.raises(SettingsError, match="local or aws"):
        settings_from_environment({"RUNBOOK_PARAMETER_STORE": "s3"})
