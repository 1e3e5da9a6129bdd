"""``runbook param put|get|list|delete`` (cli-contract.md), and ``{{ssm:...}}`` defaults
resolved from what ``param put`` stored when ``runbook run`` starts an execution."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner, Result

from runbook_engine import Engine
from runbook_engine.cli import main


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("RUNBOOK_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.delenv("RUNBOOK_PARAMETER_STORE", raising=False)
    monkeypatch.delenv("RUNBOOK_PARAMETER_KEY_FILE", raising=False)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_put_get_list_delete(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("param", "put", "/app/name", "web").output == "/app/name: version 1\n"
    put = cli("param", "put", "/app/name", "api", "--overwrite", "--output", "json")
    assert json.loads(put.output) == {"Version": 2, "Tier": "Standard"}
    assert cli("param", "get", "/app/name").output == "api\n"
    assert cli("param", "get", "/app/name:1").output == "web\n"
    cli("param", "put", "/app/hosts", "a,b", "--type", "StringList", "--description", "hosts")
    listed = json.loads(cli("param", "list", "--path", "/app", "--output", "json").output)
    assert [(p["Name"], p["Type"], p["Version"]) for p in listed["Parameters"]] == [
        ("/app/hosts", "StringList", 1),
        ("/app/name", "String", 2),
    ]
    assert json.loads(cli("param", "delete", "/app/name", "--output", "json").output) == {}
    missing = cli("param", "get", "/app/name", "--output", "json")
    assert missing.exit_code == 2
    assert json.loads(missing.output)["__type"] == "ParameterNotFound"


def test_secure_strings_are_masked_unless_decryption_is_asked_for(
    cli, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    secret = "pw-" + uuid.uuid4().hex
    put = cli("param", "put", "/db/pw", secret, "--type", "SecureString")
    assert secret not in put.output
    for args in (("get", "/db/pw"), ("list",), ("get", "/db/pw", "--output", "json")):
        shown = cli("param", *args)
        assert shown.exit_code == 0
        assert secret not in shown.output and "****" in shown.output
    assert cli("param", "get", "/db/pw", "--with-decryption").output == secret + "\n"
    assert (tmp_path / "config" / "runbook" / "parameter.key").exists()
    assert secret.encode() not in (tmp_path / "state.db").read_bytes()


def test_a_new_parameter_of_an_unknown_type_is_a_usage_error(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("param", "put", "x", "y", "--type", "Secret")
    assert result.exit_code == 2
    assert "Invalid value for '--type'" in result.output


DEFAULTS = """
schemaVersion: '0.3'
parameters:
  Image: {type: String, default: '{{ ssm:/golden/ami }}'}
  Pinned: {type: String, default: '{{ssm:/golden/ami:1}}'}
  Hosts: {type: StringList, default: '{{ssm:/golden/hosts}}'}
mainSteps:
  - {name: nap, action: aws:sleep, inputs: {Duration: PT0S}}
outputs: []
"""


def test_ssm_defaults_resolve_from_the_parameter_store_at_start(
    cli, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    document = tmp_path / "d.yaml"
    document.write_text(DEFAULTS)
    cli("param", "put", "/golden/ami", "ami-0001")
    cli("param", "put", "/golden/ami", "ami-0002", "--overwrite")
    cli("param", "put", "/golden/hosts", "web-1,web-2", "--type", "StringList")
    result = cli("run", str(document), "--output", "json")
    assert result.exit_code == 0, result.output
    execution_id = json.loads(result.output)["AutomationExecutionId"]

    async def parameters() -> dict[str, object]:
        async with Engine(f"sqlite:///{tmp_path / 'state.db'}") as engine:
            return dict((await engine.get(execution_id)).execution.parameters)

    assert anyio.run(parameters) == {
        "Image": "ami-0002",
        "Pinned": "ami-0001",
        "Hosts": ["web-1", "web-2"],
    }


def test_a_missing_ssm_default_fails_the_start_with_the_ssm_error(
    cli, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    document = tmp_path / "d.yaml"
    document.write_text(DEFAULTS)
    cli("param", "put", "/golden/ami", "ami-0002")  # version 1 only; no /golden/hosts
    result = cli("run", str(document), "--output", "json")
    assert result.exit_code == 2
    error = json.loads(result.output)
    assert error["__type"] == "InvalidAutomationExecutionParametersException"
    assert "ParameterNotFound" in error["message"] and "/golden/hosts" in error["message"]
    assert json.loads(cli("list", "--output", "json").output)["AutomationExecutionMetadataList"] == []


def test_a_secure_string_default_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    document = tmp_path / "d.yaml"
    document.write_text(
        "schemaVersion: '0.3'\nparameters:\n  Pw: {type: String, default: '{{ssm:/pw}}'}\n"
        "mainSteps:\n  - {name: nap, action: aws:sleep, inputs: {Duration: PT0S}}\n"
    )
    cli("param", "put", "/pw", "hunter2", "--type", "SecureString")
    result = cli("run", str(document), "--output", "json")
    assert result.exit_code == 2
    message = json.loads(result.output)["message"]
    assert "SecureString" in message and "hunter2" not in message


def test_supplied_values_need_no_parameter_store(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    document = tmp_path / "d.yaml"
    document.write_text(DEFAULTS)
    result = cli(
        "run", str(document), "-p", "Image=x", "-p", "Pinned=y", "-p", "Hosts=a", "--output", "json"
    )
    assert result.exit_code == 0, result.output
