"""The peer of engine_overhead.py: a Prefect 3 flow of N no-op tasks.

Run with an interpreter that has Prefect installed (it is not a dependency of
runbook-engine): prints one JSON object with the in-flow and end-to-end times.
Prefect uses its default ephemeral local server and SQLite.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-bench-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, task


@task
def noop(i: int) -> int:
    return i


def main(steps: int) -> None:
    inside: dict[str, float] = {}

    @flow
    def many_noops() -> None:
        start = time.perf_counter()
        for i in range(steps):
            noop(i)
        inside["seconds"] = time.perf_counter() - start

    start = time.perf_counter()
    many_noops()
    end_to_end = time.perf_counter() - start
    print(json.dumps({"steps": steps, "in_flow_seconds": inside["seconds"],
                      "end_to_end_seconds": end_to_end}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
