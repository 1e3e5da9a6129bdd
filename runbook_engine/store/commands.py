"""Stored Run Command commands (SendCommand) and their per-instance invocations.

A command row holds the request (document text, parameters, targets, rate control),
the aggregate status and counts, a cancellation request, and the lease of the daemon
running it; an invocation row holds one instance's status, exit code, full stdout and
stderr, timings and plugin results. Every finished invocation is written as it
finishes, so a daemon restart loses nothing that ended.

Leases work as for executions: the daemon that runs a command renews ``lease_expires``;
a command whose lease ran out (its daemon died) is ``adopt``-ed by another daemon, which
resumes it from its invocation rows (``runbook_engine.daemon.command_runner``).
Writes are column-scoped (progress, cancellation, lease) so that a CancelCommand on one
daemon and progress written by another never overwrite one another.

``CommandRepository`` is the protocol; ``MemoryCommands`` here and ``SqlCommands``
(``sql_commands``) implement it, carried by the stores as ``store.commands``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from runbook_engine.errors import RunbookError, StoreError

COMMAND_STATUSES = (
    "Pending",
    "InProgress",
    "Success",
    "Cancelled",
    "Failed",
    "TimedOut",
    "Cancelling",
)
RUNNING_STATUSES = ("Pending", "InProgress", "Cancelling")
ALL_INSTANCES = "*"


class CommandMissing(RunbookError):
    code = "InvalidCommandId"


@dataclass(frozen=True)
class CommandRecord:
    command_id: str
    document_name: str
    document_version: str
    document_content: str  # the text run, so that another daemon can resume it
    requested: datetime
    requested_by: str
    status: str = "Pending"
    status_details: str = "Pending"
    comment: str = ""
    parameters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    instance_ids: Sequence[str] = ()  # as requested
    targets: Sequence[Mapping[str, Any]] = ()
    max_concurrency: str = "50"
    max_errors: str = "0"
    timeout_seconds: int | None = None
    target_count: int = 0
    completed_count: int = 0
    error_count: int = 0
    delivery_timed_out_count: int = 0
    cancel_requested: Sequence[str] | None = None  # instance ids, or (ALL_INSTANCES,)
    owner: str | None = None
    lease_expires: datetime | None = None

    def cancels(self, instance_id: str) -> bool:
        wanted = self.cancel_requested or ()
        return ALL_INSTANCES in wanted or instance_id in wanted


@dataclass(frozen=True)
class InvocationRecord:
    command_id: str
    instance_id: str
    sequence: int  # the instance's place in the command's target list
    instance_name: str = ""
    status: str = "Pending"
    status_details: str = "Pending"
    response_code: int = -1
    start_time: datetime | None = None
    end_time: datetime | None = None
    stdout: str = ""  # in full; the API truncates
    stderr: str = ""
    plugins: Sequence[Mapping[str, Any]] = ()  # CommandPlugin shapes (epoch-free ISO times)
    failed: bool = False  # counted toward MaxErrors

    @property
    def terminal(self) -> bool:
        return self.status not in ("Pending", "InProgress", "Delayed", "Cancelling")


@dataclass(frozen=True)
class Progress:
    """What the runner writes as invocations finish."""

    status: str
    status_details: str
    target_count: int
    completed_count: int
    error_count: int
    delivery_timed_out_count: int


@dataclass(frozen=True)
class CommandQuery:
    """ListCommands / ListCommandInvocations: every given field must match. ``statuses``
    match the command (ListCommands) or the invocation (ListCommandInvocations)."""

    command_id: str | None = None
    instance_id: str | None = None
    statuses: tuple[str, ...] = ()
    document_name: str | None = None
    invoked_after: datetime | None = None
    invoked_before: datetime | None = None


class CommandRepository(Protocol):
    async def create(self, command: CommandRecord, invocations: Sequence[InvocationRecord]) -> None:
        """Store a new command with its Pending invocations, in one transaction."""

    async def get(self, command_id: str) -> CommandRecord:
        """``CommandMissing`` if there is none."""

    async def list_commands(
        self, query: CommandQuery, *, limit: int, offset: int = 0
    ) -> list[CommandRecord]:
        """Commands matching ``query``, newest first."""

    async def list_invocations(
        self, query: CommandQuery, *, limit: int, offset: int = 0
    ) -> list[InvocationRecord]:
        """Invocations matching ``query``: newest command first, then target order."""

    async def save_invocation(self, invocation: InvocationRecord) -> None:
        """Write (insert or replace) one invocation."""

    async def record_progress(self, command_id: str, progress: Progress) -> None:
        """Write the command's status and counts (nothing else)."""

    async def request_cancel(self, command_id: str, instance_ids: Sequence[str]) -> CommandRecord:
        """Add instances (or ALL_INSTANCES) to the cancellation request of a running
        command, whose status becomes Cancelling; a finished command is left as it is.
        Returns the command as stored now."""

    async def renew(self, command_id: str, owner: str, expires: datetime) -> CommandRecord | None:
        """Extend the lease ``owner`` holds; the command as stored (its cancellation
        request), or None when the lease is no longer ``owner``'s."""

    async def release(self, command_id: str, owner: str) -> None:
        """Give the lease up (a stopping daemon), so another daemon adopts the command now."""

    async def adopt(self, owner: str, expires: datetime, now: datetime) -> CommandRecord | None:
        """Take the lease of one running command nobody holds a live lease on."""


