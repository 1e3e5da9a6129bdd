"""The engine end to end on the local host: real actions, a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from runbook_engine import Engine, ExecutionView
from runbook_engine.errors import InvalidSignal, ParameterError
from runbook_engine.settings import Settings
from runbook_engine.status import Status

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "runbooks"


async def step_started(engine: Engine, execution_id: str, name: str) -> None:
    """Poll until step ``name`` of the execution has started."""
    with anyio.fail_after(15):
        for _ in range(1500):  # polls another task's progress through the store
            if any(s.step_name == name for s in (await engine.get(execution_id)).steps):
                return
            await anyio.sleep(0.05)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(
    engine_url: str, document: str, parameters: dict | None = None, **kw: object
) -> ExecutionView:
    async def main() -> ExecutionView:
        async with Engine(
            engine_url,
            settings=Settings(poll_interval=0.05, principal="tester"),
            documents=kw.pop("documents", ()),
        ) as engine:  # type: ignore[arg-type]
            return await engine.run(document, parameters, **kw)  # type: ignore[arg-type]

    return anyio.run(main)


@pytest.fixture
def state(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def test_hello_world_runs_to_success_with_outputs(state: str) -> None:
    view = run(state, str(BUNDLED / "hello-world.yaml"), {"Name": ["Ada"]})
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert view.execution.outputs["shout.Shout"] == "HELLO, ADA!"
    assert view.execution.outputs["shout.Length"] == len("Hello, Ada!")
    assert [s.step_name for s in view.steps] == ["greet", "shout", "rest"]
    assert all(s.status == Status.SUCCESS for s in view.steps)
    assert view.step("greet").outputs["ResponseCode"] == 0


def test_invalid_parameters_start_nothing(state: str) -> None:
    async def main() -> int:
        async with Engine(state) as engine:
            with pytest.raises(ParameterError, match="Nope"):
                await engine.start(str(BUNDLED / "hello-world.yaml"), {"Nope": ["x"]})
            with pytest.raises(ParameterError, match="pattern"):
                await engine.start(str(BUNDLED / "hello-world.yaml"), {"Name": ["$(rm -rf /)"]})
            return len(await engine.list())

    assert anyio.run(main) == 0


def test_failed_step_names_the_step_and_the_cause(state: str, tmp_path: Path) -> None:
    doc = write(
        tmp_path,
        "fail.yaml",
        """
schemaVersion: '0.3'
mainSteps:
  - name: breaks
    action: aws:runShellScript
    inputs:
      Commands: ['echo going down >&2', 'exit 3']
  - name: never
    action: aws:sleep
    inputs: {Duration: PT0S}
""",
    )
    view = run(state, doc)
    assert view.status == Status.FAILED
    assert "breaks" in (view.execution.failure_message or "")
    assert "code 3" in (view.execution.failure_message or "")
    assert [s.step_name for s in view.steps] == ["breaks"]
    assert view.step("breaks").outputs["ResponseCode"] == 3


def test_continue_retries_and_timeouts(state: str, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    doc = write(
        tmp_path,
        "retry.yaml",
        f"""
schemaVersion: '0.3'
mainSteps:
  - name: flaky
    action: aws:runShellScript
    maxAttempts: 3
    inputs:
      Commands:
        - echo x >> {counter}
        - test $(wc -l < {counter}) -ge 2
  - name: slow
    action: aws:runShellScript
    timeoutSeconds: 1
    onFailure: Continue
    inputs:
      Commands: ['sleep 20']
  - name: last
    action: aws:sleep
    inputs: {{Duration: PT0S}}
""",
    )
    view = run(state, doc)
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert view.step("flaky").attempt == 2
    assert counter.read_text().count("x") == 2
    assert view.step("slow").status == Status.TIMED_OUT
    assert view.step("last").status == Status.SUCCESS


def test_branches_and_loops(state: str, tmp_path: Path) -> None:
    out = tmp_path / "seen"
    doc = write(
        tmp_path,
        "loop.yaml",
        f"""
schemaVersion: '0.3'
parameters:
  Items: {{type: StringList, default: [a, b, c]}}
variables:
  Count: {{type: Integer, default: 0}}
mainSteps:
  - name: each
    action: aws:loop
    inputs:
      Iterators: '{{{{ Items }}}}'
      Steps:
        - name: record
          action: aws:runShellScript
          inputs:
            Commands: ['echo "{{{{ each.CurrentIteration }}}}:{{{{ each.CurrentIteratorValue }}}}" >> {out}']
  - name: bump
    action: aws:updateVariable
    inputs:
      Name: variable:Count
      Value: 3
  - name: check
    action: aws:branch
    inputs:
      Choices:
        - NextStep: good
          Variable: '{{{{ variable:Count }}}}'
          NumericEquals: 3
      Default: bad
  - name: bad
    action: aws:runShellScript
    inputs: {{Commands: ['exit 1']}}
  - name: good
    action: aws:sleep
    inputs: {{Duration: PT0S}}
