"""Run one piece of work per target under rate control (the async side of ratecontrol).

The pure :class:`~runbook_engine.ratecontrol.Dispatch` decides what starts; this module
starts it in a task group, feeds finishes back, and stops launching once the error
threshold is crossed while letting work already in flight finish. Targets never started
come back in :attr:`FanOutResult.never_started` so the caller can record them
``Cancelled``. Cancelling the caller cancels every running piece (structured
concurrency: nothing outlives the call).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

from runbook_engine.ratecontrol import RateControl

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class FanOutResult(Generic[T, R]):
    results: Mapping[int, R]  # by target index, for every target that ran (or ran before)
    never_started: tuple[int, ...]
    threshold_exceeded: bool
    peak_in_flight: int


async def fan_out(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    *,
    rate: RateControl,
    failed: Callable[[R], bool],
    earlier: Mapping[int, R] | None = None,
) -> FanOutResult[T, R]:
    """Run ``work(item)`` for the items, at most ``rate`` at once.

    ``earlier`` holds results of items finished before (a resumed step): they count
    toward the ramp-up and the error threshold and are not run again.
    """
    dispatch = rate.dispatch(len(items))
    results: dict[int, R] = {}
    for index, result in (earlier or {}).items():
        dispatch.already_finished(index, failed(result))
        results[index] = result
    send, receive = anyio.create_memory_object_stream[tuple[int, R]](max(1, len(items)))
    peak = 0

    async def one(index: int) -> None:
        result = await work(items[index])
        await send.send((index, result))

    async with anyio.create_task_group() as group, send, receive:
        while True:
            started = dispatch.next_start()
            while started is not None:
                group.start_soon(one, started)
                peak = max(peak, len(dispatch.running))
                started = dispatch.next_start()
            if dispatch.done:
                break
            index, result = await receive.receive()
            results[index] = result
            dispatch.finish(index, failed(result))
    return FanOutResult(
        results=results,
        never_started=tuple(dispatch.never_started()),
        threshold_exceeded=dispatch.stopped,
        peak_in_flight=peak,
    )