def _matches(command: CommandRecord, query: CommandQuery) -> bool:
    return (
        (query.command_id is None or command.command_id == query.command_id)
        and (query.document_name is None or command.document_name == query.document_name)
        and (query.invoked_after is None or command.requested >= query.invoked_after)
        and (query.invoked_before is None or command.requested <= query.invoked_before)
    )


class MemoryCommands:
    def __init__(self) -> None:
        self._commands: dict[str, CommandRecord] = {}
        self._invocations: dict[str, dict[str, InvocationRecord]] = {}

    async def create(self, command: CommandRecord, invocations: Sequence[InvocationRecord]) -> None:
        if command.command_id in self._commands:
            raise StoreError(f"command {command.command_id} already exists")
        self._commands[command.command_id] = command
        self._invocations[command.command_id] = {i.instance_id: i for i in invocations}

    async def get(self, command_id: str) -> CommandRecord:
        try:
            return self._commands[command_id]
        except KeyError:
            raise CommandMissing(f"Command {command_id} does not exist") from None

    def _newest_first(self) -> list[CommandRecord]:
        order = list(self._commands.values())
        order.reverse()  # insertion order is creation order
        return order

    async def list_commands(
        self, query: CommandQuery, *, limit: int, offset: int = 0
    ) -> list[CommandRecord]:
        found = [
            c
            for c in self._newest_first()
            if _matches(c, query)
            and (not query.statuses or c.status in query.statuses)
            and (query.instance_id is None or query.instance_id in self._invocations[c.command_id])
        ]
        return found[offset : offset + limit]

    async def list_invocations(
        self, query: CommandQuery, *, limit: int, offset: int = 0
    ) -> list[InvocationRecord]:
        found: list[InvocationRecord] = []
        for command in self._newest_first():
            if not _matches(command, query):
                continue
            for invocation in sorted(
                self._invocations[command.command_id].values(), key=lambda i: i.sequence
            ):
                if query.instance_id is not None and invocation.instance_id != query.instance_id:
                    continue
                if query.statuses and invocation.status not in query.statuses:
                    continue
                found.append(invocation)
        return found[offset : offset + limit]

    async def save_invocation(self, invocation: InvocationRecord) -> None:
        await self.get(invocation.command_id)
        self._invocations[invocation.command_id][invocation.instance_id] = invocation

    async def record_progress(self, command_id: str, progress: Progress) -> None:
        command = await self.get(command_id)
        self._commands[command_id] = replace(
            command,
            status=progress.status,
            status_details=progress.status_details,
            target_count=progress.target_count,
            completed_count=progress.completed_count,
            error_count=progress.error_count,
            delivery_timed_out_count=progress.delivery_timed_out_count,
        )

    async def request_cancel(self, command_id: str, instance_ids: Sequence[str]) -> CommandRecord:
        command = await self.get(command_id)
        if command.status not in RUNNING_STATUSES:
            return command
        wanted = merge_cancel(command.cancel_requested, instance_ids)
        command = replace(
            command, cancel_requested=wanted, status="Cancelling", status_details="Cancelling"
        )
        self._commands[command_id] = command
        return command

    async def renew(self, command_id: str, owner: str, expires: datetime) -> CommandRecord | None:
        command = await self.get(command_id)
        if command.owner != owner:
            return None
        command = replace(command, lease_expires=expires)
        self._commands[command_id] = command
        return command

    async def release(self, command_id: str, owner: str) -> None:
        command = await self.get(command_id)
        if command.owner == owner:
            self._commands[command_id] = replace(command, owner=None, lease_expires=None)

    async def adopt(self, owner: str, expires: datetime, now: datetime) -> CommandRecord | None:
        for command in self._commands.values():
            free = command.owner is None or (
                command.lease_expires is not None and command.lease_expires < now
            )
            if command.status in RUNNING_STATUSES and free:
                adopted = replace(command, owner=owner, lease_expires=expires)
                self._commands[command.command_id] = adopted
                return adopted
        return None


def merge_cancel(current: Sequence[str] | None, instance_ids: Sequence[str]) -> tuple[str, ...]:
    """The cancellation request after adding ``instance_ids`` (empty: every instance)."""
    if not instance_ids or ALL_INSTANCES in (current or ()):
        return (ALL_INSTANCES,)
    merged = list(current or ())
    merged.extend(i for i in instance_ids if i not in merged)
    return tuple(merged)
