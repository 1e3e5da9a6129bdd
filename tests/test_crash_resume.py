"""Crash tests: ``runbook run`` killed with SIGKILL at many points, ``runbook resume`` after.

Real processes (the installed ``runbook`` command), a real SQLite file, real side effects
(lines appended to a file by shell steps). Two ways to die:

- at an exact store write: ``RUNBOOK_KILL_AFTER_WRITES=N`` makes a process SIGKILL itself
  right after its N-th committed write. A *chain* kills the run after write ``first``
  and then every resume after ``every`` more writes of the run, until a resume
  finishes: two chains with ``every=2`` and ``first`` 1 and 2 cut an execution after
  every write it makes (step transitions, each a final record with the next write-ahead
  record, and execution updates) at the cost of one process per kill;
- in the middle of an action: a shell step that kills its own engine (``kill -9 $PPID``),
  and the test killing the engine while a sleep, an approval or a child automation waits.

The expectations: every execution ends exactly as an uninterrupted reference run of the
same runbook (statuses, outputs, steps); no side effect of a step recorded ``Success``
ever happens again (every count equals the reference's); a non-idempotent step that was
in flight is never re-run silently: the resume says that the attempt was interrupted and
makes a new attempt (``maxAttempts: 2``), or, with no attempt left, records the step
``Failed`` as interrupted and ``onFailure`` decides; a sleep resumes with the time left;
a parent resumed while its child runs never starts a second child.

All jobs run once per module, in a small thread pool of subprocesses; the tests below
each check one property of their results.
"""

from __future__ import annotations

import getpass
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from runbook_engine.status import Status
from tests.runbook_processes import (
    CRASH_RUNBOOKS,
    SHELL,
    Finished,
    Snapshot,
    StepState,
    Workspace,
    announced_retry,
    parameters,
)

EXIT_WAITING = 3
MAX_PROCESSES = 80  # a chain that does not end is a bug (no progress after a crash)
KILL_POINTS_WANTED = 50
LONG_NAP = 5  # seconds; crash-long-sleep.yaml sleeps as long
WORKERS = 4  # 2 cores: the timed kills mostly wait


@dataclass(frozen=True)
class Scenario:
    document: str
    extra_parameters: dict[str, str] = field(default_factory=dict)

    def run_args(self, workspace: Workspace) -> list[str]:
        values = {"Effects": str(workspace.effects), **self.extra_parameters}
        return [
            "run",
            str(CRASH_RUNBOOKS / self.document),
            *parameters(values),
            "--documents",
            str(CRASH_RUNBOOKS),
            "--no-wait",
        ]


SCENARIOS = {
    "course": Scenario("crash-course.yaml"),  # shell, sleep, branch, loop, updateVariable
    "parent": Scenario("crash-parent.yaml"),  # aws:executeAutomation, child in-process
    "approval": Scenario("crash-approval.yaml", {"Approver": getpass.getuser()}),
}
CHAINS = [(1, 2), (2, 2)]  # (first, every): together, a kill after nearly every write


@dataclass
class Interruption:
    """A non-idempotent step in flight at a kill, and what the next process did about it."""

    state: StepState
    follower: Finished
    after: Snapshot


@dataclass
class Chain:
    scenario: str
    first: int | None
    every: int | None
    kills: list[Snapshot] = field(default_factory=list)
    interruptions: list[Interruption] = field(default_factory=list)
    final: Snapshot | None = None
    effects: Counter[str] = field(default_factory=Counter)
    last: Finished | None = None

    @property
    def label(self) -> str:
        return f"{self.scenario} first={self.first} every={self.every}"


def waits_for_approval(snapshot: Snapshot) -> bool:
    return any(s.action == "aws:approve" and s.parked for s in snapshot.steps)