""",
    )
    view = run(state, doc)
    assert view.status == Status.SUCCESS, view.execution.failure_message
    assert out.read_text().split() == ["1:a", "2:b", "3:c"]
    assert view.step("each").outputs == {"CurrentIteration": 3, "CurrentIteratorValue": "c"}
    assert view.execution.variables["Count"] == 3
    assert "bad" not in [s.step_name for s in view.steps]


def test_approval_waits_refuses_strangers_and_continues_after_approval(
    state: str, tmp_path: Path
) -> None:
    marker = tmp_path / "approved.txt"

    async def main() -> tuple[Status, Status, ExecutionView]:
        async with Engine(state, settings=Settings(poll_interval=0.05)) as engine:
            execution_id = await engine.start(
                str(BUNDLED / "approval-gate.yaml"),
                {"Approver": ["alice"], "Marker": [str(marker)]},
            )
            waiting = await engine.wait(execution_id, until_waiting=True)
            with pytest.raises(InvalidSignal):
                await engine.signal(execution_id, "Approve", principal="mallory")
            await engine.signal(
                execution_id, "Approve", principal="alice", payload={"Comment": ["ship it"]}
            )
            done = await engine.wait(execution_id)
            return waiting.status, waiting.step("askForApproval").status, done

    execution_status, step_status, done = anyio.run(main)
    assert execution_status == Status.WAITING and step_status == Status.WAITING
    assert done.status == Status.SUCCESS, done.execution.failure_message
    assert done.execution.outputs["askForApproval.ApprovalStatus"] == "Approved"
    assert "alice" in marker.read_text()


def test_rejection_fails_the_approval_and_runs_the_failure_path(state: str, tmp_path: Path) -> None:
    async def main() -> ExecutionView:
        async with Engine(state, settings=Settings(poll_interval=0.05)) as engine:
            execution_id = await engine.start(
                str(BUNDLED / "approval-gate.yaml"),
                {"Approver": ["alice"], "Marker": [str(tmp_path / "never")]},
            )
            await engine.wait(execution_id, until_waiting=True)
            await engine.signal(execution_id, "Reject", principal="alice")
            return await engine.wait(execution_id)

    view = anyio.run(main)
    assert view.status == Status.FAILED
    assert view.step("askForApproval").outputs["ApprovalStatus"] == "Rejected"
    assert view.step("recordRejection").status == Status.SUCCESS
    assert not (tmp_path / "never").exists()


def test_cancel_runs_on_cancel_and_ends_cancelled(state: str, tmp_path: Path) -> None:
    cleaned = tmp_path / "cleaned"
    doc = write(
        tmp_path,
        "cancel.yaml",
        f"""
schemaVersion: '0.3'
mainSteps:
  - name: long
    action: aws:runShellScript
    onCancel: step:cleanup
    inputs: {{Commands: ['sleep 30']}}
  - name: after
    action: aws:sleep
    inputs: {{Duration: PT0S}}
  - name: cleanup
    action: aws:runShellScript
    inputs: {{Commands: ['touch {cleaned}']}}
""",
    )

    async def main() -> ExecutionView:
        async with Engine(state, settings=Settings(poll_interval=0.05)) as engine:
            execution_id = await engine.start(doc)
            with anyio.fail_after(20):
                await cancel_soon(engine, execution_id)
            return await engine.get(execution_id)

    async def cancel_soon(engine: Engine, execution_id: str) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(engine.wait, execution_id)
            await step_started(engine, execution_id, "long")
            await engine.stop(execution_id)

    view = anyio.run(main)
    assert view.status == Status.CANCELLED
    assert view.step("long").status == Status.CANCELLED
    assert view.step("cleanup").status == Status.SUCCESS
    assert cleaned.exists()
    assert "after" not in [s.step_name for s in view.steps]


def test_interactive_mode_runs_the_steps_it_is_told(state: str, tmp_path: Path) -> None:
    doc = write(
        tmp_path,
        "manual.yaml",
        """
schemaVersion: '0.3'
mainSteps:
  - {name: one, action: aws:sleep, inputs: {Duration: PT0S}}
  - {name: two, action: aws:sleep, inputs: {Duration: PT0S}}
