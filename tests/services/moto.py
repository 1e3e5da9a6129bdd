"""The AWS emulator for the test session: ``moto_server`` on a loopback port.

Tests reach it over HTTP through ``AWS_ENDPOINT_URL``, with dummy credentials, exactly
as the engine reaches real AWS: no in-process mocks. Set up once per session:

- Lambda without Docker (moto's "simple" Lambda backend: an invocation answers with its
  payload, or with results queued through :meth:`MotoServer.queue_lambda_result`); the
  tests that run real function code use the server of tests/services/lambda_runtime.py;
- Step Functions that really run their state machines.

If the server cannot start, every test that needs it fails with the server's output.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass(frozen=True)
class MotoServer:
    url: str
    log: Path

    def environment(self) -> dict[str, str]:
        """What a client needs to reach the emulator (for subprocesses and monkeypatch)."""
        return {**AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": self.url}

    def post(self, path: str, body: object) -> None:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def queue_lambda_result(self, result: str) -> None:
        """The answer the next Lambda invocation gives (moto's simple Lambda backend)."""
        self.post(
            "/moto-api/static/lambda-simple/response",
            {"results": [result], "region": REGION, "account_id": ACCOUNT},
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _executable() -> str:
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        pytest.fail("moto_server is not installed (pip install 'moto[server]')", pytrace=False)
    return found


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url + "/moto-api/config", timeout=2) as answer:
                answer.read()
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(
        f"moto_server did not start on {url}:\n{log.read_text(errors='replace')}", pytrace=False
    )


@contextmanager
def running_moto(**environment: str) -> Iterator[MotoServer]:
    """A moto_server on a free loopback port for the duration of the block."""
    directory = Path(tempfile.mkdtemp(prefix="runbook-moto-"))
    log = directory / "server.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **AWS_ENVIRONMENT, **environment}
    env.pop("AWS_ENDPOINT_URL", None)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [_executable(), "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=directory,
        )
    try:
        _wait_until_up(url, process, log)
        yield MotoServer(url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with running_moto() as server:
        server.post(
            "/moto-api/config",
            {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}},
        )
        yield server


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """This test's boto3 (and the engine's) talk to the emulator."""
    point_clients_at(moto_server, monkeypatch)
    return moto_server


def point_clients_at(server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this test's AWS clients use ``server`` (and nothing from the user's setup)."""
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE")):
            monkeypatch.delenv(name)
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
