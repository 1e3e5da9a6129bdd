"""The context a running action sees (the ActionContext protocol of plugin.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio

from runbook_engine.plugin import (
    ChildRequest,
    ChildStatus,
    DocumentAccess,
    FleetAccess,
    SignalView,
)
from runbook_engine.records import StepRecord

if TYPE_CHECKING:
    from runbook_engine.aws import AwsCaller
    from runbook_engine.parameters import ParameterStore
    from runbook_engine.scheduler import Driver

CHECKPOINT_KEY = "checkpointed"  # in a step record's state: resume it, do not fail it


_LOGGERS: dict[str, logging.Logger] = {}


def step_logger(step_name: str) -> logging.Logger:
    """``runbook_engine.step.<name>``, looked up once (``getLogger`` takes a lock)."""
    logger = _LOGGERS.get(step_name)
    if logger is None:
        logger = _LOGGERS[step_name] = logging.getLogger(f"runbook_engine.step.{step_name}")
    return logger


@dataclass
class StepContext:
    execution_id: str
    step_name: str
    step_execution_id: str
    attempt: int
    state: Mapping[str, Any]
    signals: Sequence[SignalView]
    log: logging.Logger
    region: str
    account_id: str
    targets: FleetAccess
    documents: DocumentAccess
    files: Mapping[str, bytes] = field(default_factory=dict)
    _driver: Driver | None = None
    _record: StepRecord | None = None
    _checkpoint_lock: anyio.Lock = field(default_factory=anyio.Lock)

    @classmethod
    def for_record(cls, driver: Driver, record: StepRecord) -> StepContext:
        start = record.start_time
        signals = [
            SignalView(s.type, s.principal, s.payload, s.time)
            for s in driver.signals
            if start is None or s.time >= start
        ]
        return cls(
            execution_id=record.execution_id,
            step_name=record.step_name,
            step_execution_id=record.step_execution_id,
            attempt=record.attempt,
            state=dict(record.state),
            signals=signals,
            log=step_logger(record.step_name),
            region=driver.settings.region,
            account_id=driver.settings.account_id,
            files=driver.attachments(),
            targets=driver.engine.fleet,
            documents=driver.engine.command_documents,
            _driver=driver,
            _record=record,
        )

    def now(self) -> datetime:
        assert self._driver is not None
        return self._driver.engine.now()

    @property
    def aws(self) -> AwsCaller:
        """Made on first use: steps that never call AWS never create a boto3 session."""
        assert self._driver is not None
        return self._driver.engine.aws_for(self._driver.execution)

    @property
    def parameters(self) -> ParameterStore:
        assert self._driver is not None
        return self._driver.engine.parameters

    async def start_child(self, request: ChildRequest) -> str:
        assert self._driver is not None and self._record is not None
        children = self._driver.engine.children
        return await children.start(self._driver.execution, self._record, request)

    async def child_status(self, execution_id: str) -> ChildStatus:
        assert self._driver is not None
        return await self._driver.engine.children.status(execution_id)

    async def cancel_child(self, execution_id: str) -> None:
        assert self._driver is not None
        await self._driver.engine.children.cancel(execution_id)

    async def checkpoint(self, state: Mapping[str, Any]) -> None:
        assert self._driver is not None and self._record is not None
        async with self._checkpoint_lock:  # fan-out tasks checkpoint concurrently
            record = replace(self._record, state={**state, CHECKPOINT_KEY: True})
            await self._driver.save(record)
            self._record = record
