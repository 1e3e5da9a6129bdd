"""An SSH job in one channel and no helper process: the shell writes the job's files itself.

The generic remote job (:mod:`runbook_engine.targets.remote`) unpacks a tar archive of
the script, environment and stdin into a job directory, then removes the directory:
two more processes (``tar``, ``rm``) on the machine for every command, which on a fan-out
of ``echo ok`` cost as much as the command. Here the channel's stdin carries shell code
that the wrapper sources (``. /dev/stdin``, a builtin): ``printf`` (a builtin too) writes
the script, and stdin when there is one, to ``/tmp/runbook-<id>_script.sh`` and
``/tmp/runbook-<id>.in`` (created exclusively, owner-only), and ``export`` lines set the
environment. Nothing of the script or the values is on a command line. The script then
runs as before: in a session of its own (``setsid``), its process-group id in
``<job>.pid`` for the kill command, its files removed by one ``rm`` when it ends.

Text with a NUL byte cannot travel in a shell string; such a job takes the tar path.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from runbook_engine.targets.remote import MISSING_DIRECTORY, environment_file

UNPACK_FAILED = "runbook: cannot unpack the job's files"
UNPACK_EXIT = 254


def fits(script: str, stdin: bytes | None) -> bool:
    """Whether the job can travel as shell strings (no NUL byte)."""
    return "\0" not in script and not (stdin and b"\0" in stdin)


def _quoted(data: bytes) -> bytes:
    return b"'" + data.replace(b"'", b"'\\''") + b"'"


def script_path(job: str, interpreter: Sequence[str]) -> str:
    return f"{job}_script.ps1" if "pwsh" in interpreter[0] else f"{job}_script.sh"


def payload(
    job: str,
    interpreter: Sequence[str],
    script: str,
    env: Mapping[str, str] | None,
    stdin: bytes | None,
) -> bytes:
    """The shell code the wrapper sources: write the files, export the environment."""
    failed = f" || {{ echo {shlex.quote(UNPACK_FAILED)} >&2; exit {UNPACK_EXIT}; }}\n".encode()
    parts = [b"umask 077\nset -C\n"]
    files = [(script_path(job, interpreter), script.encode("utf-8"))]
    if stdin:
        files.append((f"{job}.in", stdin))
    for path, data in files:
        parts.append(b"printf '%s' " + _quoted(data) + b" >" + shlex.quote(path).encode())
        parts.append(failed)
    parts.append(b"set +C\n")
    parts.append(environment_file(env))
    return b"".join(parts)


def _files(job: str, interpreter: Sequence[str]) -> str:
    names = [script_path(job, interpreter), f"{job}.in", f"{job}.pid", f"{job}.cancelled"]
    return " ".join(shlex.quote(name) for name in names)


def wrapper(job: str, interpreter: Sequence[str], cwd: str | None, has_stdin: bool) -> str:
    """Source the payload, then run the script as the generic wrapper does."""
    q = shlex.quote
    files = _files(job, interpreter)
    run = " ".join(q(part) for part in interpreter) + f" {q(script_path(job, interpreter))}"
    source = q(f"{job}.in") if has_stdin else "/dev/null"
    unpack = f"{{ echo {q(UNPACK_FAILED)} >&2; exit {UNPACK_EXIT}; }}"
    lines = [f"if [ -r /dev/stdin ]; then . /dev/stdin; else {unpack}; fi"]
    if cwd:
        message = q(MISSING_DIRECTORY.format(cwd=cwd))
        missing = f"{{ echo {message} >&2; rm -f {files}; exit 1; }}"
        lines.append(f"cd -- {q(cwd)} 2>/dev/null || {missing}")
    lines += [
        f"if [ -e {q(job + '.cancelled')} ]; then rm -f {files}; exit 137; fi",
        "if command -v setsid >/dev/null 2>&1; then",
        f"  setsid {run} <{source} &",
        "else",
        f"  {run} <{source} &",
        "fi",
        f"echo $! >{q(job + '.pid')}",
        "wait $!",
        "rc=$?",
        f"rm -f {files}",
        "exit $rc",
    ]
    return "\n".join(lines)


def killer(job: str, interpreter: Sequence[str]) -> str:
    """Kill the job's process group and remove its files; wait briefly for a wrapper
    that has written the script but not started it (it then finds the ``cancelled`` mark)."""
    q = shlex.quote
    files = _files(job, interpreter)
    script = q(script_path(job, interpreter))
    pid = q(job + ".pid")
    return "\n".join(
        [
            f"[ -e {script} ] || exit 0",
            f": >{q(job + '.cancelled')}",
            "i=0",
            "while [ $i -lt 50 ]; do",
            f"  if [ -s {pid} ]; then p=$(cat {pid});"
            f' kill -9 "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null; rm -f {files}; exit 0; fi',
            f"  [ -e {script} ] || {{ rm -f {files}; exit 0; }}",
            "  sleep 0.1; i=$((i+1))",
            "done",
            f"rm -f {files}",  # never started: a late wrapper finds no script and fails
        ]
    )
