"""The library facade: ``async with Engine(...) as engine: await engine.run(path, params)``."""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio

from runbook_engine.coercion import resolve_parameters, wire_form
from runbook_engine.documents import DocumentLibrary, DocumentText
from runbook_engine.errors import (
    ExecutionClaimed,
    InvalidSignal,
    InvalidStatusUpdate,
    ParameterError,
    StepNotFound,
)
from runbook_engine.fleet import CommandDocuments, Fleet
from runbook_engine.inventory import Inventory, load_inventory
from runbook_engine.model import Runbook
from runbook_engine.plugin import ChildRequest, ChildStatus
from runbook_engine.records import ExecutionRecord, SignalRecord, StepRecord
from runbook_engine.registry import ActionRegistry, default_registry
from runbook_engine.rendering import render_default
from runbook_engine.scheduler import Driver
from runbook_engine.settings import Settings
from runbook_engine.signals import check_signal
from runbook_engine.status import Mode, SignalType, Status, StopType
from runbook_engine.store import StateStore, open_store
from runbook_engine.validation import runbook_from_report, validate_text


@dataclass(frozen=True)
class ExecutionView:
    """An execution and its step executions, as read from the store."""

    execution: ExecutionRecord
    steps: tuple[StepRecord, ...] = field(default_factory=tuple)

    @property
    def status(self) -> Status:
        return self.execution.status

    @property
    def execution_id(self) -> str:
        return self.execution.execution_id

    def step(self, name: str) -> StepRecord:
        for record in reversed(self.steps):
            if record.step_name == name:
                return record
        raise KeyError(name)


