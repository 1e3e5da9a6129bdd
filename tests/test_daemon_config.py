"""The daemon's configuration file, ``runbook serve`` refusing what it cannot do, and TLS."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from runbook_engine.daemon.config import ConfigError, load_config, parse_config, parse_listen
from tests.services.daemon import ALICE, Daemons


def test_a_full_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "runbook.yaml"
    path.write_text(
        """
listen: 0.0.0.0:9090
state: postgresql+psycopg://runbook@db/runbook
region: eu-west-1
account_id: "123456789012"
credentials:
  - {access_key_id: AKIA1, secret_access_key: s1, principal: alice}
policies:
  alice: {operations: ["Get*"], documents: ["Deploy-*"]}
documents: [docs, /abs/docs]
workers: 8
lease_seconds: 12.5
"""
    )
    config = load_config(path)
    assert (config.host, config.port, config.region) == ("0.0.0.0", 9090, "eu-west-1")
    assert config.documents == (str(tmp_path / "docs"), "/abs/docs")
    assert config.credential("AKIA1") is not None and config.credential("AKIA2") is None
    policy = config.policy("alice")
    assert policy.allows_operation("GetAutomationExecution")
    assert not policy.allows_operation("StartAutomationExecution")
    assert policy.allows_document("Deploy-Web") and not policy.allows_document("Other")
    assert config.policy("bob").allows_operation("StartAutomationExecution")
    assert config.principal_arn("alice") == "arn:aws:iam::123456789012:user/alice"
    assert (config.workers, config.lease_seconds) == (8, 12.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("localhost", ("localhost", 8080)),
        ("[::1]:9000", ("::1", 9000)),
        ("::1", ("::1", 8080)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"listen": "127.0.0.1:http"}, "not a port"),
        ({"workers": 0}, "workers"),
        ({"workers": True}, "workers"),
        ({"lease_seconds": -1}, "lease_seconds"),
        ({"credentials": [{"access_key_id": "A"}]}, "credentials\\[0\\]"),
        ({"credentials": [{"access_key_id": "A", "secret_access_key": "s", "principal": "p"}] * 2},
         "listed twice"),
        ({"policies": {"alice": {"operatons": ["*"]}}}, "policy of alice"),
        ({"tls": {"certificate": "c.pem"}}, "tls needs"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_with_the_reason(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(settings)


def test_unknown_settings_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("listen: 127.0.0.1:8080\nworkres: 3\n")
    with pytest.raises(ConfigError, match="unknown settings: workres"):
        load_config(path)


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbook_engine", "serve", "--output", "json", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_a_bad_configuration_file_with_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("workers: many\n")
    result = serve("--config", str(path))
    assert result.returncode == 2
    assert json.loads(result.stdout)["__type"] == "ValidationException"


def test_serve_reports_a_port_it_cannot_have(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = serve("--port", str(port), "--state", f"sqlite:///{tmp_path / 's.db'}")
    assert result.returncode == 2
    answer = json.loads(result.stdout)
    assert "cannot listen" in answer["message"]


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_when_given_a_certificate(daemons: Daemons, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    daemon = daemons.start(
        state=f"sqlite:///{tmp_path / 'state.db'}",
        tls={"certificate": str(cert), "key": str(key)},
    )
    assert daemon.events("listening")[0]["url"].startswith("https://")
    client = boto3.client(
        "ssm",
        endpoint_url=f"https://127.0.0.1:{daemon.port}",
        region_name="us-east-1",
        aws_access_key_id=ALICE[0],
        aws_secret_access_key=ALICE[1],
        verify=str(cert),
    )
    answer = client.describe_automation_executions()
    assert answer["AutomationExecutionMetadataList"] == []
