"""Persisted records: what the state store keeps about executions, steps and signals.

Frozen values. The store turns rows into these at its boundary; the conductor reads
them to decide; the scheduler replaces them (``dataclasses.replace``) and writes them
back. Typed values (parameters, outputs, variables) are kept as JSON-able Python
values; the API's list-of-strings form is computed from them when shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runbook_engine.status import Mode, Status


@dataclass(frozen=True, slots=True)
class LoopContext:
    """Where an inner step of an aws:loop ran: ParentStepDetails in the API."""

    step_execution_id: str  # of the loop step's record
    step_name: str
    iteration: int  # 1-based
    iterator_value: Any = None


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    execution_id: str
    document_name: str
    document_content: str  # the runbook text as it was at start (resume needs no file)
    status: Status
    mode: Mode = Mode.AUTO
    document_version: str = "1"
    document_format: str = "yaml"
    parameters: Mapping[str, Any] = field(default_factory=dict)  # typed, defaults resolved
    supplied_parameters: Mapping[str, list[str]] = field(default_factory=dict)  # as given
    variables: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)  # "Step.Output" -> typed value
    start_time: datetime | None = None
    end_time: datetime | None = None
    failure_message: str | None = None
    parent_execution_id: str | None = None
    parent_step_execution_id: str | None = None
    current_step_name: str | None = None
    current_action: str | None = None
    executed_by: str = ""
    stop_requested: str | None = None  # "Cancel" | "Complete" once asked
    cancel_deadline: datetime | None = None  # onCancel workflow ends by then
    wake_at: datetime | None = None  # earliest timer of a parked step
    target_parameter_name: str | None = None
    targets: tuple[Mapping[str, Any], ...] = ()
    target_maps: tuple[Mapping[str, Any], ...] = ()
    resolved_targets: tuple[str, ...] = ()
    max_concurrency: str | None = None
    max_errors: str | None = None
    owner: str | None = None  # lease holder while a process runs it
    lease_expires: datetime | None = None
    version: int = 0  # compare-and-set counter, bumped on every write
    extra: Mapping[str, Any] = field(default_factory=dict)  # settings the run needs again


@dataclass(frozen=True, slots=True)
class StepRecord:
    execution_id: str
    step_execution_id: str
    sequence: int  # order of start within the execution
    step_name: str
    action: str
    status: Status
    attempt: int = 1
    start_time: datetime | None = None
    end_time: datetime | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)  # rendered
    outputs: Mapping[str, Any] = field(default_factory=dict)  # typed, predefined + custom
    response: Any = None
    logs: str = ""  # full stdout/stderr where the action has them
    failure_message: str | None = None
    failure_type: str | None = None
    failure_stage: str | None = None
    failure_details: Mapping[str, list[str]] = field(default_factory=dict)
    wake_at: datetime | None = None  # a parked step wakes up then
    waiting_for: tuple[str, ...] = ()  # signal types that wake it
    state: Mapping[str, Any] = field(default_factory=dict)  # action checkpoint
    message: str = ""  # shown while waiting (approval message)
    child_execution_id: str | None = None
    loop: LoopContext | None = None
    valid_next_steps: tuple[str, ...] = ()
    overridden_parameters: Mapping[str, list[str]] = field(default_factory=dict)
    cancel_run: bool = False  # ran as part of the onCancel workflow
    target: str | None = None  # rate control: the target value this child record stands for


@dataclass(frozen=True, slots=True)
class SignalRecord:
    signal_id: int | None
    execution_id: str
    type: str
    payload: Mapping[str, list[str]]
    principal: str
    time: datetime
    consumed: bool = False