class Engine:
    """Starts, runs, resumes, signals and stops executions against one state store."""

    def __init__(
        self,
        store: StateStore | str | None = None,
        *,
        documents: Sequence[str | Path] = (),
        registry: ActionRegistry | None = None,
        settings: Settings | None = None,
        listener: Callable[[StepRecord], None] | None = None,
        wrap_store: Callable[[StateStore], StateStore] | None = None,
        inventory: Inventory | str | Path | None = None,
    ) -> None:
        self._wrap_store = wrap_store
        self._store_arg = store
        self.listener = listener
        self._store: StateStore | None = store if not isinstance(store, str | None) else None
        self._owns_store = self._store is None
        self.library = DocumentLibrary(documents)
        if isinstance(inventory, str | Path):
            inventory = load_inventory(inventory)
        self.command_documents = CommandDocuments(self.library)
        self.registry = registry or default_registry()
        self.settings = settings or Settings()
        self.fleet = Fleet(inventory, ramp_up=self.settings.ramp_up)  # ctx.targets
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._runbooks: dict[str, Runbook] = {}
        self._drivers: dict[str, Driver] = {}

    async def __aenter__(self) -> Engine:
        if self._store is None:
            url = self._store_arg if isinstance(self._store_arg, str) else None
            self._store = open_store(url)
        if self._wrap_store is not None:
            self._store = self._wrap_store(self.store)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self.fleet.close()
        if self._owns_store and self._store is not None:
            await self._store.close()
            self._store = None

    @property
    def store(self) -> StateStore:
        if self._store is None:
            raise RuntimeError("use the engine inside 'async with Engine(...) as engine'")
        return self._store

    def now(self) -> datetime:
        return datetime.now(UTC)

    # -- documents ---------------------------------------------------------------------------

    def load(self, reference: str) -> tuple[DocumentText, Runbook]:
        text = self.library.find(reference)
        return text, self._parse(text.content, text.path, text.name)

    def _parse(self, content: str, path: str, name: str) -> Runbook:
        key = f"{name}\0{content}"
        runbook = self._runbooks.get(key)
        if runbook is None:
            report = validate_text(content, path, self.registry.schemas(), name=name)
            runbook = runbook_from_report(report)
            self._runbooks[key] = runbook
        return runbook

    def attachments(self, execution: ExecutionRecord) -> Mapping[str, bytes]:
        directory = execution.extra.get("document_dir")
        runbook = self.runbook_of(execution)
        files: dict[str, bytes] = {}
        if directory:
            for name in runbook.files:
                path = Path(directory) / name
                if path.is_file():
                    files[name] = path.read_bytes()
        return files

    def runbook_of(self, execution: ExecutionRecord) -> Runbook:
        """The runbook an execution runs (parsed from the text saved at its start)."""
        path = str(execution.extra.get("document_path") or execution.document_name)
        return self._parse(execution.document_content, path, execution.document_name)

    # -- starting ----------------------------------------------------------------------------

    async def start(
        self,
        document: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        mode: Mode | str = Mode.AUTO,
        principal: str | None = None,
        parent: tuple[str, str] | None = None,
    ) -> str:
        """Create an execution (nothing runs yet); invalid parameters start nothing."""
        text, runbook = self.load(document)
        return await self._create(text, runbook, parameters or {}, Mode(mode), principal, parent)

    async def _create(
        self,
        text: DocumentText,
        runbook: Runbook,
        parameters: Mapping[str, Any],
        mode: Mode,
        principal: str | None,
        parent: tuple[str, str] | None,
    ) -> str:
        execution_id = str(uuid.uuid4())
        values = resolve_parameters(
            runbook,
            parameters,
            lambda p: render_default(p, self.settings, execution_id, self.now()),
        )
        variables = {name: var.default for name, var in runbook.variables.items()}
        record = ExecutionRecord(
            execution_id=execution_id,
            document_name=text.name,
            document_content=text.content,
            status=Status.PENDING,
            mode=mode,
            parameters=values,
            supplied_parameters={k: wire_form(v) for k, v in parameters.items()},
            variables=variables,
            executed_by=principal or self.settings.principal or getpass.getuser(),
            parent_execution_id=parent[0] if parent else None,
            parent_step_execution_id=parent[1] if parent else None,
            extra={
                "document_path": text.path,
                "document_dir": text.directory,
            },
        )
        await self.store.create_execution(record)
        return execution_id

    async def run(
        self,
        document: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        mode: Mode | str = Mode.AUTO,
        principal: str | None = None,
        until_waiting: bool = False,
    ) -> ExecutionView:
        execution_id = await self.start(document, parameters, mode=mode, principal=principal)
        return await self.wait(execution_id, until_waiting=until_waiting)

    # -- running -----------------------------------------------------------------------------

    async def wait(self, execution_id: str, *, until_waiting: bool = False) -> ExecutionView:
        """Drive the execution until it ends (or, with ``until_waiting``, until it waits)."""
        await self._drive(execution_id, until_waiting=until_waiting)
        return await self.get(execution_id)

    async def resume(self, execution_id: str, *, until_waiting: bool = False) -> ExecutionView:
        """Continue an execution whose process died, or one that waits."""
        return await self.wait(execution_id, until_waiting=until_waiting)

    async def _drive(self, execution_id: str, *, until_waiting: bool) -> ExecutionRecord:
        execution = await self.store.get_execution(execution_id)
        if execution.status.terminal:
            return execution
        claimed = await self.store.claim(
            execution_id, self.owner, self.settings.lease_seconds, self.now()
        )
        if claimed is None:
            raise ExecutionClaimed(
                f"Execution {execution_id} is being run by another process; "
                "it can be resumed when that process stops"
            )
        runbook = self.runbook_of(claimed)
        records = list(await self.store.get_steps(execution_id))
        driver = Driver(self, claimed, runbook, records, until_waiting=until_waiting)
        self._drivers[execution_id] = driver
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._heartbeat, execution_id)
                result = await driver.run()
                group.cancel_scope.cancel()
            return result
        finally:
            self._drivers.pop(execution_id, None)
            with anyio.CancelScope(shield=True):
                await self.store.release(execution_id, self.owner)

    async def _heartbeat(self, execution_id: str) -> None:
        while True:
            await anyio.sleep(self.settings.lease_seconds / 3)
            await self.store.renew(
                execution_id, self.owner, self.settings.lease_seconds, self.now()
            )

    # -- child executions (aws:executeAutomation) -----------------------------------------------

    async def start_child(
        self, parent: ExecutionRecord, record: StepRecord, request: ChildRequest
    ) -> str:
        text, runbook = self.load(request.document_name)
        try:
            return await self._create(
                text,
                runbook,
                dict(request.parameters),
                Mode.AUTO,
                parent.executed_by,
                (parent.execution_id, record.step_execution_id),
            )
        except ParameterError as exc:
            raise ParameterError(f"child runbook {request.document_name}: {exc.message}") from exc

    async def child_status(self, execution_id: str) -> ChildStatus:
        child = await self.store.get_execution(execution_id)
        return ChildStatus(
            execution_id,
            child.status.value,
            {k: wire_form(v) for k, v in child.outputs.items()},
            child.failure_message,
        )

    async def settle_child(self, execution_id: str, *, until_waiting: bool) -> bool:
        """Run a child here if nobody else does; is it terminal now?"""
        child = await self.store.get_execution(execution_id)
        if not child.status.terminal and (
            child.owner is None or (child.lease_expires and child.lease_expires < self.now())
        ):
            try:
                child = await self._drive(execution_id, until_waiting=until_waiting)
            except ExecutionClaimed:
                pass
        return child.status.terminal

    async def cancel_child(self, execution_id: str) -> None:
        try:
            await self.stop(execution_id)
        except InvalidStatusUpdate:
            return
        await self.settle_child(execution_id, until_waiting=False)

    # -- signals and stops ---------------------------------------------------------------------

    async def signal(
        self,
        execution_id: str,
        signal_type: SignalType | str,
        *,
        step_name: str | None = None,
        payload: Mapping[str, Sequence[str]] | None = None,
        principal: str | None = None,
    ) -> None:
        execution = await self.store.get_execution(execution_id)
        runbook = self.runbook_of(execution)
        steps = await self.store.get_steps(execution_id)
        body: dict[str, list[str]] = {k: list(v) for k, v in (payload or {}).items()}
        if step_name:
            body.setdefault("StepName", [step_name])
        who = principal or self.settings.principal or getpass.getuser()
        try:
            kind = SignalType(signal_type)
        except ValueError:
            if str(signal_type) == "Deny":
                kind = SignalType.REJECT
            else:
                raise InvalidSignal(f"Unknown signal type {signal_type}") from None
        check_signal(runbook, execution, steps, kind, body, who, self.registry)
        await self.store.add_signal(
            SignalRecord(None, execution_id, kind.value, body, who, self.now())
        )
        driver = self._drivers.get(execution_id)
        if driver is not None:
            driver.wakeup.set()

    async def stop(self, execution_id: str, stop_type: StopType | str = StopType.CANCEL) -> None:
        kind = StopType(stop_type)
        while True:
            execution = await self.store.get_execution(execution_id)
            if execution.status.terminal:
                raise InvalidStatusUpdate(
                    f"Execution {execution_id} is already {execution.status.value}"
                )
            if kind == StopType.COMPLETE and execution.mode != Mode.INTERACTIVE:
                raise InvalidStatusUpdate("Type Complete applies to Interactive executions only")
            changes: dict[str, Any] = {"stop_requested": kind.value}
            if kind == StopType.CANCEL and execution.status != Status.PENDING:
                changes["status"] = Status.CANCELLING
            from runbook_engine.errors import StaleRecord

            try:
                await self.store.update_execution(
                    replace(execution, **changes), expected_version=execution.version
                )
                break
            except StaleRecord:
                continue
        driver = self._drivers.get(execution_id)
        if driver is not None:
            driver.wakeup.set()

    # -- reading -----------------------------------------------------------------------------

    async def get(self, execution_id: str) -> ExecutionView:
        execution = await self.store.get_execution(execution_id)
        steps = await self.store.get_steps(execution_id)
        return ExecutionView(execution, tuple(steps))

    async def list(
        self, *, status: Status | str | None = None, limit: int = 50
    ) -> list[ExecutionRecord]:
        return list(
            await self.store.list_executions(
                status=Status(status).value if status else None, limit=limit
            )
        )


__all__ = ["Engine", "ExecutionView", "StepNotFound"]
