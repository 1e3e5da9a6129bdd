"""A synchronous wrapper of :class:`~runbook_engine.engine.Engine` for scripts.

Each call runs the engine in its own event loop (``anyio.run``), opening and closing
the store around it::

    from runbook_engine import SyncEngine
    execution = SyncEngine().run("runbooks/hello-world.yaml", {"Name": "Ada"})
    print(execution.status)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio

from runbook_engine.engine import Engine, ExecutionView
from runbook_engine.records import ExecutionRecord
from runbook_engine.settings import Settings

T = TypeVar("T")


class SyncEngine:
    def __init__(
        self,
        state: str | None = None,
        *,
        documents: Sequence[str | Path] = (),
        settings: Settings | None = None,
    ) -> None:
        self._state = state
        self._documents = documents
        self._settings = settings

    def _call(self, work: Callable[[Engine], Awaitable[T]]) -> T:
        async def main() -> T:
            async with Engine(
                self._state, documents=self._documents, settings=self._settings
            ) as engine:
                return await work(engine)

        return anyio.run(main)

    def start(
        self, document: str, parameters: Mapping[str, Any] | None = None, *, mode: str = "Auto"
    ) -> str:
        return self._call(lambda e: e.start(document, parameters, mode=mode))

    def run(
        self,
        document: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        mode: str = "Auto",
        until_waiting: bool = False,
    ) -> ExecutionView:
        return self._call(
            lambda e: e.run(document, parameters, mode=mode, until_waiting=until_waiting)
        )

    def wait(self, execution_id: str, *, until_waiting: bool = False) -> ExecutionView:
        return self._call(lambda e: e.wait(execution_id, until_waiting=until_waiting))

    def resume(self, execution_id: str, *, until_waiting: bool = False) -> ExecutionView:
        return self._call(lambda e: e.resume(execution_id, until_waiting=until_waiting))

    def signal(
        self,
        execution_id: str,
        signal_type: str,
        *,
        step_name: str | None = None,
        payload: Mapping[str, Sequence[str]] | None = None,
        principal: str | None = None,
    ) -> None:
        self._call(
            lambda e: e.signal(
                execution_id, signal_type, step_name=step_name, payload=payload, principal=principal
            )
        )

    def stop(self, execution_id: str, stop_type: str = "Cancel") -> None:
        self._call(lambda e: e.stop(execution_id, stop_type))

    def get(self, execution_id: str) -> ExecutionView:
        return self._call(lambda e: e.get(execution_id))

    def list(self, *, status: str | None = None, limit: int = 50) -> list[ExecutionRecord]:
        return self._call(lambda e: e.list(status=status, limit=limit))
