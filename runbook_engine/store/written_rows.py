"""What this store last wrote, so that a step transition writes only what changed.

A step transition rewrites the execution row (compare-and-set) and the step row. Most
of their columns do not change from one transition to the next (the document text, the
parameters, the targets...), but an ``UPDATE`` that names every column makes SQLite
rewrite every index that holds one of them, and every column costs a bind conversion:
naming only the changed ones halves the cost of the statement.

Why a remembered row can be trusted: the execution row carries a version that every
write bumps, and a compare-and-set at version ``v`` only succeeds while the row is still
at ``v``. A row remembered at ``v`` is the row this store wrote (or created) at ``v``, so
a compare-and-set expecting ``v`` that succeeds found exactly that row, and the
columns equal to the remembered ones need no writing. A step row is remembered with the
execution version its write produced and used only by the next transition of the same
execution (the write-ahead record, then the final one), in the same transaction as
that compare-and-set; any other write in between (ours or another process's) bumps the
version and the full upsert is used again. The lease columns are never in the
compare-and-set, so they are never compared.

Entries are dropped when the row reaches a terminal status (a terminal step or
execution is rarely written again, and then the full statement is used) and the maps
are bounded, so a long-lived daemon holds only rows of work in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runbook_engine.status import Status

Row = dict[str, Any]

LIMIT = 512  # rows remembered per kind; beyond that the oldest are forgotten
_TERMINAL = frozenset(status.value for status in Status if status.terminal)


class WrittenRows:
    """Rows keyed by id with the execution version they are valid at."""

    def __init__(self, columns: Sequence[str], key: str) -> None:
        self._columns = tuple(columns)  # the columns a statement may set
        self._key = key
        self._rows: dict[str, tuple[int, Row]] = {}

    def changed(self, row: Row, version: int) -> tuple[str, ...] | None:
        """The columns of ``row`` that differ from the row remembered at ``version``;
        None when nothing is remembered at that version (write every column)."""
        remembered = self._rows.get(row[self._key])
        if remembered is None or remembered[0] != version:
            return None
        old = remembered[1]
        return tuple(name for name in self._columns if row[name] != old[name])

    def remember(self, row: Row, version: int) -> None:
        """``row`` is in the database at execution version ``version`` (just committed)."""
        key = row[self._key]
        self._rows.pop(key, None)  # re-inserted last: the oldest entry stays first
        if row["status"] in _TERMINAL:
            return
        if len(self._rows) >= LIMIT:
            try:
                del self._rows[next(iter(self._rows))]
            except (KeyError, StopIteration, RuntimeError):  # another thread got there
                pass
        self._rows[key] = (version, row)

    def forget(self, key: str) -> None:
        self._rows.pop(key, None)
