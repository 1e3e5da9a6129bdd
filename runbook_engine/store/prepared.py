"""Core statements compiled once and run straight on the driver's cursor.

The scheduler commits once per step transition, so those few statements are the hot
path. Executing a Core statement through a SQLAlchemy ``Connection`` costs tens of
microseconds per call (cache key, parameter processing, result setup), several times
what SQLite itself needs for the write. A ``Prepared`` statement is still written as
Core against the SQLModel tables and compiled by SQLAlchemy for the dialect; only the
per-call work is done here: put the parameters in the driver's order and convert them
with the column types' own bind processors (so timestamps are stored exactly as
SQLAlchemy stores them, which keeps them comparable with every other statement).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect

_Processor = Callable[[Any], Any] | None


class Prepared:
    def __init__(
        self, statement: Any, dialect: Dialect, column_keys: Sequence[str] | None = None
    ) -> None:
        compiled = statement.compile(
            dialect=dialect, column_keys=None if column_keys is None else list(column_keys)
        )
        self.sql: str = compiled.string
        self._positional: bool = compiled.positional
        names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
        # (name, whether the caller must give it, the statement's own value, converter)
        self._binds: list[tuple[str, bool, Any, _Processor]] = []
        for name in names:
            bind = compiled.binds[name]
            required = bind.required or bind.callable is not None
            literal = None if required else bind.effective_value
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self._binds.append((name, required, literal, process))

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """Driver parameters from ``values`` keyed by bind name (column names for SET)."""
        converted = []
        for name, required, literal, process in self._binds:
            value = values[name] if required else literal
            # every column type's converter maps None to None: skip the call
            converted.append(value if process is None or value is None else process(value))
        if self._positional:
            return converted
        return dict(zip((bind[0] for bind in self._binds), converted, strict=True))

    def execute(self, cursor: Any, values: Mapping[str, Any]) -> Any:
        cursor.execute(self.sql, self.parameters(values))
        return cursor
