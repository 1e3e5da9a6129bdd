"""Runbook texts in the SQL store: written once per distinct text, read by digest.

An execution's row holds the digest of the text it runs (``document_digest``), not the
text. The row is rewritten at every step transition, and SQLite rewrites a row whole:
with the text inside, a 1,000-step runbook's 190 KB went through the write-ahead log at
every step. Texts never change once written, so the store keeps the ones it has seen
(by digest) and reads each at most once.

Records keep their ``document_content`` field: the rows the SQL store writes and reads
are translated here, so ``codec`` and the in-memory store are unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from runbook_engine.errors import StoreError
from runbook_engine.records import ExecutionRecord
from runbook_engine.store.codec import Row, execution_from_row
from runbook_engine.store.schema import DOCUMENT_TEXTS, text_digest

_TEXTS_OF = select(DOCUMENT_TEXTS.c.digest, DOCUMENT_TEXTS.c.content).where(
    DOCUMENT_TEXTS.c.digest.in_(bindparam("b_digests", expanding=True))
)
_KEEP = 64  # distinct texts remembered; a store runs few at a time


def stored_row(row: Row) -> tuple[Row, str]:
    """A codec row of an execution as the executions table takes it, and its text."""
    content = row.pop("document_content")
    row["document_digest"] = text_digest(content)
    return row, content


class DocumentTexts:
    def __init__(self, dialect_insert: Any) -> None:
        self._insert = dialect_insert(DOCUMENT_TEXTS).on_conflict_do_nothing(
            index_elements=["digest"]
        )
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()  # PostgreSQL's calls run on worker threads

    def write(self, conn: Connection, digest: str, content: str) -> None:
        """Store a text (nothing happens when it is there already)."""
        conn.execute(self._insert, {"digest": digest, "content": content})

    def remember(self, digest: str, content: str) -> None:
        """A text now committed: later reads of its executions need no query."""
        with self._lock:
            if digest not in self._known:
                if len(self._known) >= _KEEP:
                    self._known.pop(next(iter(self._known)))  # the oldest
                self._known[digest] = content

    def records(self, conn: Connection, rows: Iterable[Mapping[Any, Any]]) -> list[ExecutionRecord]:
        """The execution records of rows of the executions table, their texts filled in
        (those not remembered are read on ``conn``, in one query)."""
        rows = list(rows)
        texts = {row["document_digest"]: self._known.get(row["document_digest"]) for row in rows}
        missing = [digest for digest, content in texts.items() if content is None]
        if missing:
            for digest, content in conn.execute(_TEXTS_OF, {"b_digests": missing}):
                texts[digest] = content
                self.remember(digest, content)
        records = []
        for row in rows:
            content = texts[row["document_digest"]]
            if content is None:
                raise StoreError(
                    f"execution {row['execution_id']}: its runbook text"
                    f" {row['document_digest']} is missing from the state database"
                )
            records.append(execution_from_row({**row, "document_content": content}))
        return records

    def record(self, conn: Connection, row: Mapping[Any, Any]) -> ExecutionRecord:
        return self.records(conn, [row])[0]
