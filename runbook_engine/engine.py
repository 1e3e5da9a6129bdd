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
from typing import TYPE_CHECKING, Any

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
    RunbookError,
    StaleRecord,
    StepNotFound,
)
from runbook_engine.fleet import CommandDocuments, Fleet
from runbook_engine.inputs import ActionSchema
from runbook_engine.inventory import Inventory, load_inventory
from runbook_engine.model import Runbook
from runbook_engine.parameter_access import default_lookup, open_parameter_store
from runbook_engine.parameters import ParameterStore
from runbook_engine.parser import parse_runbook
from runbook_engine.plugin import ActionError, ChildRequest, ChildStatus
from runbook_engine.preview import Preview, preview_runbook
from runbook_engine.rate_controlled import RateControlledDriver, check_targets, is_rate_controlled
from runbook_engine.records import ExecutionRecord, SignalRecord, StepRecord
from runbook_engine.registry import ActionRegistry, default_registry
from runbook_engine.rendering import RenderScope, render_default
from runbook_engine.scheduler import Driver
from runbook_engine.settings import Settings
from runbook_engine.signals import check_signal
from runbook_engine.source import SourceSyntaxError, load_source
from runbook_engine.status import Mode, SignalType, Status, StopType
from runbook_engine.store import ClientToken, StateStore, open_store
from runbook_engine.store.documents import DocumentRepository
from runbook_engine.validation import ValidationReport, runbook_from_report, validate_text

if TYPE_CHECKING:
    from runbook_engine.aws import AwsCaller, Boto3Caller


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
    # Rate control (ssm-reference §5.5): one child execution per target value.
    target_parameter_name: str | None = None
    targets: Sequence[Mapping[str, Any]] = ()
    target_maps: Sequence[Mapping[str, Any]] = ()


PARENT_ATTEMPT = "parent_attempt"  # extra of a child: the parent step's attempt
DOCUMENT_DIRS = "documents"  # extra: the --documents directories names resolve against


