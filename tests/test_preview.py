"""Dry run: every step classified, parameters resolved, nothing run, nothing stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runbook_engine.preview import Impact, classify
from tests.support.documents import runbook

DOC = """
schemaVersion: '0.3'
parameters:
  Marker: {type: String}
mainSteps:
  - name: look
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: DescribeInstances}
  - name: tag
    action: aws:executeAwsApi
    inputs: {Service: ec2, Api: CreateTags, Resources: [i-1], Tags: [{Key: a, Value: b}]}
  - name: stop
    action: aws:changeInstanceState
    inputs: {InstanceIds: ['i-0123456789abcdef0'], DesiredState: stopped}
  - name: check
    action: aws:changeInstanceState
    inputs: {InstanceIds: ['i-0123456789abcdef0'], DesiredState: stopped, CheckStateOnly: true}
  - name: write
    action: aws:runShellScript
    inputs: {Commands: ['touch {{ Marker }}']}
  - name: nap
    action: aws:sleep
    inputs: {Duration: PT0S}
"""


def test_each_action_is_classified_like_the_aws_preview() -> None:
    book = runbook(DOC)
    impacts = {s.name: classify(s, lambda v: v, lambda _n: None, 0)[0] for s in book.steps}
    assert impacts == {
        "look": Impact.NON_MUTATING,
        "tag": Impact.MUTATING,
        "stop": Impact.MUTATING,
        "check": Impact.NON_MUTATING,
        "write": Impact.UNDETERMINED,
        "nap": Impact.NON_MUTATING,
    }


def test_dry_run_runs_nothing_and_stores_nothing(tmp_path: Path) -> None:
    doc = tmp_path / "doc.yaml"
    doc.write_text(DOC)
    marker = tmp_path / "marker"
    state = tmp_path / "state.db"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "run",
            str(doc),
            "--dry-run",
            "-p",
            f"Marker={marker}",
            "--state",
            f"sqlite:///{state}",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    preview = json.loads(result.stdout)
    assert preview["StepPreviews"] == {"Mutating": 2, "NonMutating": 3, "Undetermined": 1}
    assert preview["Parameters"] == {"Marker": str(marker)}
    assert [s["StepName"] for s in preview["Steps"]][:2] == ["look", "tag"]
    assert preview["Steps"][2]["Targets"] == ["i-0123456789abcdef0"]
    assert not marker.exists()
    assert not state.exists()


def test_dry_run_with_bad_parameters_exits_2(tmp_path: Path) -> None:
    doc = tmp_path / "doc.yaml"
    doc.write_text(DOC)
    result = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "run", str(doc), "--dry-run", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert json.loads(result.stdout)["__type"] == "InvalidAutomationExecutionParametersException"
