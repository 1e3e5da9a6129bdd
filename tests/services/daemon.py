"""Real ``runbook serve`` processes for tests, and real clients for them.

``DaemonProcess`` writes a configuration file, starts ``python -m runbook_engine serve``
on a free loopback port (``listen: 127.0.0.1:0``; the port comes from the ``listening``
log line), and keeps every JSON log line it prints. A daemon that does not come up
fails the test with its log. The ``daemons`` fixture stops whatever a test started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ALICE = ("AKIDALICE0000000", "alice-secret")
BOB = ("AKIDBOB000000000", "bob-secret")
VIEWER = ("AKIDVIEWER000000", "viewer-secret")
LIMITED = ("AKIDLIMITED00000", "limited-secret")
CREDENTIALS = [
    {"access_key_id": ALICE[0], "secret_access_key": ALICE[1], "principal": "alice"},
    {"access_key_id": BOB[0], "secret_access_key": BOB[1], "principal": "bob"},
    {"access_key_id": VIEWER[0], "secret_access_key": VIEWER[1], "principal": "viewer"},
    {"access_key_id": LIMITED[0], "secret_access_key": LIMITED[1], "principal": "limited"},
]
POLICIES = {
    "viewer": {"operations": ["Get*", "Describe*"]},
    "limited": {"documents": ["quick-*"]},
}
START_TIMEOUT = 30.0


class DaemonProcess:
    def __init__(
        self,
        directory: Path,
        settings: dict[str, Any],
        name: str = "daemon",
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """``environment`` replaces ``os.environ`` as the process's base environment."""
        self.directory = directory
        self.name = name
        config = {
            "listen": "127.0.0.1:0",
            "credentials": CREDENTIALS,
            "policies": POLICIES,
            "poll_seconds": 0.2,
            **settings,
        }
        self.config_path = directory / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.port: int | None = None
        self._listening = threading.Event()
        env = {**(os.environ if environment is None else environment), "PYTHONUNBUFFERED": "1"}
        env.pop("RUNBOOK_STATE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runbook_engine", "serve", "--config", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=directory,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.raw.append(line)
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            self.lines.append(entry)
            if entry.get("event") == "listening":
                self.port = int(entry["port"])
                self._listening.set()
        self._listening.set()

    def wait_ready(self) -> DaemonProcess:
        if not self._listening.wait(START_TIMEOUT) or self.port is None:
            self.stop()
            pytest.fail(f"{self.name} did not start:\n{self.log()}", pytrace=False)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return "".join(self.raw[-80:])

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in list(self.lines) if line.get("event") == name]

    def client(self, key: tuple[str, str] = ALICE) -> Any:
        return boto3.client(
            "ssm",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key[0],
            aws_secret_access_key=key[1],
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, and the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            self._close()
            pytest.fail(f"{self.name} did not stop on SIGTERM:\n{self.log()}", pytrace=False)
        self._close()
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._close()

    def _close(self) -> None:
        """After the process ended: read its last lines, close the pipe."""
        self._reader.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()


class Daemons:
    """Starts daemons for one test and stops them all at its end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[DaemonProcess] = []

    def start(self, name: str = "daemon", wait: bool = True, **settings: Any) -> DaemonProcess:
        daemon = DaemonProcess(self.directory, settings, name)
        self.started.append(daemon)
        return daemon.wait_ready() if wait else daemon

    def stop_all(self) -> None:
        for daemon in self.started:
            daemon.stop()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    started = Daemons(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def signed_request(
    url: str,
    target: str,
    body: bytes,
    key: tuple[str, str] = ALICE,
    region: str = "us-east-1",
    headers: dict[str, str] | None = None,
) -> AWSRequest:
    """A request signed by botocore's own SigV4 signer, as boto3 would send it."""
    request = AWSRequest(
        method="POST",
        url=url + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"AmazonSSM.{target}",
            **(headers or {}),
        },
    )
    SigV4Auth(Credentials(*key), "ssm", region).add_auth(request)
    return request


def send(request: AWSRequest, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    """Send a prepared request as it is (``body`` replaces the signed body)."""
    prepared = request.prepare()
    data = prepared.body if body is None else body
    raw = urllib.request.Request(
        prepared.url, data=data, method="POST", headers=dict(prepared.headers.items())
    )
    try:
        with urllib.request.urlopen(raw, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait_for(predicate: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.1)
