"""Exit code 194 on an SSH host: how long the engine takes beyond the host's own downtime.

A private sshd on 127.0.0.1 (tests/support/rebootable_sshd.py) whose reboot command kills
it and starts it again after ``--down`` seconds. Timed: ``SshTarget.reboot`` from the
reboot command to a command running on a new connection. Side by side, the floor: the
host's downtime (the script's 0.2 s delay before the kill, plus ``--down``) and a fresh
connection running ``true`` on the same sshd.

    python benchmarks/ssh_reboot.py [--down 1.0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runbook_engine.inventory import parse_inventory
from runbook_engine.targets import TargetPool
from tests.support.rebootable_sshd import rebootable_sshd

KILL_DELAY = 0.2  # the reboot script waits this long before killing sshd


async def one_reboot(entry: dict[str, object]) -> tuple[float, float]:
    """(seconds in reboot(), seconds for a fresh connection and ``true`` afterwards)."""
    instance = parse_inventory({"instances": [entry]}).get("host")
    pool = TargetPool()
    try:
        target = pool.target(instance)
        await target.run("true")
        started = time.perf_counter()
        await target.reboot(60)
        rebooted = time.perf_counter() - started
    finally:
        await pool.close()
    fresh = TargetPool()
    try:
        started = time.perf_counter()
        await fresh.target(instance).run("true")
        floor = time.perf_counter() - started
    finally:
        await fresh.close()
    return rebooted, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--down", type=float, default=1.0, help="seconds sshd stays down")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    took, floors = [], []
    for _ in range(args.repeat):
        with rebootable_sshd(args.down) as server:
            rebooted, floor = anyio.run(one_reboot, server.inventory_entry("host"))
        took.append(rebooted)
        floors.append(floor)
    downtime = KILL_DELAY + args.down
    median = statistics.median(took)
    print(f"reboot wait: median {median:.2f} s (min {min(took):.2f}, max {max(took):.2f})")
    print(
        f"host downtime: {downtime:.2f} s; fresh connection + true: {statistics.median(floors):.3f} s"
    )
    print(f"engine overhead beyond the downtime: {median - downtime:.2f} s")


if __name__ == "__main__":
    main()
