"""Child executions (``aws:executeAutomation`` and rate-controlled automations): started once
per parent step attempt, run here when nobody else runs them, cancelled with their parent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook_engine.coercion import wire_form
from runbook_engine.errors import ExecutionClaimed, InvalidStatusUpdate, ParameterError
from runbook_engine.leases import owner_process_gone
from runbook_engine.plugin import ChildRequest, ChildStatus
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.status import Mode

if TYPE_CHECKING:
    from runbook_engine.engine import Engine

PARENT_ATTEMPT = "parent_attempt"  # extra of a child: the parent step's attempt
DOCUMENT_DIRS = "documents"  # extra: the --documents directories names resolve against


class ChildExecutions:
    """The engine's view of the executions its steps start."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def start(
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
        engine = self.engine
        directories = [*parent.extra.get(DOCUMENT_DIRS, ()), *engine.document_dirs]
        text = await engine.runbooks.child_document(
            request.document_name, request.document_version, directories
        )
        runbook = engine.runbooks.parse(text.content, text.path, text.name)
        try:
            return await engine.create(
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

    async def _child_of(self, parent_id: str, record: StepRecord) -> str | None:
        page, offset = 100, 0
        while True:
            children = await self.engine.store.list_executions(
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

    async def status(self, execution_id: str) -> ChildStatus:
        child = await self.engine.store.get_execution(execution_id)
        return ChildStatus(
            execution_id,
            child.status.value,
            {k: wire_form(v) for k, v in child.outputs.items()},
            child.failure_message,
        )

    async def settle(self, execution_id: str, *, until_waiting: bool) -> bool:
        """Run a child here if nobody else does; is it terminal now?"""
        engine = self.engine
        child = await engine.store.get_execution(execution_id)
        if not child.status.terminal and (
            child.owner is None
            or (child.lease_expires and child.lease_expires < engine.now())
            or owner_process_gone(child.owner)
        ):
            try:
                child = await engine.drive(execution_id, until_waiting=until_waiting)
            except ExecutionClaimed:
                pass
        return child.status.terminal

    async def cancel(self, execution_id: str) -> None:
        try:
            await self.engine.stop(execution_id)
        except InvalidStatusUpdate:
            return
        await self.settle(execution_id, until_waiting=False)