def run_chain(workspace: Workspace, name: str, first: int | None, every: int | None) -> Chain:
    """Run, then resume until the execution ends; kill each process as told."""
    chain = Chain(name, first, every)
    finished = workspace.cli(*SCENARIOS[name].run_args(workspace), kill_after=first)
    in_flight: list[StepState] = []
    approved = False
    for _ in range(MAX_PROCESSES):
        snapshot = workspace.snapshot()
        chain.interruptions += [Interruption(s, finished, snapshot) for s in in_flight]
        in_flight = []
        if finished.killed:
            chain.kills.append(snapshot)
            in_flight = [s for s in snapshot.steps if s.in_flight and s.action == SHELL]
        elif snapshot.top.status.terminal:
            assert finished.returncode in (0, 1), finished
            break
        else:
            assert finished.returncode == EXIT_WAITING, finished
        if waits_for_approval(snapshot) and not approved:
            workspace.approve(snapshot.top.execution_id)
            approved = True
        # A retried attempt costs one write the uninterrupted run did not make: count it
        # out, so that the chains keep killing at complementary points of the run.
        kill_after = None if every is None else every + len(in_flight)
        finished = workspace.cli(
            "resume", snapshot.top.execution_id, "--no-wait", kill_after=kill_after
        )
    else:
        raise AssertionError(f"{chain.label}: still not finished after {MAX_PROCESSES} processes")
    chain.final = snapshot
    chain.effects = workspace.effect_counts()
    chain.last = finished
    return chain


# -- kills in the middle of an action ------------------------------------------------------


@dataclass
class MidAction:
    """A run killed while an action ran or waited, and what the resumes made of it."""

    kills: list[Snapshot]
    processes: list[Finished]
    final: Snapshot
    effects: Counter[str]
    resumed_at: datetime | None = None  # when the resuming process had started up


def self_kill(workspace: Workspace) -> MidAction:
    """Two steps kill their engine (kill -9 $PPID) the first time they run."""
    markers = workspace.root / "markers"
    markers.mkdir()
    run = workspace.cli(
        "run",
        str(CRASH_RUNBOOKS / "crash-self-kill.yaml"),
        *parameters({"Effects": str(workspace.effects), "Markers": str(markers)}),
    )
    kills, processes = [workspace.snapshot()], [run]
    for _ in range(3):
        resumed = workspace.cli("resume", kills[0].top.execution_id)
        processes.append(resumed)
        if not resumed.killed:
            break
        kills.append(workspace.snapshot())
    return MidAction(kills, processes, workspace.snapshot(), workspace.effect_counts())


def kill_while(
    workspace: Workspace,
    document: str,
    extra: dict[str, str],
    condition: str,
    test: Callable[[Snapshot], bool],
    linger: float,
    between: Callable[[Snapshot], None] | None = None,
) -> MidAction:
    """Start a foreground run, SIGKILL it ``linger`` s after ``test`` holds, resume it."""
    process = workspace.start(
        "run",
        str(CRASH_RUNBOOKS / document),
        *parameters({"Effects": str(workspace.effects), **extra}),
        "--documents",
        str(CRASH_RUNBOOKS),
    )
    try:
        workspace.wait_for(condition, test)
        time.sleep(linger)
    finally:
        process.kill()
        stdout, stderr = process.communicate()
    run = Finished(("run", document), process.returncode, stdout, stderr)
    killed = workspace.snapshot()
    if between is not None:
        between(killed)
    resumed, resumed_at = workspace.cli_noting_start("resume", killed.top.execution_id)
    return MidAction(
        [killed], [run, resumed], workspace.snapshot(), workspace.effect_counts(), resumed_at
    )


def parked(key: str) -> Callable[[Snapshot], bool]:
    return lambda snapshot: any(s.key == key and s.parked for s in snapshot.steps)


def approve_with_the_command(workspace: Workspace) -> Callable[[Snapshot], None]:
    def approve(snapshot: Snapshot) -> None:
        signal = workspace.cli("signal", snapshot.top.execution_id, "--type", "Approve")
        assert signal.returncode == 0, signal

    return approve


