"""The library facade: ``async with Engine(...) as engine: await engine.run(path, params)``."""

from __future__ import annotations

import getpass
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio

from runbook_engine import expressions
from runbook_engine.coercion import resolve_parameters, wire_form
from runbook_engine.documents import DocumentLibrary, DocumentText
from runbook_engine.errors import (
    DefinitionVersionNotFound,
    DocumentError,
    DocumentMissing,
    DocumentNotFound,
    DocumentVersionMissing,
    ExecutionClaimed,
    InvalidSignal,
    InvalidStatusUpdate,
    LeaseLost,
    ParameterError,
    StaleRecord,
    StepNotFound,
)
from runbook_engine.model import Runbook
from runbook_engine.plugin import ChildRequest, ChildStatus
from runbook_engine.preview import Preview, preview_runbook
from runbook_engine.records import ExecutionRecord, SignalRecord, StepRecord
from runbook_engine.registry import ActionRegistry, default_registry
from runbook_engine.rendering import RenderScope, render_default
from runbook_engine.scheduler import Driver
from runbook_engine.settings import Settings
from runbook_engine.signals import check_signal
from runbook_engine.status import Mode, SignalType, Status, StopType
from runbook_engine.store import ClientToken, StateStore, open_store
from runbook_engine.store.documents import DocumentRepository
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


