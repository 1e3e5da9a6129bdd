"""Real Lambda code in the tests: runtime images for moto's Docker Lambda backend, built here.

moto runs a function in a container of ``<repository>:<runtime>`` (by default
``docker.io/mlupin/docker-lambda:python3.11``), after filling a volume with the code through
a ``busybox`` container. It pulls an image only when the engine lacks it, and no registry
is reachable here, so both are made locally on the private test engine
(tests/services/docker.py):

- ``docker.io/library/busybox:latest``: a second tag of that module's busybox image;
- the Python runtime: a root filesystem holding the interpreter running the tests, the
  shared libraries ``ldd`` lists for it and its extension modules, its standard library
  without tests, IDLE, tkinter, ensurepip and the like, and our entrypoint
  (lambda_bootstrap.py), packed with ``docker import``.

The archive is cached in pytest's cache directory under a hash of what goes into it (paths,
sizes and modification times of the files, the bootstrap's text), so a later session only
imports it; an image already on the engine with the same hash is kept as it is. Building
it takes a few seconds (see README). If anything fails, the tests that need it fail.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.services.docker import DockerEngine
from tests.services.moto import MotoServer, point_clients_at, running_moto

REPOSITORY = "docker.io/mlupin/docker-lambda"  # moto's default Lambda image repository
BUSYBOX = "docker.io/library/busybox:latest"  # the image moto fills code volumes with
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
BOOTSTRAP_IN_IMAGE = "/var/runtime/bootstrap.py"
CONTENT_LABEL = "runbook.test.content"
FORMAT = "1"  # bump when the layout below changes, to invalidate cached archives

# Parts of the standard library a handler has no use for (big or test-only).
LEFT_OUT = frozenset(
    {"test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
     "pydoc_data", "site-packages", "dist-packages", "distutils"}
)  # fmt: skip
LEFT_OUT_MODULES = ("_test", "_xxtest", "xx", "_tkinter", "_ctypes_test")

# Asked of the interpreter itself (-I -S: its own installation, not the test venv).
LAYOUT_PROBE = """
import json, os, sys, sysconfig
print(json.dumps({
    "executable": os.path.realpath(sys.executable),
    "version": "%d.%d" % sys.version_info[:2],
    "stdlib": os.path.dirname(os.__file__),
    "dynload": sysconfig.get_config_var("DESTSHARED") or "",
}))
"""


@dataclass(frozen=True)
class Interpreter:
    executable: Path
    version: str  # "3.11"
    stdlib: Path
    dynload: Path

    @property
    def runtime(self) -> str:
        return f"python{self.version}"


@dataclass(frozen=True)
class PythonRuntime:
    """A runtime image on the test engine, as moto will look for it."""

    runtime: str  # what create_function's Runtime names, e.g. python3.11
    image: str
    content: str  # hash of what the image holds
    built_in: float | None  # seconds the archive took to build, None when it was cached


def interpreter(executable: str | None = None) -> Interpreter:
    found = subprocess.run(
        [
            executable or getattr(sys, "_base_executable", sys.executable),
            "-I",
            "-S",
            "-c",
            LAYOUT_PROBE,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    layout = json.loads(found.stdout)
    dynload = Path(layout["dynload"] or Path(layout["stdlib"]) / "lib-dynload")
    return Interpreter(
        Path(layout["executable"]), layout["version"], Path(layout["stdlib"]), dynload
    )


def _standard_library(root: Path) -> Iterator[Path]:
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if name not in LEFT_OUT)
        here = Path(folder)
        for name in sorted(files):
            wanted = name.endswith(".py") or (name.endswith(".pyc") and ".opt-" not in name)
            if wanted and (here / name).exists():  # not a dangling link
                yield here / name


def _extension_modules(dynload: Path) -> list[Path]:
    return sorted(
        path for path in dynload.glob("*.so") if not path.name.startswith(LEFT_OUT_MODULES)
    )


def shared_libraries(binaries: Iterable[Path]) -> list[Path]:
    """What the dynamic loader maps for these binaries (``ldd``), the loader included."""
    listed = subprocess.run(
        ["ldd", *map(str, binaries)], capture_output=True, text=True, check=False
    ).stdout
    found: set[str] = set()
    for line in listed.splitlines():
        words = line.split()
        if "=>" in words and len(words) > words.index("=>") + 1:
            target = words[words.index("=>") + 1]
            if target.startswith("/"):
                found.add(target)
        elif words and words[0].startswith("/") and not line.endswith(":"):
            found.add(words[0])  # the loader: "/lib64/ld-linux-x86-64.so.2 (0x...)"
    if not found:
        pytest.fail(f"ldd listed no shared libraries for the Python runtime:\n{listed}")
    return [Path(path) for path in sorted(found)]


def runtime_files(python: Interpreter) -> list[Path]:
    modules = _extension_modules(python.dynload)
    libraries = shared_libraries([python.executable, *modules])
    return [python.executable, *libraries, *modules, *_standard_library(python.stdlib)]


def content_hash(files: list[Path]) -> str:
    digest = hashlib.sha256(FORMAT.encode())
    digest.update(BOOTSTRAP.read_bytes())
    for path in files:
        stat = path.stat()  # follows links: the content that is packed
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _folders(files: list[Path]) -> list[str]:
    folders = {"tmp", "var/task", "var/runtime", "opt", "etc", "proc", "sys", "dev"}
    for path in files:
        folders.update(str(parent).lstrip("/") for parent in path.parents if str(parent) != "/")
    return sorted(folders)


def write_archive(files: list[Path], python: Interpreter, target: Path) -> None:
    """The root filesystem as a tar (files at their own paths, links resolved)."""
    partial = target.with_suffix(f".{os.getpid()}.partial")  # sessions may build at once
    with tarfile.open(partial, "w", dereference=True) as archive:
        for folder in _folders(files):
            entry = tarfile.TarInfo(folder)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            archive.addfile(entry)
        for path in files:
            archive.add(str(path), arcname=str(path).lstrip("/"), recursive=False)
        extra = {
            BOOTSTRAP_IN_IMAGE: BOOTSTRAP.read_bytes(),
            "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
        }
        for name, data in extra.items():
            entry = tarfile.TarInfo(name.lstrip("/"))
            entry.size, entry.mode = len(data), 0o644
            archive.addfile(entry, io.BytesIO(data))
    partial.rename(target)


def _library_path(files: list[Path]) -> str:
    folders = {str(path.parent) for path in files if ".so" in path.name}
    return ":".join(sorted(folders))


def _image_content(client: docker.APIClient, image: str) -> str | None:
    try:
        labels = client.inspect_image(image)["Config"].get("Labels") or {}
    except docker.errors.ImageNotFound:
        return None
    return labels.get(CONTENT_LABEL)


def build_python_runtime(
    engine: DockerEngine, cache: Path, executable: str | None = None
) -> PythonRuntime:
    """The Python runtime image on this engine, built or taken from the cache: made of
    ``executable`` (the interpreter running the tests by default)."""
    python = interpreter(executable)
    image = f"{REPOSITORY}:{python.runtime}"
    files = runtime_files(python)
    content = content_hash(files)
    if _image_content(engine.client, image) == content:
        return PythonRuntime(python.runtime, image, content, None)
    archive = cache / f"{python.runtime}-{content[:16]}.tar"
    built_in = None
    if not archive.exists():
        for stale in cache.glob(f"{python.runtime}-*.tar"):
            stale.unlink()
        started = time.monotonic()
        write_archive(files, python, archive)
        built_in = time.monotonic() - started
    changes = [
        f"ENV PATH=/usr/local/bin:/usr/bin:/bin:{python.executable.parent}",
        f"ENV LD_LIBRARY_PATH={_library_path(files)}",
        "ENV LANG=C.UTF-8 TZ=:UTC LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime",
        "WORKDIR /var/task",
        f'ENTRYPOINT ["{python.executable}", "-B", "{BOOTSTRAP_IN_IMAGE}"]',
        f"LABEL {CONTENT_LABEL}={content}",
    ]
    command = ["docker", "-H", engine.url, "import"]
    for change in changes:
        command += ["-c", change]
    imported = subprocess.run([*command, str(archive), image], capture_output=True, text=True)
    if imported.returncode != 0:
        archive.unlink(missing_ok=True)  # maybe damaged: build it afresh next time
        pytest.fail(f"docker import of the Lambda runtime failed: {imported.stderr}")
    return PythonRuntime(python.runtime, image, content, built_in)


def tag_busybox(engine: DockerEngine) -> None:
    repository, tag = BUSYBOX.rsplit(":", 1)
    engine.client.tag(engine.image, repository, tag)


@pytest.fixture(scope="session")
def lambda_runtime(
    docker_engine: DockerEngine,
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> PythonRuntime:
    """The images moto's Docker Lambda backend needs, on the test engine."""
    tag_busybox(docker_engine)
    pytest_cache = getattr(pytestconfig, "cache", None)  # None under -p no:cacheprovider
    if pytest_cache is not None:
        cache = Path(pytest_cache.mkdir("lambda-runtime"))
    else:  # -p no:cacheprovider: build for this session only
        cache = tmp_path_factory.mktemp("lambda-runtime")
    return build_python_runtime(docker_engine, cache)


@pytest.fixture(scope="session")
def lambda_moto(docker_engine: DockerEngine, lambda_runtime: PythonRuntime) -> Iterator[MotoServer]:
    """An emulator whose Lambda runs function code in containers on the test engine.

    A server of its own, so that the session's ``moto_server`` keeps its simple Lambda
    backend and does not need the engine. The containers get no network at all.
    """
    with running_moto(
        DOCKER_HOST=docker_engine.url,
        MOTO_DOCKER_LAMBDA_IMAGE=REPOSITORY,  # tried first: no lookup in other registries
        MOTO_DOCKER_NETWORK_MODE="none",
    ) as server:
        server.post("/moto-api/config", {"lambda": {"use_docker": True}})
        yield server


@pytest.fixture
def lambda_aws_env(lambda_moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """This test's boto3 (and the engine's) talk to the emulator that runs Lambda code."""
    point_clients_at(lambda_moto, monkeypatch)
    return lambda_moto
