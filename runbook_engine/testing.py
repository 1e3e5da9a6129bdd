"""A public test kit: fault injection for crash tests of code built on runbook-engine.

``KillAfterWrites`` wraps a state store and kills its own process with SIGKILL right
after the N-th committed write, the harshest crash there is: nothing after that commit
runs, not even ``finally`` blocks. The ``runbook`` command installs it when the
environment variable ``RUNBOOK_KILL_AFTER_WRITES`` is set, so tests can crash a real
``runbook run`` at an exact point and check that ``runbook resume`` finishes the job.
"""

from __future__ import annotations

import os
import signal
from typing import Any

KILL_AFTER_WRITES_ENV = "RUNBOOK_KILL_AFTER_WRITES"
WRITES = (
    "create_execution",
    "update_execution",
    "put_step",
    "record_steps_and_execution",
)


class KillAfterWrites:
    def __init__(self, store: Any, writes: int) -> None:
        self._store = store
        self._left = writes

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name not in WRITES:
            return attribute

        async def counted(*args: Any, **kwargs: Any) -> Any:
            result = await attribute(*args, **kwargs)
            self._left -= 1
            if self._left <= 0:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        return counted


def kill_after_writes_from(environ: dict[str, str] | os._Environ[str]) -> int | None:
    raw = environ.get(KILL_AFTER_WRITES_ENV)
    return int(raw) if raw and raw.isdigit() else None
