"""Docker: the golden-image runbook end to end, seconds.

Runs the bundled ``runbooks/golden-image.yaml`` (launch a container from a base image,
configure it and test it with shell commands over ``docker exec``, commit it, remove the
container) through the engine with a SQLite store, on a private ``dockerd`` started here
as the tests start it (its own data root and socket, no network, a busybox image made
with ``docker import``). Beside it, the floor: the same Docker work done directly with the
Docker SDK (create, start, two execs, commit, remove) in one process.

    PYTHONPATH=. python benchmarks/golden_image.py [--repeat 5]   # uses tests/services/docker.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import docker

from runbook_engine import Engine
from runbook_engine.inventory import parse_inventory
from runbook_engine.settings import Settings
from runbook_engine.status import Status
from tests.services.docker import IMAGE, _answers, _build_image

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = str(ROOT / "runbooks" / "golden-image.yaml")
CONFIGURE = "mkdir -p /opt/app && echo 'version=1' > /opt/app/app.conf"
TEST = "grep -q version=1 /opt/app/app.conf"


@contextmanager
def private_dockerd() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="bench-docker-"))
    url = f"unix://{root / 'docker.sock'}"
    log = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(
        ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "dockerd.pid"), "--host", url, "--bridge", "none",
         "--iptables=false", "--ip6tables=false"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"dockerd did not start; see {root / 'dockerd.log'}")
            time.sleep(0.2)
        _build_image(url, root)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        subprocess.run(["umount", "-R", str(root / "data")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def engine_run(url: str, state: str, number: int) -> tuple[float, dict[str, float]]:
    inventory = parse_inventory({"discover": {"docker": {"url": url}}})

    async def main() -> tuple[float, dict[str, float]]:
        async with Engine(
            state, settings=Settings(poll_interval=0.05, principal="bench"), inventory=inventory
        ) as engine:
            started = time.perf_counter()
            view = await engine.run(
                GOLDEN, {"BaseImageId": IMAGE, "ImageName": f"golden/bench-{number}"}
            )
            wall = time.perf_counter() - started
        if view.status != Status.SUCCESS:
            raise SystemExit(f"golden-image failed: {view.execution.failure_message}")
        steps = {
            r.step_name: (r.end_time - r.start_time).total_seconds()
            for r in view.steps
            if r.start_time and r.end_time
        }
        client = docker.APIClient(base_url=url, version="auto")
        client.remove_image(view.step("createImage").outputs["ImageId"], force=True)
        client.close()
        return wall, steps

    return anyio.run(main)


def sdk_floor(url: str, number: int) -> float:
    client = docker.APIClient(base_url=url, version="auto")
    started = time.perf_counter()
    created = client.create_container(
        IMAGE, ["sleep", "2147483647"], host_config=client.create_host_config(init=True)
    )
    client.start(created["Id"])
    for command in (CONFIGURE, TEST):
        run = client.exec_create(created["Id"], ["/bin/sh", "-c", command])
        client.exec_start(run["Id"])
        assert client.exec_inspect(run["Id"])["ExitCode"] == 0
    image = client.commit(created["Id"], repository=f"floor/bench-{number}", tag="latest")
    client.remove_container(created["Id"], force=True)
    wall = time.perf_counter() - started
    client.remove_image(image["Id"], force=True)
    client.close()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with private_dockerd() as url, tempfile.TemporaryDirectory() as directory:
        state = f"sqlite:///{directory}/state.db"
        engine_run(url, state, 0)  # warm-up: imports, first container
        runs = [engine_run(url, state, n + 1) for n in range(args.repeat)]
        floors = [sdk_floor(url, n) for n in range(args.repeat)]
    walls = [wall for wall, _ in runs]
    print(f"golden-image runbook, Docker, {args.repeat} runs (load {os.getloadavg()[0]:.1f})")
    print(f"  engine end to end: best {min(walls):.3f} s, median {statistics.median(walls):.3f} s")
    print(f"  floor, Docker SDK directly: best {min(floors):.3f} s, "
          f"median {statistics.median(floors):.3f} s")  # fmt: skip
    best = runs[walls.index(min(walls))][1]
    print("  steps of the best run: " + ", ".join(f"{k} {v:.3f} s" for k, v in best.items()))


if __name__ == "__main__":
    main()