@dataclass(frozen=True)
class StartOptions:
    """What a start request may add beyond document, parameters and mode (the daemon's
    StartAutomationExecution): an idempotency token, tags, and the rate-control
    settings to keep on the record."""

    client_token: ClientToken | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    max_concurrency: str | None = None
    max_errors: str | None = None


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
        repository: DocumentRepository | None = None,
    ) -> None:
        self._wrap_store = wrap_store
        self._store_arg = store
        self.listener = listener
        self._store: StateStore | None = store if not isinstance(store, str | None) else None
        self._owns_store = self._store is None
        self.library = DocumentLibrary(documents)
        # Stored documents (CreateDocument), looked up by name before the directories;
        # by default the state store's own.
        self.repository = repository
        self.registry = registry or default_registry()
        self.settings = settings or Settings()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._runbooks: dict[str, Runbook] = {}
        self._drivers: dict[str, Driver] = {}

    async def __aenter__(self) -> Engine:
        if self._store is None:
            url = self._store_arg if isinstance(self._store_arg, str) else None
            self._store = open_store(url)
        if self._wrap_store is not None:
            self._store = self._wrap_store(self.store)
        if self.repository is None:
            self.repository = getattr(self.store, "documents", None)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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

    async def find_by_name(self, name: str, version: str | None = None) -> DocumentText:
        """A runbook by name only, never a path (what the API and schedules may ask for):
        a stored document first, then the directories (whose files are version 1)."""
        if self.repository is not None and STORED_NAME.fullmatch(name):
            try:
                return await self._stored(name, version)
            except DocumentMissing:
                pass
        text = self.library.find_by_name(name)
        _check_file_version(name, version)
        return text

    async def resolve(self, reference: str, version: str | None = None) -> DocumentText:
        """Like ``load`` (a path or a name), with stored documents looked up first."""
        if self.repository is not None and STORED_NAME.fullmatch(reference):
            try:
                return await self._stored(reference, version)
            except DocumentMissing:
                pass
        text = self.library.find(reference)
        _check_file_version(reference, version)
        return text

    async def _stored(self, name: str, version: str | None) -> DocumentText:
        assert self.repository is not None
        try:
            stored = await self.repository.find(name, version)
        except DocumentVersionMissing as exc:
            raise DefinitionVersionNotFound(exc.message) from exc
        if stored.document.document_type != "Automation":
            raise DocumentNotFound(f"Document {name} is not an Automation runbook")
        number = str(stored.version.version)
        return DocumentText(name, f"{name}:{number}", stored.version.content, "", number)

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
        document: str | DocumentText,
        parameters: Mapping[str, Any] | None = None,
        *,
        mode: Mode | str = Mode.AUTO,
        principal: str | None = None,
        parent: tuple[str, str] | None = None,
        options: StartOptions | None = None,
    ) -> str:
        """Create an execution (nothing runs yet); invalid parameters start nothing.

        With ``options.client_token``, a retried start returns the first execution's id.
        ``document`` is a path or a name (``load``), or a document already found
        (``find_by_name``).
        """
        if isinstance(document, DocumentText):
            text = document
            runbook = self._parse(text.content, text.path, text.name)
        else:
            text, runbook = self.load(document)
        return await self._create(
            text, runbook, parameters or {}, Mode(mode), principal, parent, options
        )

    async def _create(
        self,
        text: DocumentText,
        runbook: Runbook,
        parameters: Mapping[str, Any],
        mode: Mode,
        principal: str | None,
        parent: tuple[str, str] | None,
        options: StartOptions | None = None,
    ) -> str:
        options = options or StartOptions()
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
            document_version=text.version,
            status=Status.PENDING,
            mode=mode,
            parameters=values,
            supplied_parameters={k: wire_form(v) for k, v in parameters.items()},
            variables=variables,
            executed_by=principal or self.settings.principal or getpass.getuser(),
            parent_execution_id=parent[0] if parent else None,
            parent_step_execution_id=parent[1] if parent else None,
            max_concurrency=options.max_concurrency,
            max_errors=options.max_errors,
            extra={
                "document_path": text.path,
                "document_dir": text.directory,
            },
        )
        return await self.store.create_execution(
            record, client_token=options.client_token, tags=options.tags
        )

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

    async def preview(self, document: str, parameters: Mapping[str, Any] | None = None) -> Preview:
        """Dry run: resolve parameters and classify every step; nothing runs or is stored."""
        _text, runbook = self.load(document)
        execution_id = "00000000-0000-0000-0000-000000000000"
        values = resolve_parameters(
            runbook,
            parameters or {},
            lambda p: render_default(p, self.settings, execution_id, self.now()),
        )
        scope = RenderScope(
            expressions.Scope(
                parameters=values,
                execution_id=execution_id,
                account_id=self.settings.account_id,
                region=self.settings.region,
                partition=self.settings.partition,
            )
        )

        def load_child(name: str) -> Runbook | None:
            try:
                return self.load(name)[1]
            except DocumentError:
                return None

        return preview_runbook(runbook, values, scope.render, load_child)

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
        except BaseExceptionGroup as errors:
            lost = [e for e in errors.exceptions if isinstance(e, LeaseLost)]
            if lost:
                raise lost[0] from None
            raise
        finally:
            self._drivers.pop(execution_id, None)
            with anyio.CancelScope(shield=True):
                await self.store.release(execution_id, self.owner)

    async def _heartbeat(self, execution_id: str) -> None:
        while True:
            await anyio.sleep(self.settings.lease_seconds / 3)
            renewed = await self.store.renew(
                execution_id, self.owner, self.settings.lease_seconds, self.now()
            )
            if not renewed:  # another process took the execution over: stop driving it
                raise LeaseLost(f"Execution {execution_id} was taken over by another process")

    async def wake(self, execution_id: str) -> None:
        """Make a parked execution due now, so that a worker (``claim_next``) picks it up:
        after a signal, a stop request, or the end of a child execution it waits for."""
        while True:
            execution = await self.store.get_execution(execution_id)
            now = self.now()
            if execution.status.terminal or (
                execution.wake_at is not None and execution.wake_at <= now
            ):
                return
            try:
                await self.store.update_execution(
                    replace(execution, wake_at=now), expected_version=execution.version
                )
                return
            except StaleRecord:
                continue

    # -- child executions (aws:executeAutomation) -----------------------------------------------

    async def start_child(
        self, parent: ExecutionRecord, record: StepRecord, request: ChildRequest
    ) -> str:
        text = await self.resolve(request.document_name, request.document_version)
        runbook = self._parse(text.content, text.path, text.name)
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
        await self.wake(execution_id)

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
            # wake_at: due now, so that a worker picks a parked execution up (see wake).
            changes: dict[str, Any] = {"stop_requested": kind.value, "wake_at": self.now()}
            if kind == StopType.CANCEL and execution.status != Status.PENDING:
                changes["status"] = Status.CANCELLING
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
        if kind == StopType.CANCEL:  # cancelling a parent cancels its running children
            for child in await self.store.list_executions(parent_execution_id=execution_id):
                if not child.status.terminal:
                    try:
                        await self.stop(child.execution_id)
                    except InvalidStatusUpdate:
                        pass

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


# A name a stored document may have (CreateDocument's pattern); anything else is a path.
STORED_NAME = re.compile(r"[a-zA-Z0-9_\-.]{3,128}")


def _check_file_version(name: str, version: str | None) -> None:
    if version not in (None, "", "$DEFAULT", "$LATEST", "1"):
        raise DefinitionVersionNotFound(f"Version {version} of document {name} does not exist")


__all__ = ["Engine", "ExecutionView", "StartOptions", "StepNotFound"]
