"""Records for the store tests: one with every field set, and hypothesis strategies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from runbook_engine.records import ExecutionRecord, LoopContext, SignalRecord, StepRecord
from runbook_engine.status import Mode, Status

T0 = datetime(2024, 5, 17, 8, 30, 15, 123456, tzinfo=UTC)


def execution(execution_id: str = "exec-1", **changes: object) -> ExecutionRecord:
    """An execution with every field away from its default."""
    fields: dict[str, object] = {
        "execution_id": execution_id,
        "document_name": "Example-Restart",
        "document_content": "schemaVersion: '0.3'\nmainSteps: []\n",
        "status": Status.IN_PROGRESS,
        "mode": Mode.INTERACTIVE,
        "document_version": "3",
        "document_format": "json",
        "parameters": {"InstanceId": "i-1", "Count": 3, "Flags": [True, None, 1.5]},
        "supplied_parameters": {"InstanceId": ["i-1"], "Count": ["3"]},
        "variables": {"attempts": 2, "nested": {"a": [1, {"b": "c"}]}},
        "outputs": {"Step.Output": 'é\u2603 \\ " quoted', "Other.List": ["x", "y"]},
        "start_time": T0,
        "end_time": T0 + timedelta(minutes=2),
        "failure_message": "Step fails when it is Verifying the command.",
        "parent_execution_id": "parent-1",
        "parent_step_execution_id": "parent-step-1",
        "current_step_name": "restart",
        "current_action": "aws:runCommand",
        "executed_by": "arn:aws:iam::000000000000:user/alice",
        "stop_requested": "Cancel",
        "cancel_deadline": T0 + timedelta(hours=1),
        "wake_at": T0 + timedelta(seconds=30),
        "target_parameter_name": "InstanceId",
        "targets": ({"Key": "tag:Role", "Values": ["web", "db"]},),
        "target_maps": ({"InstanceId": ["i-1"]}, {"InstanceId": ["i-2"]}),
        "resolved_targets": ("i-1", "i-2"),
        "max_concurrency": "50%",
        "max_errors": "1",
        "owner": "host-a:123",
        "lease_expires": T0 + timedelta(seconds=45),
        "version": 7,
        "extra": {"account_id": "000000000000", "step_budget": 1000},
    }
    fields.update(changes)
    return ExecutionRecord(**fields)  # type: ignore[arg-type]


def step(
    execution_id: str = "exec-1", step_execution_id: str = "step-1", **changes: object
) -> StepRecord:
    """A step execution with every field away from its default."""
    fields: dict[str, object] = {
        "execution_id": execution_id,
        "step_execution_id": step_execution_id,
        "sequence": 4,
        "step_name": "restart",
        "action": "aws:runCommand",
        "status": Status.WAITING,
        "attempt": 2,
        "start_time": T0,
        "end_time": T0 + timedelta(seconds=5),
        "inputs": {"DocumentName": "AWS-RunShellScript", "Parameters": {"commands": ["ls"]}},
        "outputs": {"CommandId": "c-1", "Status": "Success", "Count": 2},
        "response": [{"Instance": "i-1", "ExitCode": 0}],
        "logs": "line 1\nbinary \x00 byte\n",
        "failure_message": "exit code 1",
        "failure_type": "Verification",
        "failure_stage": "Execution",
        "failure_details": {"ExitCode": ["1"]},
        "wake_at": T0 + timedelta(days=7),
        "waiting_for": ("Approve", "Reject"),
        "state": {"command_id": "c-1", "polls": 3},
        "message": "Please approve",
        "child_execution_id": "child-1",
        "loop": LoopContext("loop-step-1", "loopOverTargets", 3, {"id": "i-3"}),
        "valid_next_steps": ("stop", "start"),
        "overridden_parameters": {"Mode": ["fast"]},
        "cancel_run": True,
        "target": "i-3",
    }
    fields.update(changes)
    return StepRecord(**fields)  # type: ignore[arg-type]


def signal(execution_id: str = "exec-1", **changes: object) -> SignalRecord:
    fields: dict[str, object] = {
        "signal_id": None,
        "execution_id": execution_id,
        "type": "Approve",
        "payload": {"Comment": ["looks good"]},
        "principal": "alice",
        "time": T0,
    }
    fields.update(changes)
    return SignalRecord(**fields)  # type: ignore[arg-type]


# -- hypothesis ----------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
optional_texts = st.none() | texts
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
json_maps = st.dictionaries(st.text(max_size=6), json_values, max_size=3)
list_maps = st.dictionaries(st.text(max_size=6), st.lists(st.text(max_size=6), max_size=3))
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
instants = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones
)
optional_instants = st.none() | instants
int32 = st.integers(0, 2**31 - 1)
tuples_of_texts = st.lists(texts, max_size=3).map(tuple)

executions = st.builds(
    ExecutionRecord,
    execution_id=texts,
    document_name=texts,
    document_content=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=200),
    status=st.sampled_from(Status),
    mode=st.sampled_from(Mode),
    document_version=texts,
    document_format=texts,
    parameters=json_maps,
    supplied_parameters=list_maps,
    variables=json_maps,
    outputs=json_maps,
    start_time=optional_instants,
    end_time=optional_instants,
    failure_message=optional_texts,
    parent_execution_id=optional_texts,
    parent_step_execution_id=optional_texts,
    current_step_name=optional_texts,
    current_action=optional_texts,
    executed_by=texts,
    stop_requested=optional_texts,
    cancel_deadline=optional_instants,
    wake_at=optional_instants,
    target_parameter_name=optional_texts,
    targets=st.lists(json_maps, max_size=2).map(tuple),
    target_maps=st.lists(json_maps, max_size=2).map(tuple),
    resolved_targets=tuples_of_texts,
    max_concurrency=optional_texts,
    max_errors=optional_texts,
    owner=optional_texts,
    lease_expires=optional_instants,
    version=int32,
    extra=json_maps,
)

loops = st.none() | st.builds(LoopContext, texts, texts, int32, json_values)

steps = st.builds(
    StepRecord,
    execution_id=texts,
    step_execution_id=texts,
    sequence=int32,
    step_name=texts,
    action=texts,
    status=st.sampled_from(Status),
    attempt=int32,
    start_time=optional_instants,
    end_time=optional_instants,
    inputs=json_maps,
    outputs=json_maps,
    response=json_values,
    logs=st.text(max_size=50),  # NUL included: command output may hold any character
    failure_message=optional_texts,
    failure_type=optional_texts,
    failure_stage=optional_texts,
    failure_details=list_maps,
    wake_at=optional_instants,
    waiting_for=tuples_of_texts,
    state=json_maps,
    message=texts,
    child_execution_id=optional_texts,
    loop=loops,
    valid_next_steps=tuples_of_texts,
    overridden_parameters=list_maps,
    cancel_run=st.booleans(),
    target=optional_texts,
)

signals = st.builds(
    SignalRecord,
    signal_id=st.none(),
    execution_id=texts,
    type=texts,
    payload=list_maps,
    principal=texts,
    time=instants,
    consumed=st.booleans(),
)
