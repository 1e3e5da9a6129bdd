"""Rate control arithmetic (pure) and the async dispatcher that follows it."""

from __future__ import annotations

import math

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_engine.fanout import fan_out
from runbook_engine.ratecontrol import (
    Dispatch,
    RateControl,
    max_concurrency,
    max_errors,
    ramp_limit,
    threshold_exceeded,
)

counts = st.integers(min_value=1, max_value=500)
percents = st.integers(min_value=1, max_value=100)


@given(total=st.integers(min_value=0, max_value=10_000), percent=percents)
def test_percent_concurrency_is_floor_but_at_least_one(total: int, percent: int) -> None:
    assert max_concurrency(f"{percent}%", total) == max(1, math.floor(total * percent / 100))


@given(total=st.integers(min_value=0, max_value=10_000), percent=st.integers(0, 100))
def test_percent_errors_is_floor(total: int, percent: int) -> None:
    assert max_errors(f"{percent}%", total) == math.floor(total * percent / 100)


@given(count=counts, total=counts)
def test_counts_are_taken_as_given(count: int, total: int) -> None:
    assert max_concurrency(str(count), total) == count
    assert max_errors(str(count), total) == count


def test_documented_examples() -> None:
    # ssm-reference §5.5: 10% of 50 targets stops at the 6th error; MaxErrors 3 at the 4th.
    tolerated = max_errors("10%", 50)
    assert tolerated == 5
    assert not threshold_exceeded(5, tolerated) and threshold_exceeded(6, tolerated)
    assert threshold_exceeded(4, max_errors("3", 50)) and not threshold_exceeded(3, 3)
    assert threshold_exceeded(1, max_errors("0", 10))
    assert max_concurrency("10%", 5) == 1


@pytest.mark.parametrize("value", ["0", "0%", "101%", "-1", "abc", "10.5", "", "05"])
def test_malformed_concurrency_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="MaxConcurrency must be"):
        max_concurrency(value, 10)


@pytest.mark.parametrize("value", ["-1", "101%", "x", "1.5", "00"])
def test_malformed_errors_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="MaxErrors must be"):
        max_errors(value, 10)


@given(finished=st.integers(0, 10_000), concurrency=counts)
def test_ramp_limit_bounds(finished: int, concurrency: int) -> None:
    limit = ramp_limit(finished, concurrency)
    assert 1 <= limit <= concurrency
    assert ramp_limit(finished + 1, concurrency) >= limit  # never shrinks
    assert limit == concurrency or limit & (limit - 1) == 0  # a power of two until capped
    assert ramp_limit(finished, concurrency, ramp_up=False) == concurrency


def test_ramp_up_sequence() -> None:
    assert [ramp_limit(f, 100) for f in range(16)] == [
        1,
        2,
        2,
        4,
        4,
        4,
        4,
        8,
        8,
        8,
        8,
        8,
        8,
        8,
        8,
        16,
    ]
    assert ramp_limit(10_000, 5) == 5


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, RateControl, list[bool], list[int]]:
    total = draw(st.integers(0, 60))
    concurrency = draw(st.one_of(st.integers(1, 70).map(str), percents.map(lambda p: f"{p}%")))
    errors = draw(
        st.one_of(st.integers(0, 70).map(str), st.integers(0, 100).map(lambda p: f"{p}%"))
    )
    rate = RateControl(concurrency, errors, draw(st.booleans()))
    failures = draw(st.lists(st.booleans(), min_size=total, max_size=total))
    picks = draw(st.lists(st.integers(0, 10_000), min_size=total, max_size=total))
    return total, rate, failures, picks


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios())
def test_dispatch_invariants_under_any_completion_order(scenario: tuple) -> None:
    total, rate, failures, picks = scenario
    dispatch = rate.dispatch(total)
    concurrency = max_concurrency(rate.max_concurrency, total)
    tolerated = max_errors(rate.max_errors, total)
    order: list[int] = []
    step = 0
    while not dispatch.done:
        errors_before = dispatch.errors
        started = dispatch.next_start()
        while started is not None:
            assert not threshold_exceeded(errors_before, tolerated)  # never after the threshold
            order.append(started)
            assert len(dispatch.running) <= min(concurrency, dispatch.limit)
            started = dispatch.next_start()
        assert dispatch.running, "nothing runs but the dispatch is not done"
        running = sorted(dispatch.running)
        finished = running[picks[step % len(picks)] % len(running)]  # any completion order
        dispatch.finish(finished, failures[finished])
        step += 1
    assert order == sorted(order) == list(range(len(order)))  # targets start in order
    never = dispatch.never_started()
    assert sorted(order + never) == list(range(total))
    if never:  # something was held back only because the threshold was crossed
        assert threshold_exceeded(dispatch.errors, tolerated)
    else:
        assert len(dispatch.finished) == total
    # in-flight work finished: every started target has an outcome
    assert set(dispatch.finished) == set(order)


