"""What SSH and Docker targets share: a job directory and a POSIX shell wrapper.

A run takes two remote commands (SSH sends both in one channel, and its shell writes the
files itself: :mod:`runbook_engine.targets.ssh_job`):

1. the job's files (script, environment, stdin) go to ``/tmp/runbook-<id>/`` as one tar
   stream (``tar -x`` over SSH, the archive API on Docker);
2. ``sh -c WRAPPER`` changes to the working directory, sources the environment file
   (values are never pasted into a command line or the script), starts the script in a
   session of its own with ``setsid`` and writes its process-group id to a file, waits,
   removes the job directory and exits with the script's code.

A timeout or a cancellation runs a third command that kills that process group, so the
remote script and everything it started stop even though closing an SSH channel or a
Docker exec stream would not stop them. A kill that comes before the script started
leaves a ``cancelled`` mark the wrapper checks before starting it.
"""

from __future__ import annotations

import io
import re
import shlex
import tarfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import anyio

from runbook_engine.targets import KILLED_EXIT_CODE, CommandResult, TargetUnavailable

JOB_ROOT = "/tmp"
KILL_GRACE = 10.0  # seconds the kill command may take before we give up on it
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MISSING_DIRECTORY = "working directory {cwd} does not exist or is not a directory"


def _text(chunks: list[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", errors="replace")


def environment_file(env: Mapping[str, str] | None) -> bytes:
    lines = []
    for name, value in (env or {}).items():
        if not ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid environment variable name")
        lines.append(f"export {name}={shlex.quote(str(value))}\n")
    return "".join(lines).encode("utf-8")


def job_archive(job: str, files: Mapping[str, bytes]) -> bytes:
    """A tar of ``job/`` holding ``files`` (owner-only permissions)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        folder = tarfile.TarInfo(job)
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o700
        archive.addfile(folder)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{job}/{name}")
            info.size = len(data)
            info.mode = 0o700 if name.startswith("_script") else 0o600
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def file_archive(name: str, data: bytes, mode: int = 0o644) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def wrapper(job_dir: str, script_name: str, interpreter: Sequence[str], cwd: str | None) -> str:
    j = shlex.quote(job_dir)
    run = " ".join(shlex.quote(part) for part in interpreter) + f" {j}/{script_name}"
    lines = []
    if cwd:
        message = shlex.quote(MISSING_DIRECTORY.format(cwd=cwd))
        lines.append(
            f"cd -- {shlex.quote(cwd)} 2>/dev/null || {{ echo {message} >&2; rm -rf {j}; exit 1; }}"
        )
    lines += [
        f". {j}/env",
        f"if [ -e {j}/cancelled ]; then rm -rf {j}; exit 137; fi",
        "if command -v setsid >/dev/null 2>&1; then",
        f"  setsid {run} <{j}/stdin &",
        "else",
        f"  {run} <{j}/stdin &",
        "fi",
        f"echo $! >{j}/pid",
        "wait $!",
        "rc=$?",
        f"rm -rf {j}",
        "exit $rc",
    ]
    return "\n".join(lines)


def killer(job_dir: str) -> str:
    """Kill the job's process group and remove the job (a wrapper whose SSH channel was
    closed may die before its own cleanup); wait briefly for a wrapper not yet started."""
    j = shlex.quote(job_dir)
    return "\n".join(
        [
            f"[ -d {j} ] || exit 0",
            f": >{j}/cancelled",
            "i=0",
            "while [ $i -lt 50 ]; do",
            f"  if [ -s {j}/pid ]; then p=$(cat {j}/pid);"
            f' kill -9 "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null; rm -rf {j}; exit 0; fi',
            f"  [ -d {j} ] || exit 0",
            "  sleep 0.1; i=$((i+1))",
            "done",
            f"rm -rf {j}",  # never started: a late wrapper finds no job and exits
        ]
    )


class RemoteShellTarget(ABC):
    """A target reached through a transport that can run ``sh -c`` and unpack a tar."""

    instance_id: str
    platform: str

    @abstractmethod
    async def _exec(
        self, command: str, stdin: bytes | None, out: list[bytes], err: list[bytes]
    ) -> int:
        """Run ``sh -c command``; append output to ``out``/``err`` as it arrives, so that
        output survives cancellation; return the exit code (128+N when killed by N)."""

    @abstractmethod
    async def _unpack(self, directory: str, archive: bytes) -> None:
        """Extract a tar archive into ``directory`` (which exists)."""

    async def _run_job(
        self, archive: bytes, command: str, out: list[bytes], err: list[bytes]
    ) -> int:
        """Put the job's files in place, then run the wrapper. A transport that can send
        the archive on the command's stdin does both in one round trip."""
        await self._unpack(JOB_ROOT, archive)
        return await self._exec(command, None, out, err)

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
        name = "runbook-" + uuid.uuid4().hex
        job_dir = f"{JOB_ROOT}/{name}"
        script_name = "_script.ps1" if "pwsh" in interpreter[0] else "_script.sh"
        files = {
            script_name: script.encode("utf-8"),
            "env": environment_file(env),
            "stdin": stdin or b"",
        }
        archive = job_archive(name, files)
        command = wrapper(job_dir, script_name, interpreter, cwd)
        return await self._supervise(
            lambda out, err: self._run_job(archive, command, out, err),
            killer(job_dir),
            time_limit,
        )

    async def _supervise(
        self,
        job: Callable[[list[bytes], list[bytes]], Awaitable[int]],
        kill_command: str,
        time_limit: float | None,
    ) -> CommandResult:
        """Run ``job`` (it appends output as it arrives); past ``time_limit``, or when
        cancelled, run ``kill_command`` to stop what it started on the machine."""
        out: list[bytes] = []
        err: list[bytes] = []
        finished = False
        code = KILLED_EXIT_CODE
        try:
            with anyio.move_on_after(time_limit):
                code = await job(out, err)
                finished = True
        except TargetUnavailable as exc:
            finished = True  # nothing left to kill, or no way to reach it
            exc.partial = CommandResult(KILLED_EXIT_CODE, _text(out), _text(err))
            raise
        finally:
            if not finished:
                with anyio.CancelScope(shield=True), anyio.move_on_after(KILL_GRACE):
                    await self._exec(kill_command, None, [], [])
        if not finished:
            return CommandResult(KILLED_EXIT_CODE, _text(out), _text(err), timed_out=True)
        return CommandResult(code, _text(out), _text(err))

    async def copy(self, source: str | Path | bytes, remote_path: str) -> None:
        data = source if isinstance(source, bytes) else await anyio.Path(source).read_bytes()
        mode = 0o644
        if not isinstance(source, bytes) and (await anyio.Path(source).stat()).st_mode & 0o111:
            mode = 0o755
        directory, _, name = remote_path.rpartition("/")
        directory = directory or "/"
        errors: list[bytes] = []
        code = await self._exec(f"mkdir -p -- {shlex.quote(directory)}", None, [], errors)
        if code != 0:
            raise TargetUnavailable(
                self.instance_id, f"cannot create {directory}: {_text(errors).strip()}"
            )
        await self._unpack(directory, file_archive(name, data, mode))