@dataclass
class Results:
    references: dict[str, Chain]
    chains: list[Chain]
    self_kill: MidAction
    long_sleep: MidAction
    approval_wait: MidAction
    child_wait: MidAction
    seconds: float

    def kill_points(self) -> set[tuple[object, ...]]:
        points: set[tuple[object, ...]] = set()
        for chain in self.chains:
            points |= {(chain.scenario, k.signature) for k in chain.kills}
        for name, job in (
            ("self-kill", self.self_kill),
            ("long-sleep", self.long_sleep),
            ("approval-wait", self.approval_wait),
            ("child-wait", self.child_wait),
        ):
            points |= {(name, k.signature) for k in job.kills}
        return points


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Results]:
    root = tmp_path_factory.mktemp("crash")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        # Longest jobs first: the timed kills mostly wait, the chains mostly compute.
        child_wait = pool.submit(
            kill_while,
            Workspace(root / "child-wait"),
            "crash-parent.yaml",
            {"Nap": f"PT{LONG_NAP}S"},
            "the child's sleep to park",
            parked("childNap"),
            1.0,
        )
        long_sleep = pool.submit(
            kill_while,
            Workspace(root / "long-sleep"),
            "crash-long-sleep.yaml",
            {},
            "the sleep to park",
            parked("nap"),
            1.0,
        )
        approval_workspace = Workspace(root / "approval-wait")
        approval_wait = pool.submit(
            kill_while,
            approval_workspace,
            "crash-approval.yaml",
            {"Approver": getpass.getuser()},
            "the approval to wait",
            parked("gate"),
            0.2,
            approve_with_the_command(approval_workspace),
        )
        suicide = pool.submit(self_kill, Workspace(root / "self-kill"))
        references = {
            name: pool.submit(run_chain, Workspace(root / f"{name}-reference"), name, None, None)
            for name in SCENARIOS
        }
        chains = [
            pool.submit(run_chain, Workspace(root / f"{name}-{first}-{every}"), name, first, every)
            for name in SCENARIOS
            for first, every in CHAINS
        ]
        done = Results(
            references={name: job.result() for name, job in references.items()},
            chains=[job.result() for job in chains],
            self_kill=suicide.result(),
            long_sleep=long_sleep.result(),
            approval_wait=approval_wait.result(),
            child_wait=child_wait.result(),
            seconds=time.monotonic() - started,
        )
    yield done


# -- kill points ------------------------------------------------------------------------------


def test_the_chains_kill_at_least_fifty_distinct_points(results: Results) -> None:
    points = results.kill_points()
    print(
        f"\n{len(points)} distinct kill points, "
        f"{sum(len(c.kills) for c in results.chains)} write-point kills in "
        f"{len(results.chains)} chains, {results.seconds:.1f} s for every job"
    )
    assert len(points) >= KILL_POINTS_WANTED
    for chain in results.chains:
        assert chain.kills, f"{chain.label}: nothing was killed"


# -- same end as without a crash --------------------------------------------------------------


def test_every_crashed_execution_ends_like_the_uninterrupted_run(results: Results) -> None:
    for reference in results.references.values():
        assert reference.final is not None and not reference.kills
        assert reference.final.top.status == Status.SUCCESS, reference.last
    for chain in results.chains:
        reference = results.references[chain.scenario]
        assert chain.final is not None and reference.final is not None
        assert chain.final.outcome() == reference.final.outcome(), chain.label


def test_no_side_effect_of_a_completed_step_happens_twice(results: Results) -> None:
    for chain in results.chains:
        reference = results.references[chain.scenario]
        assert set(reference.effects.values()) == {1}
        for kill in chain.kills:
            done = [s for s in kill.steps if s.action == SHELL and s.status == Status.SUCCESS]
            for state in done:
                assert chain.effects[state.key] == 1, (chain.label, state)
        assert chain.effects == reference.effects, chain.label


def test_an_interrupted_shell_step_is_retried_visibly_never_silently(results: Results) -> None:
    seen = 0
    for chain in results.chains:
        assert chain.final is not None
        finals = {s.step_execution_id: s for s in chain.final.steps}
        for interruption in chain.interruptions:
            state, follower = interruption.state, interruption.follower
            stored = next(
                s
                for s in interruption.after.steps
                if s.step_execution_id == state.step_execution_id
            )
            said_so = announced_retry(follower, state)
            recorded = stored.attempt == state.attempt + 1 and "interrupted" in (
                stored.failure_message or ""
            )
            assert said_so or recorded, (chain.label, state, follower.stderr)
            assert finals[state.step_execution_id].attempt == state.attempt + 1
            seen += 1
    assert seen >= 5  # the chains do cut shell steps between write-ahead and action


def test_a_parent_resumed_around_its_child_never_starts_a_second_child(results: Results) -> None:
    parents = [c for c in results.chains if c.scenario == "parent"]
    for chain in parents:
        assert chain.final is not None
        children = [e for e in chain.final.executions if e.parent_execution_id is not None]
        assert len(children) == 1, chain.label
        assert children[0].parent_execution_id == chain.final.top.execution_id
    # Some kill fell between creating the child and recording it in the parent's step.
    assert any(
        any(e.parent_execution_id for e in kill.executions) and not kill.step("child").parked
        for chain in parents
        for kill in chain.kills
    )


