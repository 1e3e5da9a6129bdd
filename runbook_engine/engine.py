"""The library facade: ``async with Engine(...) as engine: await engine.run(path, params)``."""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from runbook_engine import control, leases
from runbook_engine.children import DOCUMENT_DIRS, ChildExecutions
from runbook_engine.coercion import resolve_parameters, wire_form
from runbook_engine.documents import DocumentLibrary, DocumentText
from runbook_engine.errors import (
    ExecutionClaimed,
    LeaseLost,
    RunbookError,
    StepNotFound,
)
from runbook_engine.fleet import CommandDocuments, Fleet
from runbook_engine.inventory import Inventory, load_inventory
from runbook_engine.model import Runbook
from runbook_engine.parameter_access import default_lookup, open_parameter_store
from runbook_engine.parameters import ParameterStore
from runbook_engine.plugin import ActionError
from runbook_engine.preview import Preview
from runbook_engine.rate_controlled import RateControlledDriver, check_targets, is_rate_controlled
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.registry import ActionRegistry, default_registry
from runbook_engine.rendering import RenderScope, render_default
from runbook_engine.runbook_loader import RunbookLoader
from runbook_engine.scheduler import Driver
from runbook_engine.settings import Settings
from runbook_engine.status import Mode, SignalType, Status, StopType
from runbook_engine.store import ClientToken, StateStore, open_store
from runbook_engine.store.documents import DocumentRepository

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
        self.document_dirs = [str(Path(d).expanduser().resolve()) for d in documents]
        if isinstance(inventory, str | Path):
            inventory = load_inventory(inventory)
        self.command_documents = CommandDocuments(self.library)
        self.registry = registry or default_registry()
        self.settings = settings or Settings()
        self.fleet = Fleet(inventory, ramp_up=self.settings.ramp_up)  # ctx.targets
        self.owner = leases.new_owner(uuid.uuid4().hex[:8])
        self.runbooks = RunbookLoader(self.library, self.registry)
        self.runbooks.repository = repository
        self.children = ChildExecutions(self)
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

    # -- documents (runbook_loader) --------------------------------------------------------------

    @property
    def repository(self) -> DocumentRepository | None:
        """Stored documents (CreateDocument), looked up by name before the directories."""
        return self.runbooks.repository

    @repository.setter
    def repository(self, repository: DocumentRepository | None) -> None:
        self.runbooks.repository = repository

    def load(self, reference: str) -> tuple[DocumentText, Runbook]:
        """A runbook by path or by name from the directories, validated."""
        return self.runbooks.load(reference)

    async def find_by_name(self, name: str, version: str | None = None) -> DocumentText:
        return await self.runbooks.find_by_name(name, version)

    async def resolve(self, reference: str, version: str | None = None) -> DocumentText:
        return await self.runbooks.resolve(reference, version)

    def runbook_of(self, execution: ExecutionRecord) -> Runbook:
        return self.runbooks.runbook_of(execution)

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
            runbook = self.runbooks.parse(text.content, text.path, text.name)
        else:
            text, runbook = self.load(document)
        return await self.create(
            text, runbook, parameters or {}, Mode(mode), principal, parent, options
        )

    async def create(
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
                DOCUMENT_DIRS: self.document_dirs,
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

    async def preview(
        self,
        document: str,
        parameters: Mapping[str, Any] | None = None,
        options: StartOptions | None = None,
    ) -> Preview:
        """Dry run: resolve parameters and targets, classify every step; nothing runs or
        is stored (runbook_engine.dry_run)."""
        from runbook_engine.dry_run import dry_run

        return await dry_run(self, document, parameters or {}, options or StartOptions())

    # -- running -----------------------------------------------------------------------------

    async def wait(self, execution_id: str, *, until_waiting: bool = False) -> ExecutionView:
        """Drive the execution until it ends (or, with ``until_waiting``, until it waits)."""
        await self.drive(execution_id, until_waiting=until_waiting)
        return await self.get(execution_id)

    async def resume(self, execution_id: str, *, until_waiting: bool = False) -> ExecutionView:
        """Continue an execution whose process died, or one that waits."""
        return await self.wait(execution_id, until_waiting=until_waiting)

    async def drive(
        self,
        execution_id: str,
        *,
        until_waiting: bool = False,
        handed: control.Claimed | None = None,
    ) -> ExecutionRecord:
        """``wait`` without reading the execution back: the record as the driver left it.
        ``handed``: claimed for this engine by a signal already (``send_signal``)."""
        if execution_id in self._drivers:
            raise ExecutionClaimed(f"Execution {execution_id} is already being run here")
        known_steps = handed.steps if handed is not None else None
        # Claimed first (the claim returns the record): reading it beforehand cost a query
        # on every drive, for the rare execution that has ended meanwhile.
        if handed is not None:
            claimed: ExecutionRecord | None = handed.execution
        else:
            claimed = await leases.claim(
                self.store, execution_id, self.owner, self.settings.lease_seconds, self.now()
            )
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
        if known_steps is None:
            known_steps = await self.store.get_steps(execution_id)
        records = list(known_steps)
        driver: Driver | RateControlledDriver
        if is_rate_controlled(claimed):
            driver = RateControlledDriver(self, claimed)
        else:
            driver = Driver(self, claimed, runbook, records, until_waiting=until_waiting)
        self._drivers[execution_id] = driver
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(
                    leases.heartbeat,
                    self.store,
                    execution_id,
                    self.owner,
                    self.settings.lease_seconds,
                    self.now,
                )
                result = await driver.run()
                group.cancel_scope.cancel()
            return result
        except BaseExceptionGroup as errors:
            lost: BaseException | None = errors.subgroup(LeaseLost)  # at any depth
            while isinstance(lost, BaseExceptionGroup):  # the driver has a group too
                lost = lost.exceptions[0]
            if lost is not None:
                raise lost from None
            raise
        finally:
            self._drivers.pop(execution_id, None)
            with anyio.CancelScope(shield=True):
                await self.store.release(execution_id, self.owner)

    def nudge(self, execution_id: str) -> None:
        """Make the driver of this process, if one drives the execution, look again now."""
        driver = self._drivers.get(execution_id)
        if driver is not None:
            driver.wakeup.set()

    async def wake(self, execution_id: str, known: ExecutionRecord | None = None) -> None:
        """Make a parked execution due now, so that a worker (``claim_next``) picks it up.
        ``known``: the record as just read, tried first (read again if it is stale)."""
        await control.make_due(self.store, execution_id, self.now, known)

    # -- signals and stops (control) -------------------------------------------------------------

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
        """Send a signal (Approve, Reject, Resume, StartStep, ...) to a waiting execution.
        ``execution``: its record, if the caller has just read it (saves reading it again)."""
        await control.send_signal(
            self, execution_id, signal_type, step_name, payload, principal, execution
        )

    async def stop(self, execution_id: str, stop_type: StopType | str = StopType.CANCEL) -> None:
        """Ask an execution to stop: ``Cancel`` runs the onCancel paths, ``Complete`` ends an
        Interactive execution."""
        await control.request_stop(self, execution_id, StopType(stop_type))

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


__all__ = ["Engine", "ExecutionView", "StartOptions", "StepNotFound"]
