"""Who drives an execution: the lease an engine takes before driving one, renews while it
drives, and takes over at once from a dead process of this host."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import anyio

from runbook_engine.errors import LeaseLost
from runbook_engine.records import ExecutionRecord
from runbook_engine.store import StateStore


def new_owner(nonce: str) -> str:
    """A lease owner name: ``host:pid:nonce`` (see ``owner_process_gone``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{nonce}"


def owner_process_gone(owner: str, hostname: str | None = None) -> bool:
    """Has the process named by a lease owner (``host:pid:nonce``) ended? Only a process
    of this host can be checked; anything unsure counts as alive (another host, a pid we
    may not signal, a pid reused since), and then the lease expires as usual. A zombie
    (killed, not yet reaped by its parent) runs nothing: gone. The host name stands for
    the pid namespace: containers sharing one database need distinct host names (as they
    have by default).
    """
    host, _, rest = owner.rpartition(":")
    host, _, pid_text = host.rpartition(":")
    if not rest or host != (hostname or socket.gethostname()) or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


async def claim(
    store: StateStore, execution_id: str, owner: str, lease_seconds: float, now: datetime
) -> ExecutionRecord | None:
    """Take the lease; a lease left by a dead process of this host is taken over at once.

    Waiting ``lease_seconds`` after a ``kill -9`` would make ``runbook resume`` fail
    right after a crash, although the pid in the owner string proves nobody runs the
    execution. Releasing compares the owner, and claiming is atomic, so of several
    processes taking over at once exactly one wins.
    """
    claimed = await store.claim(execution_id, owner, lease_seconds, now)
    if claimed is None:
        holder = (await store.get_execution(execution_id)).owner
        if holder is not None and owner_process_gone(holder):
            await store.release(execution_id, holder)
            claimed = await store.claim(execution_id, owner, lease_seconds, now)
    return claimed


async def heartbeat(
    store: StateStore,
    execution_id: str,
    owner: str,
    lease_seconds: float,
    now: Callable[[], datetime],
) -> None:
    """Renew the lease every third of its length until cancelled; raise ``LeaseLost`` when
    another process took the execution over, which stops the driving."""
    while True:
        await anyio.sleep(lease_seconds / 3)
        if not await store.renew(execution_id, owner, lease_seconds, now()):
            raise LeaseLost(f"Execution {execution_id} was taken over by another process")
