"""``add_signal_and_wake`` on every state store: the signal, the wake-up and the claim of a
signalled execution in one call, with the lease rules of ``claim``."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from runbook_engine.errors import ExecutionNotFound, StaleRecord
from runbook_engine.records import ExecutionRecord
from runbook_engine.status import Status
from runbook_engine.store import StateStore
from tests.store_examples import T0, execution, signal, step

pytestmark = pytest.mark.anyio

LATER = T0 + timedelta(hours=1)


def parked(execution_id: str = "e", **changes: object) -> ExecutionRecord:
    """An execution waiting at an approval, parked until ``LATER``, nobody driving it."""
    fields: dict[str, object] = {
        "owner": None,
        "lease_expires": None,
        "version": 0,
        "status": Status.WAITING,
        "wake_at": LATER,
        "end_time": None,
    }
    fields.update(changes)
    return execution(execution_id, **fields)


async def test_a_free_execution_is_woken_and_claimed_with_its_signal(store: StateStore) -> None:
    await store.create_execution(parked())
    claimed = await store.add_signal_and_wake(signal("e"), T0, owner="a", lease_seconds=30)
    assert claimed is not None
    assert (claimed.owner, claimed.lease_expires) == ("a", T0 + timedelta(seconds=30))
    assert (claimed.wake_at, claimed.version, claimed.status) == (T0, 1, Status.WAITING)
    assert await store.get_execution("e") == claimed
    assert [s.type for s in await store.get_signals("e")] == ["Approve"]


async def test_a_live_lease_of_another_owner_is_kept_but_the_execution_is_woken(
    store: StateStore,
) -> None:
    await store.create_execution(parked())
    held = await store.claim("e", "b", 30, now=T0)
    assert held is not None
    moment = T0 + timedelta(seconds=10)
    assert await store.add_signal_and_wake(signal("e"), moment, owner="a", lease_seconds=30) is None
    stored = await store.get_execution("e")
    assert (stored.owner, stored.lease_expires) == ("b", held.lease_expires)
    assert (stored.wake_at, stored.version) == (moment, held.version + 1)
    assert len(await store.get_signals("e")) == 1


async def test_an_expired_lease_or_the_owners_own_is_taken(store: StateStore) -> None:
    await store.create_execution(parked("old"))
    await store.create_execution(parked("mine"))
    await store.claim("old", "b", 30, now=T0)
    await store.claim("mine", "a", 30, now=T0)
    moment = T0 + timedelta(seconds=31)
    taken = await store.add_signal_and_wake(signal("old"), moment, owner="a", lease_seconds=30)
    assert taken is not None and taken.owner == "a"
    again = await store.add_signal_and_wake(signal("mine"), moment, owner="a", lease_seconds=30)
    assert again is not None and again.lease_expires == moment + timedelta(seconds=30)


async def test_without_an_owner_it_only_wakes_and_not_twice(store: StateStore) -> None:
    await store.create_execution(parked())
    assert await store.add_signal_and_wake(signal("e"), T0) is None
    woken = await store.get_execution("e")
    assert (woken.wake_at, woken.version, woken.owner) == (T0, 1, None)
    # Due already: the second signal is stored, the execution is left as it is.
    assert await store.add_signal_and_wake(signal("e"), T0 + timedelta(seconds=1)) is None
    assert await store.get_execution("e") == woken
    assert len(await store.get_signals("e")) == 2


async def test_a_terminal_execution_is_neither_woken_nor_claimed(store: StateStore) -> None:
    ended = parked(status=Status.SUCCESS, wake_at=None, end_time=T0)
    await store.create_execution(ended)
    assert await store.add_signal_and_wake(signal("e"), T0, owner="a", lease_seconds=30) is None
    assert await store.get_execution("e") == ended


async def test_an_unknown_execution_is_not_found_and_nothing_is_stored(store: StateStore) -> None:
    with pytest.raises(ExecutionNotFound):
        await store.add_signal_and_wake(signal("nope"), T0, owner="a", lease_seconds=30)
    assert await store.get_signals("nope", unconsumed_only=False) == []


async def test_of_several_signalling_owners_at_once_exactly_one_claims(store: StateStore) -> None:
    await store.create_execution(parked())
    won: list[str] = []

    async def send(owner: str) -> None:
        claimed = await store.add_signal_and_wake(signal("e"), T0, owner=owner, lease_seconds=30)
        if claimed is not None:
            won.append(owner)

    async with anyio.create_task_group() as group:
        for index in range(6):
            group.start_soon(send, f"owner-{index}")
    assert len(won) == 1
    stored = await store.get_execution("e")
    # The others found it due and held: nothing left to change but their signals.
    assert (stored.owner, stored.version) == (won[0], 1)
    assert len(await store.get_signals("e")) == 6


async def test_the_execution_comes_with_its_steps_in_order(store: StateStore) -> None:
    await store.create_execution(parked())
    await store.put_step(step("e", "s2", sequence=2, step_name="second"))
    await store.put_step(step("e", "s1", sequence=1, step_name="first"))
    record, steps = await store.get_execution_and_steps("e")
    assert record == await store.get_execution("e")
    assert steps == await store.get_steps("e")
    assert [s.step_name for s in steps] == ["first", "second"]
    with pytest.raises(ExecutionNotFound):
        await store.get_execution_and_steps("nope")


async def test_a_step_result_and_the_signals_it_consumed_commit_together(
    store: StateStore,
) -> None:
    await store.create_execution(parked())
    approval = await store.add_signal(signal("e"))
    other = await store.add_signal(signal("e", type="Resume"))
    assert approval.signal_id is not None
    done = step("e", "s1", status=Status.SUCCESS)
    running = execution("e", status=Status.IN_PROGRESS, owner=None, lease_expires=None)
    with pytest.raises(StaleRecord):  # neither the step nor the consumption is written
        await store.record_steps_and_execution([done], running, 7, [approval.signal_id])
    assert await store.get_steps("e") == []
    assert len(await store.get_signals("e")) == 2

    saved = await store.record_steps_and_execution([done], running, 0, [approval.signal_id])
    assert saved.version == 1 and saved.status == Status.IN_PROGRESS
    assert await store.get_steps("e") == [done]
    assert await store.get_signals("e") == [other]
