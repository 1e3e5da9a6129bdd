"""The environment for the processes a benchmark spawns (``runbook``, the daemon, peers).

An installed Python package runs from bytecode: pip compiles every module when it
installs a wheel, and an editable install writes ``__pycache__`` the first time a module
is imported. A development shell that sets ``PYTHONDONTWRITEBYTECODE=1`` (this repository's
machines do) breaks that: every ``runbook`` process would compile about a hundred of its
own modules from source again (0.2 s of CPU per process on a slow machine), which no
user of an installed engine pays. So the spawned processes get:

* ``PYTHONDONTWRITEBYTECODE`` removed, so the first (untimed) run writes bytecode, and
* ``PYTHONPYCACHEPREFIX`` set to a directory inside the benchmark's own temporary root, so
  that bytecode goes there (nothing is written into the source tree or the virtualenv, and
  it is deleted with the rest of the benchmark's files).

Peers (Ansible, ...) get the same environment, so they run from bytecode too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cli_env(root: Path, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default ``os.environ``) with bytecode written under ``root/pycache``."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cache = root / "pycache"
    cache.mkdir(parents=True, exist_ok=True)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    env.update(extra)
    return env
