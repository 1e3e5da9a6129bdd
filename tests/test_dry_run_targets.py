"""``runbook run --dry-run`` lists where work would go: the children of a rate-controlled
automation (one per target) and the instances of each Run Command step, with
MaxConcurrency/MaxErrors, in JSON and text; and still runs nothing and stores nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

INVENTORY = {
    "instances": [
        {"id": "web-1", "tags": {"Role": "web"}, "local": {}},
        {"id": "web-2", "tags": {"Role": "web"}, "local": {}},
        {"id": "db-1", "tags": {"Role": "db"}, "local": {}},
    ],
    "groups": {"databases": ["db-1"]},
}


def fleet_runbook(marker: Path) -> dict[str, Any]:
    touch = {"commands": [f"touch {marker}"]}
    return {
        "schemaVersion": "0.3",
        "parameters": {"InstanceId": {"type": "String", "default": "db-1"}},
        "mainSteps": [
            {"name": "web", "action": "aws:runCommand",
             "inputs": {"DocumentName": "AWS-RunShellScript", "Parameters": touch,
                        "Targets": [{"Key": "tag:Role", "Values": ["web"]}],
                        "MaxConcurrency": "2", "MaxErrors": "1"}},
            {"name": "db", "action": "aws:runShellScript",
             "inputs": {"Commands": [f"touch {marker}"], "InstanceIds": ["{{ InstanceId }}"]}},
            {"name": "group", "action": "aws:runCommand",
             "inputs": {"DocumentName": "AWS-RunShellScript", "Parameters": touch,
                        "Targets": [{"Key": "ResourceGroup", "Values": ["databases"]}]}},
            {"name": "later", "action": "aws:runCommand",
             "inputs": {"DocumentName": "AWS-RunShellScript", "Parameters": touch,
                        "InstanceIds": "{{ web.CommandId }}"}},
            {"name": "unknown", "action": "aws:runCommand",
             "inputs": {"DocumentName": "AWS-RunShellScript", "Parameters": touch,
                        "InstanceIds": ["web-9"]}},
            {"name": "here", "action": "aws:runShellScript",
             "inputs": {"Commands": [f"touch {marker}"]}},
        ],
    }  # fmt: skip


def dry_run(
    tmp_path: Path, *options: str, output: str = "json"
) -> subprocess.CompletedProcess[str]:
    document = tmp_path / "fleet.yaml"
    document.write_text(yaml.safe_dump(fleet_runbook(tmp_path / "marker")))
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(INVENTORY))
    command = [sys.executable, "-m", "runbook_engine", "run", str(document), "--dry-run"]
    command += ["--inventory", str(inventory), "--state", f"sqlite:///{tmp_path / 'state.db'}"]
    command += ["--output", output, *options]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)


def assert_nothing_ran(tmp_path: Path) -> None:
    assert not (tmp_path / "marker").exists()
    assert not (tmp_path / "state.db").exists()


def test_run_command_steps_list_their_instances_and_rate_control(tmp_path: Path) -> None:
    result = dry_run(tmp_path)
    assert result.returncode == 0, result.stderr
    preview = json.loads(result.stdout)
    steps = {s["StepName"]: s for s in preview["Steps"]}
    web = steps["web"]
    assert web["ResolvedInstanceIds"] == ["web-1", "web-2"]
    assert (web["MaxConcurrency"], web["MaxErrors"]) == ("2", "1")
    assert web["Targets"] == ["tag:Role=web"]
    db = steps["db"]  # a parameter's default, resolved; Run Command's default limits
    assert (db["ResolvedInstanceIds"], db["MaxConcurrency"], db["MaxErrors"]) == (
        ["db-1"],
        "50",
        "0",
    )
    assert steps["group"]["ResolvedInstanceIds"] == ["db-1"]
    assert steps["later"]["ResolvedInstanceIds"] == []
    assert steps["later"]["TargetResolution"].startswith("known at run time")
    assert steps["unknown"]["ResolvedInstanceIds"] == []
    assert (
        "cannot resolve: Instance ids not in the inventory"
        in (steps["unknown"]["TargetResolution"])
    )
    assert "web-9" in steps["unknown"]["TargetResolution"]
    assert "ResolvedInstanceIds" not in steps["here"]  # runs on this machine, no fleet
    assert "ChildExecutions" not in preview
    assert_nothing_ran(tmp_path)


def test_text_output_names_the_instances(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "-p", "InstanceId=web-2", output="text")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    web = lines.index(next(line for line in lines if line.startswith("  web (aws:runCommand)")))
    assert lines[web + 1] == "    instances: web-1, web-2 (MaxConcurrency 2, MaxErrors 1)"
    assert "    instances: web-2 (MaxConcurrency 50, MaxErrors 0)" in lines
    assert any(line.startswith("    instances: known at run time") for line in lines)
    assert_nothing_ran(tmp_path)


def test_rate_controlled_automation_lists_one_child_per_target(tmp_path: Path) -> None:
    result = dry_run(
        tmp_path,
        "--target-parameter-name",
        "InstanceId",
        "--targets",
        "Key=tag:Role,Values=web",
        "--max-concurrency",
        "1",
    )
    assert result.returncode == 0, result.stderr
    preview = json.loads(result.stdout)
    assert preview["TargetParameterName"] == "InstanceId"
    assert preview["Targets"] == [{"Key": "tag:Role", "Values": ["web"]}]
    assert preview["ResolvedTargets"] == {"ParameterValues": ["web-1", "web-2"], "Truncated": False}
    assert (preview["MaxConcurrency"], preview["MaxErrors"]) == ("1", "0")
    assert preview["ChildExecutions"] == [
        {"Target": "web-1", "Parameters": {"InstanceId": ["web-1"]}},
        {"Target": "web-2", "Parameters": {"InstanceId": ["web-2"]}},
    ]
    steps = {s["StepName"]: s for s in preview["Steps"]}
    assert steps["db"]["TargetResolution"].startswith("known at run time")  # one per child
    assert steps["web"]["ResolvedInstanceIds"] == ["web-1", "web-2"]
    assert_nothing_ran(tmp_path)


def test_parameter_values_and_target_maps_in_text_and_json(tmp_path: Path) -> None:
    text = dry_run(
        tmp_path,
        "--target-parameter-name",
        "InstanceId",
        "--targets",
        "Key=ParameterValues,Values=a,b,c",
        "--max-errors",
        "1",
        output="text",
    )
    assert text.returncode == 0, text.stderr
    assert "  rate control: 3 child execution(s), MaxConcurrency 10, MaxErrors 1" in text.stdout
    assert (
        "    child for InstanceId=a\n    child for InstanceId=b\n    child for InstanceId=c\n"
        in (text.stdout)
    )
    maps = json.dumps([{"InstanceId": ["db-1"]}, {"InstanceId": ["web-1"]}])
    result = dry_run(tmp_path, "--target-maps", maps)
    assert result.returncode == 0, result.stderr
    preview = json.loads(result.stdout)
    assert preview["TargetMaps"] == [{"InstanceId": ["db-1"]}, {"InstanceId": ["web-1"]}]
    assert [c["Parameters"] for c in preview["ChildExecutions"]] == [
        {"InstanceId": ["db-1"]},
        {"InstanceId": ["web-1"]},
    ]
    assert "ResolvedTargets" not in preview
    assert_nothing_ran(tmp_path)


def test_rate_control_that_a_run_would_refuse_is_refused(tmp_path: Path) -> None:
    result = dry_run(
        tmp_path, "--target-parameter-name", "Nope", "--targets", "Key=tag:Role,Values=web"
    )
    assert result.returncode == 2
    assert "TargetParameterName Nope is not a parameter" in json.loads(result.stdout)["message"]
    unknown = dry_run(
        tmp_path, "--target-parameter-name", "InstanceId", "--targets", "Key=ResourceGroup,Values=x"
    )
    assert unknown.returncode == 2
    assert "Resource group x is not in the inventory" in json.loads(unknown.stdout)["message"]
    assert_nothing_ran(tmp_path)
