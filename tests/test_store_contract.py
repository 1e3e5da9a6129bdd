"""One contract for every state store: in-memory, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings

from runbook_engine.errors import ExecutionNotFound, StaleRecord, StoreError
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.status import Status
from runbook_engine.store import StateStore
from tests import store_examples as examples
from tests.store_examples import T0, execution, signal, step

pytestmark = pytest.mark.anyio


def pending(execution_id: str, **changes: object) -> ExecutionRecord:
    """A fresh, unowned execution."""
    fields: dict[str, object] = {
        "owner": None,
        "lease_expires": None,
        "version": 0,
        "status": Status.PENDING,
        "wake_at": None,
    }
    fields.update(changes)
    return execution(execution_id, **fields)


# -- round trips ---------------------------------------------------------------------------


async def test_every_field_of_every_record_comes_back_as_written(store: StateStore) -> None:
    record = execution()
    await store.create_execution(record)
    await store.put_step(step())
    stored_signal = await store.add_signal(signal())

    assert await store.get_execution("exec-1") == record
    assert await store.get_steps("exec-1") == [step()]
    assert await store.get_signals("exec-1") == [
        replace(signal(), signal_id=stored_signal.signal_id)
    ]
    assert (await store.get_steps("exec-1"))[0].logs == "line 1\nbinary \x00 byte\n"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(record=examples.executions, step_record=examples.steps, signal_record=examples.signals)
async def test_arbitrary_records_round_trip(
    store: StateStore, record: ExecutionRecord, step_record: StepRecord, signal_record: object
) -> None:
    execution_id = f"{record.execution_id}-{uuid.uuid4()}"
    record = replace(record, execution_id=execution_id)
    step_record = replace(step_record, execution_id=execution_id, step_execution_id=execution_id)
    signal_record = replace(signal_record, execution_id=execution_id)  # type: ignore[type-var]
    await store.create_execution(record)
    await store.put_step(step_record)
    stored_signal = await store.add_signal(signal_record)  # type: ignore[arg-type]

    got = await store.get_execution(execution_id)
    assert got == record
    for moment in (got.start_time, got.end_time, got.wake_at, got.lease_expires):
        assert moment is None or moment.tzinfo == UTC
    assert await store.get_steps(execution_id) == [step_record]
    assert await store.get_signals(execution_id, unconsumed_only=False) == [stored_signal]
    assert stored_signal == replace(signal_record, signal_id=stored_signal.signal_id)  # type: ignore[type-var]


async def test_datetimes_come_back_in_utc(store: StateStore) -> None:
    plus_two = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    await store.create_execution(execution(start_time=plus_two))
    start = (await store.get_execution("exec-1")).start_time
    assert start == plus_two
    assert start is not None and start.tzinfo == UTC and start.hour == 10


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (execution(start_time=datetime(2024, 1, 1)), "start_time: naive datetime"),
        (execution(parameters={"x": float("nan")}), "cannot store parameters"),
        (execution(outputs={"x": b"bytes"}), "cannot store outputs"),
        (execution(document_name="a\x00b"), "document_name: text contains a NUL"),
    ],
)
async def test_values_the_database_cannot_hold_are_refused(
    store: StateStore, record: ExecutionRecord, message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        await store.create_execution(record)
    with pytest.raises(ExecutionNotFound):
        await store.get_execution("exec-1")


async def test_a_duplicate_execution_id_is_refused(store: StateStore) -> None:
    await store.create_execution(execution())
    with pytest.raises(StoreError, match="execution exec-1 already exists"):
        await store.create_execution(execution(document_name="Other"))
    assert (await store.get_execution("exec-1")).document_name == "Example-Restart"


async def test_an_unknown_execution_is_not_found(store: StateStore) -> None:
    with pytest.raises(ExecutionNotFound, match="execution nope does not exist"):
        await store.get_execution("nope")
    with pytest.raises(ExecutionNotFound):
        await store.update_execution(execution("nope"), expected_version=0)
    with pytest.raises(ExecutionNotFound):
        await store.put_step(step("nope"))
    with pytest.raises(ExecutionNotFound):
        await store.add_signal(signal("nope"))
    with pytest.raises(ExecutionNotFound):
        await store.claim("nope", "me", 30)
    assert await store.get_steps("nope") == []
    assert await store.get_signals("nope") == []


# -- compare-and-set -----------------------------------------------------------------------


async def test_update_writes_when_the_version_matches_and_bumps_it(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    first = await store.get_execution("e")
    updated = await store.update_execution(
        replace(first, status=Status.SUCCESS, outputs={"a.b": 1}), expected_version=0
    )
    assert updated.version == 1
    assert updated.status == Status.SUCCESS
    assert await store.get_execution("e") == updated


async def test_a_stale_update_is_refused_and_changes_nothing(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    record = await store.get_execution("e")
    await store.update_execution(replace(record, status=Status.IN_PROGRESS), expected_version=0)
    with pytest.raises(StaleRecord, match="execution e is at version 1, not 0"):
        await store.update_execution(replace(record, status=Status.FAILED), expected_version=0)
    stored = await store.get_execution("e")
    assert (stored.status, stored.version) == (Status.IN_PROGRESS, 1)


async def test_updates_keep_the_stored_lease(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    claimed = await store.claim("e", "me", 60, now=T0)
    assert claimed is not None
    assert await store.renew("e", "me", 600, now=T0)
    # written from the record as claimed: its lease_expires is older than the renewal
    updated = await store.update_execution(
        replace(claimed, status=Status.IN_PROGRESS, owner=None), expected_version=claimed.version
    )
    assert updated.owner == "me"
    assert updated.lease_expires == T0 + timedelta(seconds=600)
    assert await store.get_execution("e") == updated


# -- listing -------------------------------------------------------------------------------


async def test_executions_are_listed_newest_first_and_filtered(store: StateStore) -> None:
    await store.create_execution(pending("a", document_name="Deploy-Web"))
    await store.create_execution(pending("b", document_name="Deploy_X", status=Status.SUCCESS))
    await store.create_execution(pending("c", document_name="Other", parent_execution_id="a"))
    await store.create_execution(pending("d", document_name="Deploy%", parent_execution_id="a"))

    async def ids(**filters: object) -> list[str]:
        listed = await store.list_executions(**filters)  # type: ignore[arg-type]
        return [record.execution_id for record in listed]

    assert await ids() == ["d", "c", "b", "a"]
    assert await ids(status="Success") == ["b"]
    assert await ids(status=Status.PENDING) == ["d", "c", "a"]
    assert await ids(parent_execution_id="a") == ["d", "c"]
    assert await ids(document_name_prefix="Deploy") == ["d", "b", "a"]
    assert await ids(document_name_prefix="Deploy_") == ["b"]  # "_" is no wildcard
    assert await ids(document_name_prefix="Deploy%") == ["d"]  # nor is "%"
    assert await ids(limit=2) == ["d", "c"]
    assert await ids(limit=2, offset=2) == ["b", "a"]
    assert await ids(parent_execution_id="a", status=Status.SUCCESS) == []


# -- steps ---------------------------------------------------------------------------------


async def test_steps_come_back_in_sequence_order(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    for sequence, name in [(3, "c"), (1, "a"), (2, "b")]:
        await store.put_step(step("e", f"s{sequence}", sequence=sequence, step_name=name))
    await store.create_execution(pending("other"))
    await store.put_step(step("other", "elsewhere", sequence=0))

    assert [s.step_name for s in await store.get_steps("e")] == ["a", "b", "c"]


async def test_put_step_replaces_the_write_ahead_record(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    ahead = step("e", "s1", status=Status.IN_PROGRESS, end_time=None, outputs={})
    await store.put_step(ahead)
    final = replace(ahead, status=Status.SUCCESS, end_time=T0, outputs={"Out": 1})
    await store.put_step(final)
    assert await store.get_steps("e") == [final]


async def test_step_and_execution_are_recorded_together(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    record = await store.get_execution("e")
    running = replace(record, status=Status.IN_PROGRESS, current_step_name="restart")
    after = await store.record_steps_and_execution([step("e", "s1")], running, 0)

    assert after == replace(running, version=1)
    assert await store.get_execution("e") == after
    assert await store.get_steps("e") == [step("e", "s1")]


async def test_a_stale_step_transition_writes_neither_record(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    record = await store.get_execution("e")
    await store.update_execution(record, expected_version=0)
    with pytest.raises(StaleRecord):
        await store.record_steps_and_execution(
            [step("e", "s1")], replace(record, status=Status.FAILED), 0
        )
    assert await store.get_steps("e") == []
    assert (await store.get_execution("e")).status == Status.PENDING


async def test_a_transition_records_the_ended_step_and_the_next_one_together(
    store: StateStore,
) -> None:
    await store.create_execution(pending("e"))
    record = await store.get_execution("e")
    running = replace(record, status=Status.IN_PROGRESS)
    ahead = step("e", "s1")
    record = await store.record_steps_and_execution([ahead], running, 0)
    ended = replace(ahead, status=Status.SUCCESS, outputs={"Slept": 1})
    following = step("e", "s2", sequence=5)

    after = await store.record_steps_and_execution([ended, following], record, 1)

    assert after.version == 2
    assert await store.get_steps("e") == [ended, following]


async def test_a_stale_transition_writes_none_of_its_steps(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    record = await store.get_execution("e")
    with pytest.raises(StaleRecord):
        await store.record_steps_and_execution(
            [step("e", "s1"), step("e", "s2", sequence=2)], record, 5
        )
    assert await store.get_steps("e") == []


async def test_one_step_twice_in_a_transition_is_refused(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    record = await store.get_execution("e")
    with pytest.raises(StoreError, match="step s1 is twice in one transition"):
        await store.record_steps_and_execution([step("e", "s1"), step("e", "s1")], record, 0)
    assert await store.get_steps("e") == []


async def test_a_step_of_another_execution_is_refused(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    with pytest.raises(StoreError, match="step s1 belongs to other, not e"):
        await store.record_steps_and_execution([step("other", "s1")], pending("e"), 0)


# -- signals -------------------------------------------------------------------------------


async def test_signals_are_numbered_listed_and_consumed(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    await store.create_execution(pending("f"))
    first = await store.add_signal(signal("e", type="Approve"))
    await store.add_signal(signal("f", type="Resume"))
    second = await store.add_signal(signal("e", type="Reject", payload={}))
    assert first.signal_id is not None and second.signal_id is not None
    assert first.signal_id < second.signal_id

    assert [s.type for s in await store.get_signals("e")] == ["Approve", "Reject"]
    await store.consume_signals([first.signal_id])
    assert await store.get_signals("e") == [second]
    everything = await store.get_signals("e", unconsumed_only=False)
    assert [(s.type, s.consumed) for s in everything] == [("Approve", True), ("Reject", False)]
    await store.consume_signals([])
    assert [s.type for s in await store.get_signals("f")] == ["Resume"]


# -- leases --------------------------------------------------------------------------------


async def test_one_claimer_gets_the_execution_and_the_other_none(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    won = await store.claim("e", "a", 30, now=T0)
    assert won is not None
    assert (won.owner, won.lease_expires, won.version) == ("a", T0 + timedelta(seconds=30), 1)
    assert await store.claim("e", "b", 30, now=T0 + timedelta(seconds=29)) is None
    assert await store.get_execution("e") == won


async def test_the_owner_may_claim_again(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    await store.claim("e", "a", 30, now=T0)
    again = await store.claim("e", "a", 30, now=T0 + timedelta(seconds=10))
    assert again is not None and again.lease_expires == T0 + timedelta(seconds=40)


async def test_an_expired_lease_is_taken_over_and_the_old_owner_goes_stale(
    store: StateStore,
) -> None:
    await store.create_execution(pending("e"))
    old = await store.claim("e", "a", 30, now=T0)
    assert old is not None
    new = await store.claim("e", "b", 30, now=T0 + timedelta(seconds=31))
    assert new is not None and new.owner == "b" and new.version == old.version + 1

    with pytest.raises(StaleRecord):
        await store.update_execution(
            replace(old, status=Status.FAILED), expected_version=old.version
        )
    assert not await store.renew("e", "a", 30, now=T0 + timedelta(seconds=32))
    await store.release("e", "a")  # not a's to give up any more
    assert (await store.get_execution("e")).owner == "b"


async def test_renewing_keeps_others_out(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    await store.claim("e", "a", 30, now=T0)
    assert await store.renew("e", "a", 30, now=T0 + timedelta(seconds=20))
    assert await store.claim("e", "b", 30, now=T0 + timedelta(seconds=40)) is None
    assert await store.claim("e", "b", 30, now=T0 + timedelta(seconds=51)) is not None
    assert not await store.renew("nope", "a", 30)


async def test_a_released_execution_can_be_claimed_at_once(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    await store.claim("e", "a", 300, now=T0)
    await store.release("e", "a")
    released = await store.get_execution("e")
    assert (released.owner, released.lease_expires) == (None, None)
    assert await store.claim("e", "b", 30, now=T0) is not None


async def test_claim_next_takes_runnable_executions_oldest_first(store: StateStore) -> None:
    await store.create_execution(pending("first"))
    await store.create_execution(pending("second", status=Status.IN_PROGRESS))
    await store.create_execution(pending("done", status=Status.SUCCESS))

    one = await store.claim_next("w1", 30, now=T0)
    two = await store.claim_next("w2", 30, now=T0)
    assert (one and one.execution_id, one and one.owner) == ("first", "w1")
    assert (two and two.execution_id, two and two.owner) == ("second", "w2")
    assert await store.claim_next("w3", 30, now=T0) is None
    # w1's lease runs out: its execution is due again
    three = await store.claim_next("w3", 30, now=T0 + timedelta(seconds=31))
    assert three is not None and three.execution_id == "first" and three.version == 2


async def test_claim_next_wakes_parked_executions_when_their_time_comes(
    store: StateStore,
) -> None:
    later = T0 + timedelta(minutes=5)
    await store.create_execution(pending("sleeping", status=Status.IN_PROGRESS, wake_at=later))
    await store.create_execution(pending("approval", status=Status.WAITING))
    await store.create_execution(pending("timer", status=Status.WAITING, wake_at=later))
    await store.create_execution(pending("finished", status=Status.FAILED, wake_at=T0))

    assert await store.claim_next("w", 30, now=T0) is None
    woken = [await store.claim_next(f"w{n}", 30, now=later) for n in range(3)]
    assert sorted(record.execution_id for record in woken if record) == ["sleeping", "timer"]
    assert woken[2] is None


async def test_claim_next_takes_only_the_statuses_asked_for(store: StateStore) -> None:
    await store.create_execution(pending("p"))
    await store.create_execution(pending("c", status=Status.CANCELLING))
    claimed = await store.claim_next("w", 30, now=T0, statuses=[Status.CANCELLING])
    assert claimed is not None and claimed.execution_id == "c"
    assert await store.claim_next("w", 30, now=T0, statuses=[Status.CANCELLING]) is None


async def test_naive_lease_times_are_refused(store: StateStore) -> None:
    await store.create_execution(pending("e"))
    with pytest.raises(StoreError, match="naive datetime"):
        await store.claim("e", "a", 30, now=datetime(2024, 1, 1))


async def test_a_timer_written_by_a_step_transition_makes_the_execution_due(
    store: StateStore,
) -> None:
    await store.create_execution(pending("e", status=Status.IN_PROGRESS))
    record = await store.get_execution("e")
    wake = T0.replace(microsecond=0) + timedelta(seconds=10)
    parked = replace(record, status=Status.WAITING, wake_at=wake)
    await store.record_steps_and_execution([step("e", "s1", wake_at=wake)], parked, 0)

    assert await store.claim_next("w", 30, now=wake - timedelta(microseconds=1)) is None
    woken = await store.claim_next("w", 30, now=wake)
    assert woken is not None and woken.execution_id == "e" and woken.wake_at == wake