""",
    )

    async def main() -> tuple[ExecutionView, ExecutionView]:
        async with Engine(state, settings=Settings(poll_interval=0.05)) as engine:
            execution_id = await engine.start(doc, mode="Interactive")
            first = await engine.wait(execution_id, until_waiting=True)
            with pytest.raises(InvalidSignal):
                await engine.signal(execution_id, "StartStep", step_name="two")
            await engine.signal(execution_id, "StartStep", step_name="one")
            await engine.wait(execution_id, until_waiting=True)
            await engine.signal(execution_id, "StartStep", step_name="two")
            return first, await engine.wait(execution_id)

    first, last = anyio.run(main)
    assert first.status == Status.WAITING and first.steps == ()
    assert last.status == Status.SUCCESS
    assert [s.step_name for s in last.steps] == ["one", "two"]
    assert last.step("one").valid_next_steps == ("two",)


def test_child_automation_outputs_flow_to_the_parent(state: str, tmp_path: Path) -> None:
    write(
        tmp_path,
        "Child-Doc.yaml",
        """
schemaVersion: '0.3'
parameters:
  Word: {type: String}
mainSteps:
  - name: echo
    action: aws:executeScript
    inputs:
      Runtime: python3.11
      Handler: h
      InputPayload: {word: '{{ Word }}'}
      Script: "def h(events, context):\\n    return events['word'] * 2"
    outputs:
      - {Name: Twice, Selector: $.Payload, Type: String}
outputs: [echo.Twice]
""",
    )
    parent = write(
        tmp_path,
        "parent.yaml",
        """
schemaVersion: '0.3'
mainSteps:
  - name: child
    action: aws:executeAutomation
    inputs:
      DocumentName: Child-Doc
      RuntimeParameters: {Word: ab}
""",
    )
    view = run(state, parent, documents=[str(tmp_path)])
    assert view.status == Status.SUCCESS, view.execution.failure_message
    child = view.step("child")
    assert child.outputs["Status"] == "Success"
    assert child.outputs["Output"] == ["abab"]


def test_cancelling_the_parent_cancels_the_child(state: str, tmp_path: Path) -> None:
    write(
        tmp_path,
        "Slow-Child.yaml",
        """
schemaVersion: '0.3'
mainSteps:
  - name: wait
    action: aws:runShellScript
    inputs: {Commands: ['sleep 30']}
""",
    )
    parent = write(
        tmp_path,
        "parent.yaml",
        """
schemaVersion: '0.3'
mainSteps:
  - name: child
    action: aws:executeAutomation
    inputs: {DocumentName: Slow-Child}
""",
    )

    async def main() -> tuple[ExecutionView, ExecutionView]:
        async with Engine(
            state, documents=[str(tmp_path)], settings=Settings(poll_interval=0.05)
        ) as engine:
            execution_id = await engine.start(parent)
            with anyio.fail_after(20):
                async with anyio.create_task_group() as group:
                    group.start_soon(engine.wait, execution_id)
                    await step_started(engine, execution_id, "child")
                    await anyio.sleep(0.5)  # the child is started right after the record
                    await engine.stop(execution_id)
            view = await engine.get(execution_id)
            child_id = view.step("child").child_execution_id
            assert child_id is not None
            return view, await engine.get(child_id)

    parent_view, child_view = anyio.run(main)
    assert parent_view.status == Status.CANCELLED
    assert child_view.status == Status.CANCELLED
    assert child_view.execution.parent_execution_id == parent_view.execution_id
    assert child_view.step("wait").status == Status.CANCELLED


def test_do_while_loop_pause_and_approval_timeout(state: str, tmp_path: Path) -> None:
    doc = write(tmp_path, "while.yaml", """
schemaVersion: '0.3'
variables:
  Tries: {type: Integer, default: 0}
mainSteps:
  - name: again
    action: aws:loop
    inputs:
      MaxIterations: 10
      LoopCondition:
        Variable: '{{ again.CurrentIteration }}'
        NumericLesser: 3
      Steps:
        - name: note
          action: aws:updateVariable
          inputs:
            Name: variable:Tries
            Value: '{{ again.CurrentIteration }}'
  - name: hold
    action: aws:pause
    inputs: {}
  - name: gate
    action: aws:approve
    timeoutSeconds: 1
    inputs:
      Approvers: [nobody]
""")

    async def main() -> tuple[ExecutionView, ExecutionView]:
        async with Engine(state, settings=Settings(poll_interval=0.05)) as engine:
            execution_id = await engine.start(doc)
            paused = await engine.wait(execution_id, until_waiting=True)
            await engine.signal(execution_id, "Resume", step_name="hold")
            return paused, await engine.wait(execution_id)

    paused, done = anyio.run(main)
    assert paused.status == Status.WAITING
    assert paused.step("hold").status == Status.WAITING
    assert paused.execution.variables["Tries"] == 3
    assert [s.loop.iteration for s in paused.steps if s.loop] == [1, 2, 3]
    assert done.step("hold").status == Status.SUCCESS
    assert done.step("gate").status == Status.TIMED_OUT
    assert done.status == Status.TIMED_OUT
