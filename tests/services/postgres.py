"""A private PostgreSQL cluster for the test session, on a loopback port.

Uses the Debian package's binaries (``/usr/lib/postgresql/<version>/bin``): ``initdb``
into a temporary directory, ``pg_ctl start`` on a free port of 127.0.0.1 with its socket
in that directory, password (scram-sha-256) authentication, stopped and deleted at the
end of the session. ``initdb`` refuses to run as root, so as root the cluster belongs to
the ``postgres`` OS user. If the cluster cannot start, every test that needs it fails
with the server's log; none is skipped.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

USER = "runbook"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database of this server."""
        return (
            f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{database}"
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its URL."""
        name = name or f"test_{secrets.token_hex(6)}"
        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _binaries() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    pytest.fail(
        "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb"
        " (tests/run.sh installs the Debian package 'postgresql')",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else "(no server log)"


class _Cluster:
    def __init__(self) -> None:
        self.bin = _binaries()
        self.root = Path(tempfile.mkdtemp(prefix="runbook-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self.password = secrets.token_urlsafe(16)
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                account = pwd.getpwnam("postgres")  # created by the Debian package
            except KeyError:
                pytest.fail(
                    "initdb refuses to run as root and there is no 'postgres' OS user"
                    " to own the test cluster (reinstall the Debian package 'postgresql')",
                    pytrace=False,
                )
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.owner = (account.pw_uid, account.pw_gid)

    def run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        result = subprocess.run(
            [*prefix, *command], cwd=self.root, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            pytest.fail(
                f"PostgreSQL test cluster: {' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n--- server log ---\n{_log(self.logfile)}",
                pytrace=False,
            )

    def init(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.as_root:
            os.chown(pwfile, *self.owner)
        self.run(
            str(self.bin / "initdb"),
            "-D", str(self.data),
            "-U", USER,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        pwfile.unlink()

    def start(self) -> int:
        port = _free_port()
        options = f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1"
        self.run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile),
            "-w", "-t", "60", "-o", options, "start",
        )  # fmt: skip
        return port

    def stop(self) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run(
            [*prefix, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"],
            cwd=self.root,
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    cluster = _Cluster()
    try:
        cluster.init()
        port = cluster.start()
        server = PostgresServer("127.0.0.1", port, USER, cluster.password)
        try:
            server.create_database("runbook_test")
        except psycopg.Error as exc:
            pytest.fail(
                f"PostgreSQL test cluster does not answer: {exc}\n{_log(cluster.logfile)}",
                pytrace=False,
            )
        yield server
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """One database shared by the whole session."""
    return postgres_server.url("runbook_test")


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> str:
    """A new, empty database for one test."""
    return postgres_server.create_database()