@given(total=st.integers(1, 40), concurrency=st.integers(1, 40))
def test_no_errors_means_everyone_runs(total: int, concurrency: int) -> None:
    dispatch = RateControl(str(concurrency), "0").dispatch(total)
    while not dispatch.done:
        while dispatch.next_start() is not None:
            pass
        dispatch.finish(min(dispatch.running), failed=False)
    assert len(dispatch.finished) == total and dispatch.never_started() == []


def test_already_finished_targets_count_and_are_skipped() -> None:
    dispatch = Dispatch(total=4, concurrency=4, tolerated_errors=0)
    dispatch.already_finished(0, failed=False)
    dispatch.already_finished(2, failed=False)
    assert dispatch.limit == 2  # two finished: the ramp is at 2
    assert [dispatch.next_start(), dispatch.next_start(), dispatch.next_start()] == [1, 3, None]


# -- the async dispatcher -----------------------------------------------------------------


def run_fan_out(items: list[int], rate: RateControl, fail: set[int], **kw: object):
    in_flight = 0
    peak = 0
    order: list[int] = []

    async def work(item: int) -> tuple[int, bool]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        order.append(item)
        await anyio.sleep(0.01 if item % 2 else 0.02)
        in_flight -= 1
        return item, item in fail

    async def main():
        return await fan_out(items, work, rate=rate, failed=lambda r: r[1], **kw)

    return anyio.run(main), peak, order


def test_fan_out_respects_concurrency_and_runs_everything() -> None:
    result, peak, _ = run_fan_out(list(range(20)), RateControl("4", "0", ramp_up=False), set())
    assert peak == 4 == result.peak_in_flight
    assert sorted(result.results) == list(range(20)) and result.never_started == ()
    assert not result.threshold_exceeded


def test_fan_out_ramps_up() -> None:
    result, peak, order = run_fan_out(list(range(12)), RateControl("8", "0"), set())
    assert order[0] == 0 and peak <= 8
    assert sorted(result.results) == list(range(12))


def test_fan_out_stops_launching_after_the_threshold_and_lets_in_flight_finish() -> None:
    items = list(range(30))
    result, _, order = run_fan_out(items, RateControl("5", "1", ramp_up=False), {0, 1, 2})
    assert result.threshold_exceeded
    assert set(result.results) == set(order)  # everything started came back
    assert result.never_started == tuple(i for i in items if i not in result.results)
    assert len(result.never_started) > 0
    assert max(order) < 10  # launching stopped soon after the second error


def test_fan_out_with_earlier_results_runs_only_the_rest() -> None:
    earlier = {0: (0, False), 1: (1, True)}
    result, _, order = run_fan_out(list(range(5)), RateControl("5", "3"), set(), earlier=earlier)
    assert sorted(order) == [2, 3, 4]
    assert result.results[1] == (1, True)
