"""A small ActionContext for action tests: fixed clock, recorded signals, fake children."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runbook_engine.fleet import CommandDocuments, Fleet
from runbook_engine.plugin import (
    ActionContext,
    ChildRequest,
    ChildStatus,
    DocumentAccess,
    FleetAccess,
    SignalView,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def signal(
    type_: str, principal: str = "alice", *, comment: str | None = None, **payload: list[str]
) -> SignalView:
    if comment is not None:
        payload["Comment"] = [comment]
    return SignalView(type=type_, principal=principal, payload=payload, time=NOW)


@dataclass
class FakeContext:
    execution_id: str = "11111111-2222-3333-4444-555555555555"
    step_name: str = "step1"
    step_execution_id: str = "step-exec-1"
    attempt: int = 1
    state: Mapping[str, Any] = field(default_factory=dict)
    signals: Sequence[SignalView] = ()
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("tests.action"))
    region: str = "us-east-1"
    account_id: str = "000000000000"
    files: Mapping[str, bytes] = field(default_factory=dict)
    started: list[ChildRequest] = field(default_factory=list)
    children: dict[str, ChildStatus] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    aws: Any = None  # an AwsCaller, for the AWS actions' tests
    parameters: Any = None  # a ParameterStore
    targets: FleetAccess = field(default_factory=Fleet)  # empty inventory: localhost only
    documents: DocumentAccess = field(default_factory=CommandDocuments)
    checkpoints: list[Mapping[str, Any]] = field(default_factory=list)

    def now(self) -> datetime:
        return NOW

    async def start_child(self, request: ChildRequest) -> str:
        self.started.append(request)
        child_id = f"child-{len(self.started)}"
        self.children[child_id] = ChildStatus(child_id, "InProgress", {}, None)
        return child_id

    async def child_status(self, execution_id: str) -> ChildStatus:
        return self.children[execution_id]

    async def cancel_child(self, execution_id: str) -> None:
        self.cancelled.append(execution_id)

    async def checkpoint(self, state: Mapping[str, Any]) -> None:
        self.checkpoints.append(dict(state))


def _conforms(ctx: FakeContext) -> ActionContext:
    return ctx  # mypy checks that FakeContext satisfies the protocol
