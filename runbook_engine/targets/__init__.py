"""Targets: the machines a command runs on, behind one protocol.

Every kind (``local``, ``ssh``, ``docker``) passes the same contract tests
(tests/test_targets_contract.py): run a script with stdin, environment and working
directory, collect stdout, stderr and the exit code, stop it on timeout or cancellation
(the remote process really dies), copy a file, restart the machine for exit code 194.

Errors::

    TargetError (runbook_engine.errors)     an instance id or target spec is wrong
     └── TargetUnavailable                  cannot reach or use the machine now
                                            (connection refused, key refused, unknown
                                            host key, container gone); names the instance

:class:`TargetPool` hands out targets for inventory instances and keeps one connection
per host (one SSH connection with many channels, one Docker API client per engine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runbook_engine.errors import TargetError

if TYPE_CHECKING:
    from runbook_engine.inventory import Instance
    from runbook_engine.targets.docker import DockerClients
    from runbook_engine.targets.ssh import SshConnections

KILLED_EXIT_CODE = -1  # what a run reports when its time limit killed it


class TargetUnavailable(TargetError):
    """The machine cannot be reached or used; ``instance_id`` says which one."""

    def __init__(self, instance_id: str, message: str) -> None:
        super().__init__(f"{instance_id}: {message}")
        self.instance_id = instance_id
        self.partial: CommandResult | None = None  # output produced before the failure


@dataclass(frozen=True)
class CommandResult:
    exit_code: int  # KILLED_EXIT_CODE when timed out; 128+N when killed by signal N
    stdout: str
    stderr: str
    timed_out: bool = False


class Target(Protocol):
    """One machine a script can run on."""

    instance_id: str
    platform: str  # "Linux", "MacOS", "Windows": what Command document preconditions see

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
        """Run ``script`` (saved to a file, started as ``interpreter + [file]``).

        ``time_limit`` (seconds) kills the script and everything it started and returns what was
        produced so far with ``timed_out=True``; cancellation kills it too and re-raises.
        A working directory that does not exist gives exit code 1 and a message on stderr.
        """
        ...

    async def copy(self, source: str | Path | bytes, remote_path: str) -> None:
        """Write a local file (or bytes) to ``remote_path``, creating its directory."""
        ...

    async def reboot(self, time_limit: float) -> None:
        """Restart the machine and wait until it answers again (exit code 194)."""
        ...

    async def close(self) -> None: ...


class TargetPool:
    """Targets for inventory instances; one pooled connection per host or engine.

    The SSH and Docker modules (asyncssh, the Docker SDK: about 0.5 s of imports) are
    loaded when a target of their kind is first asked for, not for a local fan-out.
    """

    def __init__(self) -> None:
        self._ssh: SshConnections | None = None
        self._docker: DockerClients | None = None

    @property
    def ssh(self) -> SshConnections:
        if self._ssh is None:
            from runbook_engine.targets.ssh import SshConnections

            self._ssh = SshConnections()
        return self._ssh

    @property
    def docker(self) -> DockerClients:
        if self._docker is None:
            from runbook_engine.targets.docker import DockerClients

            self._docker = DockerClients()
        return self._docker

    def target(self, instance: Instance) -> Target:
        from runbook_engine.inventory import DockerSpec, LocalSpec, SshSpec

        spec = instance.connection
        if isinstance(spec, SshSpec):
            from runbook_engine.targets.ssh import SshTarget

            return SshTarget(instance.id, spec, self.ssh, platform=instance.platform)
        if isinstance(spec, DockerSpec):
            from runbook_engine.targets.docker import DockerTarget

            return DockerTarget(instance.id, spec, self.docker, platform=instance.platform)
        assert isinstance(spec, LocalSpec)
        from runbook_engine.targets.local import LocalTarget

        return LocalTarget(instance.id, platform=instance.platform)

    async def close(self) -> None:
        if self._ssh is not None:
            await self._ssh.close()
        if self._docker is not None:
            await self._docker.close()


__all__ = [
    "KILLED_EXIT_CODE",
    "CommandResult",
    "Target",
    "TargetPool",
    "TargetUnavailable",
]