# -- kills in the middle of an action ----------------------------------------------------------


def test_a_step_that_kills_its_engine_is_retried_then_recorded_interrupted(
    results: Results,
) -> None:
    job = results.self_kill
    first_resume = job.processes[1]
    assert [p.killed for p in job.processes] == [True, True, False]
    assert job.processes[-1].returncode == 0, job.processes[-1]
    final = job.final
    assert final.top.status == Status.SUCCESS
    # risky (maxAttempts 2): the interrupted attempt is said to be interrupted and retried.
    assert job.kills[0].step("risky").in_flight
    assert announced_retry(first_resume, job.kills[0].step("risky"))
    assert final.step("risky").status == Status.SUCCESS and final.step("risky").attempt == 2
    # once (maxAttempts 1): recorded Failed as interrupted; onFailure goes to recover.
    once = final.step("once")
    assert once.status == Status.FAILED and once.attempt == 1
    assert "interrupted" in (once.failure_message or "")
    assert final.step("recover").status == Status.SUCCESS
    assert final.step("after").status == Status.SUCCESS
    # Each interrupted attempt did run its command once (that is why it must not re-run
    # silently); every other side effect happened once.
    assert job.effects == Counter({"before": 1, "risky": 2, "once": 1, "recover": 1, "after": 1})


def test_a_sleep_killed_midway_resumes_with_the_time_left(results: Results) -> None:
    job = results.long_sleep
    assert job.processes[-1].returncode == 0, job.processes[-1]
    before, after = job.kills[0].step("nap"), job.final.step("nap")
    assert before.parked and after.status == Status.SUCCESS
    assert after.start_time == before.start_time  # the same step execution, not a new one
    assert after.start_time is not None and after.end_time is not None
    assert job.resumed_at is not None
    # The duration in all, not the duration again from the resume: the step ends at
    # max(start + duration, resume), a restarted sleep not before resume + duration.
    # (Loose: the resume may take seconds to start on a loaded machine; its progress line
    # says when it had.)
    assert after.end_time - after.start_time >= timedelta(seconds=LONG_NAP)
    assert after.end_time < job.resumed_at + timedelta(seconds=LONG_NAP - 1)
    started = after.start_time
    print(
        f"\nsleep of {LONG_NAP} s killed after "
        f"{(job.kills[0].taken - started).total_seconds():.1f} s, resumed "
        f"{(job.resumed_at - started).total_seconds():.1f} s after its start, "
        f"ended {(after.end_time - started).total_seconds():.2f} s after its start"
    )
    assert job.effects == Counter({"before": 1, "after": 1})


def test_an_approval_waits_across_a_crash(results: Results) -> None:
    job = results.approval_wait
    assert job.processes[-1].returncode == 0, job.processes[-1]
    assert job.kills[0].top.status == Status.WAITING
    assert job.final.top.status == Status.SUCCESS
    assert job.final.step("gate").status == Status.SUCCESS
    assert job.effects == Counter({"before": 1, "after": 1})


def test_a_parent_killed_while_its_child_sleeps_resumes_both(results: Results) -> None:
    job = results.child_wait
    assert job.processes[-1].returncode == 0, job.processes[-1]
    killed, final = job.kills[0], job.final
    assert killed.step("childNap").parked
    assert final.top.status == Status.SUCCESS
    assert [e.document_name for e in final.executions] == ["crash-parent", "Crash-Child"]
    assert final.executions[1].status == Status.SUCCESS
    nap = final.step("childNap")
    assert nap.start_time == killed.step("childNap").start_time
    assert nap.end_time is not None and job.resumed_at is not None
    assert nap.end_time < job.resumed_at + timedelta(seconds=LONG_NAP - 1)
    assert job.effects == Counter({"before": 1, "childFirst": 1, "childLast": 1, "after": 1})


def test_the_workspaces_are_separate(results: Results) -> None:
    """Each job had a store of its own: a crossed wire would have mixed executions."""
    for chain in [*results.chains, *results.references.values()]:
        assert chain.final is not None
        tops = [e for e in chain.final.executions if e.parent_execution_id is None]
        assert len(tops) == 1, chain.label
