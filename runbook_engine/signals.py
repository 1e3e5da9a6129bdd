"""Is a signal acceptable for an execution right now? (SendAutomationSignal rules, §5.3)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from runbook_engine.conductor import valid_next_steps
from runbook_engine.errors import InvalidSignal, StepNotFound
from runbook_engine.model import Runbook
from runbook_engine.plugin import SignalRequest
from runbook_engine.records import ExecutionRecord, StepRecord
from runbook_engine.registry import ActionRegistry
from runbook_engine.status import Mode, SignalType


def check_signal(
    runbook: Runbook,
    execution: ExecutionRecord,
    steps: Sequence[StepRecord],
    kind: SignalType,
    payload: Mapping[str, list[str]],
    principal: str,
    registry: ActionRegistry,
) -> None:
    """Raise InvalidSignal / StepNotFound when the signal cannot be taken."""
    if execution.status.terminal:
        raise InvalidSignal(
            f"Execution {execution.execution_id} is {execution.status.value}: "
            "it takes no more signals"
        )
    if kind in (SignalType.APPROVE, SignalType.REJECT, SignalType.RESUME):
        waiting = [s for s in steps if not s.status.terminal and kind.value in s.waiting_for]
        wanted = next(iter(payload.get("StepName") or ()), None)
        if wanted is not None:
            if runbook.find_step(wanted) is None:
                raise StepNotFound(f"Step {wanted} does not exist in this runbook")
            waiting = [s for s in waiting if s.step_name == wanted]
        if not waiting:
            what = "an approval" if kind != SignalType.RESUME else "a Resume signal"
            raise InvalidSignal(f"No step of execution {execution.execution_id} waits for {what}")
        record = waiting[-1]
        action = registry.get(record.action)
        check = getattr(action, "signal_check", None)
        if check is not None:
            request = SignalRequest(record.step_name, record.inputs, kind.value, principal, payload)
            problem = check(request)
            if problem:
                raise InvalidSignal(problem)
        return
    if kind == SignalType.START_STEP:
        if execution.mode != Mode.INTERACTIVE:
            raise InvalidSignal("StartStep is only for executions in Interactive mode")
        wanted = next(iter(payload.get("StepName") or ()), None)
        if not wanted:
            raise InvalidSignal("StartStep needs a StepName")
        if runbook.find_step(wanted) is None:
            raise StepNotFound(f"Step {wanted} does not exist in this runbook")
        if any(not s.status.terminal for s in steps):
            raise InvalidSignal("A step is still running; wait for it to finish")
        valid = valid_next_steps(runbook, steps[-1]) if steps else (runbook.steps[0].name,)
        if wanted not in valid:
            raise InvalidSignal(
                f"Step {wanted} cannot run now; valid next steps: {', '.join(valid) or 'none'}"
            )
        return
    if kind == SignalType.STOP_STEP:
        wanted = next(iter(payload.get("StepExecutionId") or ()), None)
        if not any(s.step_execution_id == wanted and not s.status.terminal for s in steps):
            raise StepNotFound(f"No running step execution {wanted}")
        return
    raise InvalidSignal(f"Signal {kind.value} is not supported")
