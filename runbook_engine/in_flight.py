"""Telling the driver that an attempt's blocking call has reached its worker thread.

A step that only reads (``Action.reads_only``) does not wait for its write-ahead record:
the driver starts the attempt, waits until its first blocking call is on a worker thread
(or the attempt is over), and commits the record while the call runs. SQLite commits on
the event loop's thread, so the commit must begin only once the call no longer needs the
loop. Code that hands blocking work to a thread wraps it in :func:`announcing`; the
driver listens with :func:`listening` around the attempt's task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_LISTENER: ContextVar[Callable[[], None] | None] = ContextVar("in_flight", default=None)


@contextmanager
def listening(callback: Callable[[], None]) -> Iterator[None]:
    """Tasks started inside call ``callback`` on the event loop once, when the first
    blocking function wrapped by :func:`announcing` starts on its thread."""
    token = _LISTENER.set(callback)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def announcing(function: Callable[[], T]) -> Callable[[], T]:
    """``function`` (to run on a worker thread), announcing its start to the listener of
    the calling task, if any. Call on the event loop's thread."""
    callback = _LISTENER.get()
    if callback is None:
        return function
    _LISTENER.set(None)  # the first call only
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not on asyncio: the listener hears of the attempt's end only
        return function

    def announced() -> T:
        loop.call_soon_threadsafe(callback)
        return function()

    return announced
