"""The machine the engine runs on: scripts run as child processes.

Each script starts in a session of its own; a timeout or a cancellation kills the whole
process group and reaps it before returning, so nothing the script started keeps
changing the machine after the step was recorded as finished. Environment values are
added to the engine's own environment, as a login shell would have them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio

from runbook_engine.plugin import ActionError
from runbook_engine.processes import run_in_process_group
from runbook_engine.targets import KILLED_EXIT_CODE, CommandResult, TargetUnavailable

log = logging.getLogger("runbook_engine.targets")

PLATFORMS = {"Linux": "Linux", "Darwin": "MacOS", "Windows": "Windows"}


def local_platform() -> str:
    return PLATFORMS.get(platform.system(), platform.system())


def _script_file(script: str, suffix: str) -> str:
    """Save the script to a new owner-only file in the temporary directory; its path.

    One file, not a directory of its own: making and removing a directory per run cost
    about 2.5 ms (more than starting the script), a file about 0.03 ms. The name is random
    and the file created exclusively (as ``mkstemp`` does), so nothing else can plant it.
    """
    path = os.path.join(tempfile.gettempdir(), f"runbook-{uuid.uuid4().hex}{suffix}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o700)
    with open(descriptor, "wb") as file:
        file.write(script.encode("utf-8"))
    return path


@functools.lru_cache(maxsize=64)
def _program(name: str, search_path: str | None) -> str:
    """``name`` found on ``search_path`` once, not by every start: the child would try
    ``execve`` in each directory of PATH before the one that holds it. A name not found
    stays as it is (the start then fails as a shell reports it: 127)."""
    if os.sep in name:
        return name
    return shutil.which(name, path=search_path) or name


def missing_directory(cwd: str) -> CommandResult:
    return CommandResult(1, "", f"working directory {cwd} does not exist or is not a directory\n")


class LocalTarget:
    def __init__(self, instance_id: str = "localhost", *, platform: str | None = None) -> None:
        self.instance_id = instance_id
        self.platform = platform or local_platform()

    async def run(
        self,
        script: str,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        time_limit: float | None = None,
        stdin: bytes | None = None,
        interpreter: Sequence[str] = ("sh",),
    ) -> CommandResult:
        if cwd and not await anyio.Path(cwd).is_dir():
            return missing_directory(cwd)
        suffix = "_script.ps1" if "pwsh" in interpreter[0] else "_script.sh"
        path = _script_file(script, suffix)
        try:
            environment = {**os.environ, **(env or {})}
            program = _program(interpreter[0], environment.get("PATH"))
            return await self._process(
                [program, *interpreter[1:], path], environment, cwd, time_limit, stdin
            )
        finally:
            with contextlib.suppress(FileNotFoundError):  # the script may remove itself
                os.unlink(path)

    async def _process(
        self,
        argv: list[str],
        env: Mapping[str, str],
        cwd: str | None,
        time_limit: float | None,
        stdin: bytes | None,
    ) -> CommandResult:
        try:
            outcome = await run_in_process_group(
                argv, stdin=stdin, cwd=cwd or None, env=env, time_limit=time_limit
            )
        except ActionError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):  # as a shell reports it
                return CommandResult(127, "", f"{argv[0]}: not found\n")
            raise TargetUnavailable(self.instance_id, exc.message) from exc
        if outcome.timed_out:
            return CommandResult(
                KILLED_EXIT_CODE, outcome.stdout_text, outcome.stderr_text, timed_out=True
            )
        code = outcome.exit_code if outcome.exit_code is not None else KILLED_EXIT_CODE
        if code < 0:  # killed by a signal: report it the way a shell does
            code = 128 - code
        return CommandResult(code, outcome.stdout_text, outcome.stderr_text)

    async def copy(self, source: str | Path | bytes, remote_path: str) -> None:
        destination = await anyio.Path(remote_path).expanduser()
        await destination.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            await destination.write_bytes(source)
        else:
            await anyio.to_thread.run_sync(shutil.copy, Path(source), Path(destination))

    async def reboot(self, time_limit: float) -> None:
        # Rebooting the engine's own machine would end the run; SSM's agent re-runs the
        # script after the reboot, so the local target re-runs it without one.
        log.warning(
            "%s: exit code 194 asks for a reboot; the local host is not rebooted, "
            "the script runs again",
            self.instance_id,
        )

    async def close(self) -> None:
        return None
