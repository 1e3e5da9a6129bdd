"""A private OpenSSH server that a "reboot command" can take down and bring back.

Each test gets its own ``/usr/sbin/sshd`` on a loopback port, started as a daemon with a
pid file. Its :attr:`RebootableSshd.reboot_command` starts, detached from the SSH session,
a script that kills that sshd and its per-connection processes (by the pids the pid file
and ``pgrep -P`` give, nothing else) -- every connection drops, as in a reboot -- then,
after ``down_for`` seconds, starts the same sshd again with the same host key. With
``comes_back=False`` it stays down. Each reboot is one line in ``reboots.log``.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class RebootableSshd:
    root: Path
    port: int
    user: str
    identity_file: str
    known_hosts: str
    reboot_command: str

    @property
    def pid(self) -> int:
        return int((self.root / "sshd.pid").read_text().strip())

    @property
    def reboots(self) -> int:
        log = self.root / "reboots.log"
        return len(log.read_text().splitlines()) if log.exists() else 0

    def inventory_entry(self, instance_id: str, **extra: object) -> dict[str, object]:
        ssh = {
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "identity_file": self.identity_file,
            "known_hosts": self.known_hosts,
            "reboot_command": self.reboot_command,
            **extra,
        }
        return {"id": instance_id, "ssh": ssh}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _start(root: Path, port: int) -> None:
    command = [SSHD, "-f", str(root / "sshd_config"), "-E", str(root / "sshd.log")]
    started = subprocess.run(command, capture_output=True, text=True, check=False)
    deadline = time.monotonic() + 15
    while started.returncode == 0 and time.monotonic() < deadline:
        if _answers(port):
            return
        time.sleep(0.1)
    log = (root / "sshd.log").read_text(errors="replace") if (root / "sshd.log").exists() else ""
    pytest.fail(f"sshd did not start: {started.stderr}\n--- sshd log ---\n{log}", pytrace=False)


def _stop(root: Path) -> None:
    """Kill the daemon and its connection processes, by pid (as the reboot script does)."""
    pid_file = root / "sshd.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().strip())
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    for found in [pid, *(int(c) for c in children.stdout.split())]:
        try:
            os.kill(found, signal.SIGTERM)
        except ProcessLookupError:
            pass


@contextmanager
def rebootable_sshd(down_for: float = 1.0, *, comes_back: bool = True) -> Iterator[RebootableSshd]:
    root = Path(tempfile.mkdtemp(prefix="runbook-reboot-sshd-"))
    root.chmod(0o700)
    for key in ("host_key", "user_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)],
            check=True,
            capture_output=True,
        )
    (root / "authorized_keys").write_text((root / "user_key.pub").read_text())
    port = _free_port()
    public = (root / "host_key.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
    (root / "sshd_config").write_text(
        "\n".join(
            [
                f"ListenAddress 127.0.0.1:{port}",
                f"HostKey {root / 'host_key'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                f"PidFile {root / 'sshd.pid'}",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    r = shlex.quote(str(root))
    restart = (
        f"sleep {down_for}; {SSHD} -f {r}/sshd_config -E {r}/sshd.log" if comes_back else "true"
    )
    (root / "reboot.sh").write_text(
        "sleep 0.2\n"
        f"echo reboot >> {r}/reboots.log\n"
        f"pid=$(cat {r}/sshd.pid)\n"
        'kill $pid $(pgrep -P "$pid") 2>/dev/null\n'
        f"rm -f {r}/sshd.pid\n"
        f"{restart}\n"
        f"rm -f {r}/rebooting\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation directory
    _start(root, port)
    server = RebootableSshd(
        root,
        port,
        getpass.getuser(),
        str(root / "user_key"),
        str(root / "known_hosts"),
        f"touch {r}/rebooting; setsid sh {r}/reboot.sh </dev/null >/dev/null 2>&1 &",
    )
    try:
        yield server
    finally:
        deadline = time.monotonic() + down_for + 10
        while (root / "rebooting").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # a reboot still under way would start sshd after the stop
        _stop(root)
        shutil.rmtree(root, ignore_errors=True)
