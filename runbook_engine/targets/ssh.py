"""SSH hosts through asyncssh: one pooled connection per host, one channel per command.

Host keys are verified against ``known_hosts`` (the inventory's file, else
``~/.ssh/known_hosts``) unless the inventory says ``verify_host_key: false``; then every
connection logs a warning naming the host, so the opt-out stays visible. Channels on one
connection are limited to ``max_sessions`` (OpenSSH's ``MaxSessions``, 10 by default);
more commands for the same host wait for a free channel.

asyncssh runs on asyncio: SSH targets need the engine on anyio's asyncio backend (the
default). Every failure to connect or to keep the connection becomes :class:`TargetUnavailable`
naming the instance, the address and the reason: refused connection, unknown host key,
refused key, lost connection.

Exit code 194 reboots the host with the inventory's ``reboot_command`` (by default
``/sbin/reboot``, through ``sudo -n`` unless the user is root), then waits for the
connection to drop and for the host to accept SSH again, and reconnects.
"""

from __future__ import annotations

import logging
import os
import shlex
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import asyncssh

from runbook_engine.targets import CommandResult, TargetUnavailable, ssh_job
from runbook_engine.targets.remote import JOB_ROOT, RemoteShellTarget
from runbook_engine.targets.ssh_job import UNPACK_EXIT, UNPACK_FAILED

if TYPE_CHECKING:
    from runbook_engine.inventory import SshSpec

log = logging.getLogger("runbook_engine.targets")

BOOT_ID = "cat /proc/sys/kernel/random/boot_id 2>/dev/null || true"
REBOOT_COMMAND_GRACE = 30.0  # seconds the reboot command may run before we just wait
REBOOT_FAILURE_GRACE = 5.0  # after a failing reboot command, the host may still go down
RECONNECT_DELAY = 0.5  # between attempts to reach a rebooting host
READ_SIZE = 65536


def _address(spec: SshSpec) -> str:
    return f"{spec.user + '@' if spec.user else ''}{spec.host}:{spec.port}"