def owner_process_gone(owner: str, hostname: str | None = None) -> bool:
    """Has the process named by a lease owner (``host:pid:nonce``, see ``Engine.owner``)
    ended? Only a process of this host can be checked; anything unsure counts as alive
    (another host, a pid we may not signal, a pid reused since), and then the lease
    expires as usual. A zombie (killed, not yet reaped by its parent) runs nothing: gone.
    The host name stands for the pid namespace: containers sharing one database need
    distinct host names (as they have by default).
    """
    host, _, rest = owner.rpartition(":")
    host, _, pid_text = host.rpartition(":")
    if not rest or host != (hostname or socket.gethostname()) or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _parsed_only(
    content: str, path: str, schemas: Mapping[str, ActionSchema], name: str
) -> ValidationReport:
    """Parse a document without the expression and step-graph checks."""
    try:
        source = load_source(content, path)
    except SourceSyntaxError as exc:
        return ValidationReport(path, None, None, (exc.diagnostic,))
    runbook, diagnostics = parse_runbook(source, schemas, name)
    return ValidationReport(path, "Automation", runbook, tuple(diagnostics), source)


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
        parameters: ParameterStore | None = None,
        inventory: Inventory | str | Path | None = None,
        repository: DocumentRepository | None = None,
    ) -> None:
        self._wrap_store = wrap_store
        self._store_arg = store
        self.listener = listener
        self._store: StateStore | None = store if not isinstance(store, str | None) else None
        self._owns_store = self._store is None
        self.library = DocumentLibrary(documents)
        # Saved with each execution: a resume in another process, started without the
        # same --documents, still finds the child runbooks it names.
        self._document_dirs = [str(Path(d).expanduser().resolve()) for d in documents]
        if isinstance(inventory, str | Path):
            inventory = load_inventory(inventory)
        self.command_documents = CommandDocuments(self.library)
        # Stored documents (CreateDocument), looked up by name before the directories;
        # by default the state store's own.
        self.repository = repository
        self.registry = registry or default_registry()
        self.settings = settings or Settings()
        self.fleet = Fleet(inventory, ramp_up=self.settings.ramp_up)  # ctx.targets
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._runbooks: dict[str, Runbook] = {}
        self._drivers: dict[str, Driver | RateControlledDriver] = {}
        # Made on first use, so runbooks that never call AWS never create boto3 sessions.
        self._aws: Boto3Caller | None = None
        self._identity_resolved = False
        self._parameters = parameters
        self._owns_parameters = parameters is None

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
        if self._owns_parameters and self._parameters is not None:
            self._parameters.close()
            self._parameters = None
        if self._aws is not None:
            self._aws.close()
            self._aws = None
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

    # -- AWS and the Parameter Store (made on first use) ---------------------------------------

    @property
    def aws(self) -> Boto3Caller:
        """The engine's AWS caller, with the credentials of the standard chain."""
        if self._aws is None:
            from runbook_engine.aws import Boto3Caller

            self._aws = Boto3Caller(self.settings.aws, fallback_region=self.settings.region)
        return self._aws

    def aws_for(self, execution: ExecutionRecord) -> AwsCaller:
        """The AWS caller an execution's steps use: its runbook's ``assumeRole`` when set."""
        runbook = self.runbook_of(execution)
        role = ""
        if runbook.assume_role:
            scope = RenderScope.build(execution, {}, None, self.settings)
            role = str(scope.render(runbook.assume_role) or "").strip()
        if not role or "{{" in role:
            return self.aws
        return self.aws.for_role(role, f"runbook-{execution.execution_id}")

    @property
    def parameters(self) -> ParameterStore:
        """The Parameter Store: local in the state database, or AWS SSM (settings)."""
        if self._parameters is None:
            url = self._store_arg if isinstance(self._store_arg, str) else None
            if self._store_arg is not None and url is None:
                url = getattr(self._store_arg, "url", None) or "memory://"
            self._parameters = open_parameter_store(
                self.settings,
                state_url=url,
                aws=lambda: self.aws,
                user=self.settings.principal or getpass.getuser(),
            )
        return self._parameters

    async def _resolve_identity(self) -> None:
        """``global:ACCOUNT_ID``/``REGION``/``AWS_PARTITION`` from the AWS session, once."""
        if self._identity_resolved or not self.settings.aws.identity_from_session:
            return
        try:
            identity = await self.aws.identity()
        except ActionError as exc:
            raise RunbookError(f"cannot read the AWS identity: {exc.message}") from exc
        self.settings = replace(
            self.settings,
            account_id=identity.account_id,
            region=identity.region,
            partition=identity.partition,
        )
        self._identity_resolved = True

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

    def _parse(self, content: str, path: str, name: str, *, validated: bool = False) -> Runbook:
        """The runbook of a text; ``validated``: the text passed every check before (it is
        an execution's saved document), so parsing it is enough."""
        key = f"{name}\0{content}"
        runbook = self._runbooks.get(key)
        if runbook is None:
            schemas = self.registry.schemas()
            if validated:
                report = _parsed_only(content, path, schemas, name)
            else:
                report = validate_text(content, path, schemas, name=name)
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
        return self._parse(
            execution.document_content, path, execution.document_name, validated=True
        )

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
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        options = options or StartOptions()
        execution_id = str(uuid.uuid4())
        await self._resolve_identity()
        rate_controlled = bool(options.target_parameter_name or options.target_maps)
        if rate_controlled:
            check_targets(
                list(runbook.parameters),
                options.target_parameter_name,
                options.targets,
                options.target_maps,
                options.max_concurrency,
                options.max_errors,
            )
        checked = dict(parameters)
        if options.target_parameter_name:  # each child gets its own value: check with one
            literal = [t for t in options.targets if t.get("Key") == "ParameterValues"]
            sample = [str(v) for v in (literal[0].get("Values") or ())][:1] if literal else []
            checked[options.target_parameter_name] = sample or ["target"]
        if options.target_maps:
            values: dict[str, Any] = {}  # each map is a child's parameter set
        else:
            lookup = await default_lookup(runbook, checked, lambda: self.parameters)
            values = resolve_parameters(
                runbook,
                checked,
                lambda p: render_default(p, self.settings, execution_id, self.now(), lookup),
            )
            values.pop(options.target_parameter_name or "", None)
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
            target_parameter_name=options.target_parameter_name,
            targets=tuple(dict(t) for t in options.targets),
            target_maps=tuple(dict(t) for t in options.target_maps),
            extra={
                DOCUMENT_DIRS: self._document_dirs,
                **(extra or {}),
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
        lookup = await default_lookup(runbook, parameters or {}, lambda: self.parameters)
        values = resolve_parameters(
            runbook,
            parameters or {},
            lambda p: render_default(p, self.settings, execution_id, self.now(), lookup),
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

    async def drive(self, execution_id: str, *, until_waiting: bool = False) -> ExecutionRecord:
        """``wait`` without reading the execution back: the record as the driver left it."""
        return await self._drive(execution_id, until_waiting=until_waiting)

    async def resume(self, execution_id: str, *, until_waiting: bool = False) -> ExecutionView:
        """Continue an execution whose process died, or one that waits."""
        return await self.wait(execution_id, until_waiting=until_waiting)

    async def _drive(self, execution_id: str, *, until_waiting: bool) -> ExecutionRecord:
        if execution_id in self._drivers:
            raise ExecutionClaimed(f"Execution {execution_id} is already being run here")
        # Claimed first (the claim returns the record): reading it beforehand cost a query
        # on every drive, for the rare execution that has ended meanwhile.
        claimed = await self._claim(execution_id)
        if claimed is None or claimed.status.terminal:
            if claimed is not None:
                await self.store.release(execution_id, self.owner)
            execution = claimed or await self.store.get_execution(execution_id)
            if execution.status.terminal:
                return execution
            raise ExecutionClaimed(
                f"Execution {execution_id} is being run by another process; "
                "it can be resumed when that process stops"
            )
        runbook = self.runbook_of(claimed)
        await self._resolve_identity()
        records = list(await self.store.get_steps(execution_id))
        driver: Driver | RateControlledDriver
        if is_rate_controlled(claimed):
            driver = RateControlledDriver(self, claimed)
        else:
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

    async def _claim(self, execution_id: str) -> ExecutionRecord | None:
        """Take the lease; a lease left by a dead process of this host is taken over at once.

        Waiting ``lease_seconds`` after a ``kill -9`` would make ``runbook resume`` fail
        right after a crash, although the pid in the owner string proves nobody runs the
        execution. Releasing compares the owner, and claiming is atomic, so of several
        processes taking over at once exactly one wins.
        """
        lease = self.settings.lease_seconds
        claimed = await self.store.claim(execution_id, self.owner, lease, self.now())
        if claimed is None:
            holder = (await self.store.get_execution(execution_id)).owner
            if holder is not None and owner_process_gone(holder):
                await self.store.release(execution_id, holder)
                claimed = await self.store.claim(execution_id, self.owner, lease, self.now())
        return claimed

    async def _heartbeat(self, execution_id: str) -> None:
        while True:
            await anyio.sleep(self.settings.lease_seconds / 3)
            renewed = await self.store.renew(
                execution_id, self.owner, self.settings.lease_seconds, self.now()
            )
            if not renewed:  # another process took the execution over: stop driving it
                raise LeaseLost(f"Execution {execution_id} was taken over by another process")

    async def wake(self, execution_id: str, known: ExecutionRecord | None = None) -> None:
        """Make a parked execution due now, so that a worker (``claim_next``) picks it up:
        after a signal, a stop request, or the end of a child execution it waits for.
        ``known``: the record as just read, tried first (read again if it is stale)."""
        while True:
            execution = known or await self.store.get_execution(execution_id)
            known = None
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
        """Start the child of one attempt of a parent step, or return the one started already.

        A process that dies between creating the child and recording its id in the parent
        step's checkpoint leaves a child nobody knows of; asked again for the same step
        execution and attempt, this returns that child instead of starting a second one.
        """
        existing = await self._child_of(parent.execution_id, record)
        if existing is not None:
            return existing
        directories = [*parent.extra.get(DOCUMENT_DIRS, ()), *self._document_dirs]
        text = await self._child_document(request, directories)
        runbook = self._parse(text.content, text.path, text.name)
        try:
            return await self._create(
                text,
                runbook,
                dict(request.parameters),
                Mode.AUTO,
                parent.executed_by,
                (parent.execution_id, record.step_execution_id),
                extra={
                    PARENT_ATTEMPT: record.attempt,
                    DOCUMENT_DIRS: list(dict.fromkeys(directories)),
                },
            )
        except ParameterError as exc:
            raise ParameterError(f"child runbook {request.document_name}: {exc.message}") from exc

    async def _child_document(
        self, request: ChildRequest, directories: Sequence[str]
    ) -> DocumentText:
        """A child runbook: a stored document first, then the parent's directories."""
        name, version = request.document_name, request.document_version
        if self.repository is not None and STORED_NAME.fullmatch(name):
            try:
                return await self._stored(name, version)
            except DocumentMissing:
                pass
        text = DocumentLibrary(directories).find(name)
        _check_file_version(name, version)
        return text

    async def _child_of(self, parent_id: str, record: StepRecord) -> str | None:
        page, offset = 100, 0
        while True:
            children = await self.store.list_executions(
                parent_execution_id=parent_id, limit=page, offset=offset
            )
            for child in children:
                if (
                    child.parent_step_execution_id == record.step_execution_id
                    and child.extra.get(PARENT_ATTEMPT, 1) == record.attempt
                ):
                    return child.execution_id
            if len(children) < page:
                return None
            offset += page

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
            child.owner is None
            or (child.lease_expires and child.lease_expires < self.now())
            or owner_process_gone(child.owner)
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
        execution: ExecutionRecord | None = None,
    ) -> None:
        """Record a signal and make the execution due; ``execution``: its record, if the
        caller has just read it (saves reading it again)."""
        if execution is None or execution.execution_id != execution_id:
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
        await self.wake(execution_id, execution)

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
