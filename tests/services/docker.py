"""A private Docker engine for the test session, and a busybox base image.

Starts the Debian package's ``dockerd`` with its own data root, exec root and socket in a
temporary directory (no bridge, no iptables: the tests only ``exec`` into containers), so
it neither needs nor disturbs another engine on the machine. The base image is built
locally, since no registry is reachable: a folder with a static ``busybox`` and a link
per applet, packed with ``docker import``. If the engine cannot start, every test that
needs it fails with dockerd's log; none is skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import pytest

DOCKERD = "dockerd"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
IMAGE = "runbook-test/busybox:latest"
LABEL = "runbook.test"


@dataclass
class DockerEngine:
    url: str
    image: str
    client: docker.APIClient
    root: Path
    containers: list[str] = field(default_factory=list)

    def start_container(self, name: str | None = None, labels: dict[str, str] | None = None) -> str:
        """A running busybox container (removed at the end of the session)."""
        name = name or f"box-{uuid.uuid4().hex[:10]}"
        created = self.client.create_container(
            self.image,
            ["sleep", "86400"],
            name=name,
            labels={LABEL: "1", **(labels or {})},
            host_config=self.client.create_host_config(network_mode="none", init=True),
        )
        self.client.start(created["Id"])
        self.containers.append(name)
        return name

    def remove(self, name: str) -> None:
        try:
            self.client.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass


def _fail(message: str, log: Path) -> None:
    text = log.read_text(errors="replace")[-6000:] if log.exists() else "(no dockerd log)"
    pytest.fail(f"{message}\n--- dockerd log ---\n{text}", pytrace=False)


def _answers(url: str) -> bool:
    path = url.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX) as sock:  # cheap first: is anybody listening?
        try:
            sock.connect(path)
        except OSError:
            return False
    probe = docker.APIClient(base_url=url, version="1.41")
    try:
        return bool(probe.ping())
    except (docker.errors.DockerException, OSError):
        return False
    finally:
        probe.close()


def _busybox() -> str:
    for candidate in BUSYBOX_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    pytest.fail(
        "a static busybox is needed for the test image (tests/run.sh installs the Debian "
        "package 'busybox-static')",
        pytrace=False,
    )


def _build_image(url: str, root: Path) -> None:
    rootfs = root / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for folder in ("tmp", "etc", "root", "proc", "sys", "dev"):
        (rootfs / folder).mkdir()
    (rootfs / "tmp").chmod(0o1777)
    busybox = _busybox()
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    archive = subprocess.run(
        ["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True
    ).stdout
    imported = subprocess.run(
        ["docker", "-H", url, "import", "-c", "ENV PATH=/bin", "-", IMAGE],
        input=archive,
        capture_output=True,
    )
    if imported.returncode != 0:
        pytest.fail(
            f"docker import of the busybox image failed: {imported.stderr!r}", pytrace=False
        )


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    if shutil.which(DOCKERD) is None:
        pytest.fail(
            "dockerd is not installed (tests/run.sh installs the Debian package 'docker.io')",
            pytrace=False,
        )
    root = Path(tempfile.mkdtemp(prefix="runbook-docker-"))
    socket_path = root / "docker.sock"
    url = f"unix://{socket_path}"
    log = root / "dockerd.log"
    command = [
        DOCKERD,
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "dockerd.pid"),
        "--host", url,
        "--bridge", "none",
        "--iptables=false",
        "--ip6tables=false",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    client: docker.APIClient | None = None
    engine: DockerEngine | None = None
    try:
        deadline = time.monotonic() + 60
        while not _answers(url):
            if process.poll() is not None:
                _fail(f"dockerd exited with code {process.returncode}", log)
            if time.monotonic() > deadline:
                _fail("dockerd did not answer within 60 s", log)
            time.sleep(0.2)
        client = docker.APIClient(base_url=url, version="auto")
        _build_image(url, root)
        engine = DockerEngine(url, IMAGE, client, root)
        yield engine
    finally:
        if engine is not None:
            for name in engine.containers:
                engine.remove(name)
        if client is not None:
            client.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        subprocess.run(["umount", "-R", str(root / "data")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def container(docker_engine: DockerEngine) -> Iterator[Callable[..., str]]:
    """Start a fresh container for one test; removed when the test ends."""
    started: list[str] = []

    def start(name: str | None = None, labels: dict[str, str] | None = None) -> str:
        found = docker_engine.start_container(name, labels)
        started.append(found)
        return found

    yield start
    for name in started:
        docker_engine.remove(name)