def _reason(exc: BaseException, spec: SshSpec) -> str:
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        source = spec.known_hosts or "~/.ssh/known_hosts"
        return (
            f"the host key of {spec.host}:{spec.port} is not trusted by {source} ({exc.reason}); "
            "add it (ssh-keyscan) or set verify_host_key: false in the inventory"
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        key = spec.identity_file or "the default keys"
        return f"authentication refused for user {spec.user or '(default)'} with {key}"
    if isinstance(exc, asyncssh.ConnectionLost):
        return f"connection lost: {exc.reason}"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"disconnected: {exc.reason}"
    if isinstance(exc, asyncssh.ChannelOpenError):
        return f"the server refused a new channel: {exc.reason}"
    if isinstance(exc, TimeoutError):
        return "connection timed out"
    if isinstance(exc, OSError):
        if exc.errno:  # asyncio words refusals as "Connect call failed"; say what errno says
            return os.strerror(exc.errno)
        return exc.strerror or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Pooled:
    connection: asyncssh.SSHClientConnection | None
    connecting: anyio.Lock
    channels: anyio.Semaphore


class SshConnections:
    """One connection per (host, port, user, key, host-key policy), opened on first use."""

    def __init__(self) -> None:
        self._pool: dict[tuple[object, ...], _Pooled] = {}

    @staticmethod
    def _key(spec: SshSpec) -> tuple[object, ...]:
        return (
            spec.host,
            spec.port,
            spec.user,
            spec.identity_file,
            spec.known_hosts,
            spec.verify_host_key,
            spec.password,
        )

    def _entry(self, spec: SshSpec) -> _Pooled:
        key = self._key(spec)
        entry = self._pool.get(key)
        if entry is None:
            entry = _Pooled(None, anyio.Lock(), anyio.Semaphore(spec.max_sessions))
            self._pool[key] = entry
        return entry

    async def get(
        self, instance_id: str, spec: SshSpec
    ) -> tuple[asyncssh.SSHClientConnection, anyio.Semaphore]:
        entry = self._entry(spec)
        async with entry.connecting:
            connection = entry.connection
            if connection is None or connection.is_closed():
                entry.connection = None
                connection = await self._connect(instance_id, spec)
                entry.connection = connection
            return connection, entry.channels

    async def _connect(self, instance_id: str, spec: SshSpec) -> asyncssh.SSHClientConnection:
        if not spec.verify_host_key:
            log.warning(
                "%s: the host key of %s is NOT verified (verify_host_key: false)",
                instance_id,
                _address(spec),
            )
        known_hosts: object = None
        if spec.verify_host_key:
            known_hosts = spec.known_hosts or ()  # () is asyncssh's ~/.ssh/known_hosts
        keys = [spec.identity_file] if spec.identity_file else ()
        try:
            with anyio.fail_after(spec.connect_timeout):
                return await asyncssh.connect(
                    spec.host,
                    spec.port,
                    username=spec.user,
                    password=spec.password,
                    client_keys=keys,
                    known_hosts=known_hosts,
                    config=None,
                    agent_path=None if spec.identity_file else (),
                    keepalive_interval=15,
                )
        except (OSError, asyncssh.Error) as exc:
            raise TargetUnavailable(
                instance_id, f"cannot connect to {_address(spec)}: {_reason(exc, spec)}"
            ) from exc

    async def forget(self, spec: SshSpec) -> None:
        """Close and drop the pooled connection (lost, or the host reboots)."""
        entry = self._pool.get(self._key(spec))
        if entry is None or entry.connection is None:
            return
        connection, entry.connection = entry.connection, None
        connection.close()
        with anyio.move_on_after(5):
            await connection.wait_closed()

    async def close(self) -> None:
        for entry in self._pool.values():
            if entry.connection is not None:
                entry.connection.close()
        for entry in self._pool.values():
            if entry.connection is not None:
                with anyio.move_on_after(5):
                    await entry.connection.wait_closed()
                entry.connection = None


class SshTarget(RemoteShellTarget):
    def __init__(
        self,
        instance_id: str,
        spec: SshSpec,
        connections: SshConnections,
        *,
        platform: str | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.spec = spec
        self.platform = platform or "Linux"
        self._connections = connections

    async def _exec(
        self, command: str, stdin: bytes | None, out: list[bytes], err: list[bytes]
    ) -> int:
        connection, channels = await self._connections.get(self.instance_id, self.spec)
        try:
            async with (
                channels,
                connection.create_process(
                    f"sh -c {shlex.quote(command)}", encoding=None
                ) as process,
            ):
                if stdin is not None:
                    process.stdin.write(stdin)
                process.stdin.write_eof()
                problems: list[BaseException] = []
                async with anyio.create_task_group() as group:
                    group.start_soon(_read, process.stdout, out, problems)
                    group.start_soon(_read, process.stderr, err, problems)
                if problems:
                    raise problems[0]
                completed = await process.wait()
        except (OSError, asyncssh.Error) as exc:
            if isinstance(exc, asyncssh.DisconnectError | OSError):
                await self._connections.forget(self.spec)
            raise TargetUnavailable(
                self.instance_id, f"{_address(self.spec)}: {_reason(exc, self.spec)}"
            ) from exc
        if completed.exit_signal:
            return 128 + _signal_number(completed.exit_signal[0])
        return completed.exit_status if completed.exit_status is not None else -1

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
        """One channel, no ``tar``/``mkdir`` on the machine (:mod:`.ssh_job`); a job
        that cannot travel as shell strings takes the generic tar path."""
        if not ssh_job.fits(script, stdin):
            return await super().run(
                script, env=env, cwd=cwd, time_limit=time_limit, stdin=stdin,
                interpreter=interpreter,
            )  # fmt: skip
        job = f"{JOB_ROOT}/runbook-{uuid.uuid4().hex}"
        data = ssh_job.payload(job, interpreter, script, env, stdin)
        command = ssh_job.wrapper(job, interpreter, cwd, bool(stdin))

        async def start(out: list[bytes], err: list[bytes]) -> int:
            code = await self._exec(command, data, out, err)
            self._check_unpacked(code, err)
            return code

        return await self._supervise(start, ssh_job.killer(job, interpreter), time_limit)

    def _check_unpacked(self, code: int, err: list[bytes]) -> None:
        if code == UNPACK_EXIT and UNPACK_FAILED.encode() in b"".join(err):
            raise TargetUnavailable(
                self.instance_id,
                f"cannot write the job under {JOB_ROOT}: "
                f"{b''.join(err).decode(errors='replace').strip()}",
            )

    async def _run_job(
        self, archive: bytes, command: str, out: list[bytes], err: list[bytes]
    ) -> int:
        # One channel: the archive arrives on stdin, which the script never reads (its
        # own stdin is a file of the job).
        unpack = (
            f"tar -x -o -f - -C {JOB_ROOT} || "
            f"{{ echo {shlex.quote(UNPACK_FAILED)} >&2; exit {UNPACK_EXIT}; }}"
        )
        code = await self._exec(f"{unpack}\n{command}", archive, out, err)
        self._check_unpacked(code, err)
        return code

    async def _unpack(self, directory: str, archive: bytes) -> None:
        errors: list[bytes] = []
        code = await self._exec(f"tar -x -o -f - -C {shlex.quote(directory)}", archive, [], errors)
        if code != 0:
            raise TargetUnavailable(
                self.instance_id,
                f"cannot write files under {directory}: "
                f"{b''.join(errors).decode(errors='replace').strip()}",
            )

    async def reboot(self, time_limit: float) -> None:
        """Exit code 194: run the inventory's ``reboot_command`` on the pooled connection,
        wait for that connection to drop (the host went down), drop it from the pool, then
        connect again until the host is back. Both waits together take at most
        ``time_limit``; a host that never goes down, or never comes back, is a
        :class:`TargetUnavailable` naming it and the address.

        "Back" means a command runs on a new connection after the host refused one, or
        reports another boot id: right after the drop, a host that is shutting down may
        still accept a connection, and a script run there would die with it."""
        command = self.spec.reboot_command
        connection, _channels = await self._connections.get(self.instance_id, self.spec)
        waiting_for, last_error = "go down", ""
        with anyio.move_on_after(time_limit):
            before = await self._boot_id()
            await self._start_reboot(connection, command)
            await connection.wait_closed()
            await self._connections.forget(self.spec)
            waiting_for, was_down = "come back", False
            while True:
                try:
                    now = await self._boot_id()
                except TargetUnavailable as exc:
                    was_down = True
                    last_error = f" (last attempt: {exc.message.split(': ', 2)[-1]})"
                else:
                    if was_down or (before and now != before):
                        return
                    await self._connections.forget(self.spec)  # still on its way down
                await anyio.sleep(RECONNECT_DELAY)
        raise TargetUnavailable(
            self.instance_id,
            f"{_address(self.spec)} did not {waiting_for} within {time_limit:.0f} s of "
            f"the reboot{last_error}; reboot command: {command!r}",
        )

    async def _boot_id(self) -> str:
        """The kernel's boot id (Linux); empty where there is none."""
        out: list[bytes] = []
        await self._exec(BOOT_ID, None, out, [])
        return b"".join(out).decode(errors="replace").strip()

    async def _start_reboot(self, connection: asyncssh.SSHClientConnection, command: str) -> None:
        """Run the reboot command. It may not return (the host goes down under it), may be
        killed, or may return at once (``shutdown -r now``); an ordinary failure (``sudo``
        wants a password) with the host still up is reported with its stderr."""
        out: list[bytes] = []
        err: list[bytes] = []
        code = 0
        with anyio.move_on_after(REBOOT_COMMAND_GRACE):
            try:
                code = await self._exec(command, None, out, err)
            except TargetUnavailable:
                return  # the connection dropped under the command: the reboot started
        if code in (0, -1) or code >= 128:
            return
        with anyio.move_on_after(REBOOT_FAILURE_GRACE):
            await connection.wait_closed()
            return
        said = b"".join(err or out).decode(errors="replace").strip()
        raise TargetUnavailable(
            self.instance_id,
            f"the reboot command {command!r} failed on {_address(self.spec)} "
            f"(exit code {code}){': ' + said if said else ''}; set reboot_command in the inventory",
        )

    async def close(self) -> None:
        return None  # connections belong to the pool


async def _read(
    stream: asyncssh.SSHReader[bytes], chunks: list[bytes], problems: list[BaseException]
) -> None:
    """Copy a stream into ``chunks``; a lost connection is noted, not raised, so that the
    other stream's reader finishes and the caller sees one plain error."""
    try:
        while True:
            chunk = await stream.read(READ_SIZE)
            if not chunk:
                return
            chunks.append(chunk)
    except (OSError, asyncssh.Error) as exc:
        problems.append(exc)


def _signal_number(name: str) -> int:
    import signal

    try:
        return int(signal.Signals[f"SIG{name}"])
    except KeyError:
        return 0
