"""A private OpenSSH server for the test session, on a loopback port.

Runs the Debian package's ``/usr/sbin/sshd`` in the foreground with its own config, host
key, authorized key and pid file in a temporary directory; the user is whoever runs the
tests (root in CI). ``known_hosts`` holds the server's key, so host-key verification is
on, as in production. ``MaxSessions``/``MaxStartups`` are raised for fan-out tests.
If sshd cannot start, every test that needs it fails with sshd's own log; none is skipped.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshServer:
    host: str
    port: int
    user: str
    identity_file: str
    known_hosts: str
    other_key: str  # a key the server does not accept
    root: Path

    def inventory_entry(self, instance_id: str, **extra: object) -> dict[str, object]:
        ssh = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "identity_file": self.identity_file,
            "known_hosts": self.known_hosts,
            **extra,
        }
        return {"id": instance_id, "ssh": ssh}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _fail(message: str, log: Path) -> None:
    text = log.read_text(errors="replace") if log.exists() else "(no sshd log)"
    pytest.fail(f"{message}\n--- sshd log ---\n{text}", pytrace=False)


def _wait_for_banner(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _fail(f"sshd exited with code {process.returncode}", log)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    _fail("sshd did not answer within 15 s", log)


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.fail(
            f"OpenSSH server is not installed ({SSHD}; tests/run.sh installs the Debian "
            "package 'openssh-server')",
            pytrace=False,
        )
    root = Path(tempfile.mkdtemp(prefix="runbook-sshd-"))
    root.chmod(0o700)
    host_key, user_key, other_key = root / "host_key", root / "user_key", root / "other_key"
    for key in (host_key, user_key, other_key):
        _keygen(key)
    authorized = root / "authorized_keys"
    authorized.write_text((root / "user_key.pub").read_text())
    authorized.chmod(0o600)
    port = _free_port()
    known_hosts = root / "known_hosts"
    public = (root / "host_key.pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress 127.0.0.1:{port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {root / 'sshd.pid'}",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "MaxSessions 200",
                "MaxStartups 200:30:400",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation directory
    log = root / "sshd.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_banner(port, process, log)
        yield SshServer(
            "127.0.0.1",
            port,
            getpass.getuser(),
            str(user_key),
            str(known_hosts),
            str(other_key),
            root,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
