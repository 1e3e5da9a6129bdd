"""The document operations of the daemon's SSM API, driven by boto3 (and once by the aws
CLI): documents stored with versions, then started by name and version.

One ``runbook serve`` process (SQLite) serves the module; its documents directory holds
``dir-echo``, which GetDocument shows as version 1 and which a stored document of the
same name would shadow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.services.daemon import LIMITED, VIEWER, DaemonProcess
from tests.test_daemon_api import aws, wait_status

ECHO = """\
schemaVersion: '0.3'
description: Says a word.
parameters:
  Word: {type: String, default: %s, description: What to say}
mainSteps:
  - name: say
    action: aws:runShellScript
    inputs:
      Commands: ['echo {{ Word }}']
outputs: [say.Output]
"""
COMMAND = {
    "schemaVersion": "2.2",
    "description": "Prints the date.",
    "mainSteps": [
        {"action": "aws:runShellScript", "name": "date", "inputs": {"runCommand": ["date"]}}
    ],
}
DIR_ECHO = ECHO % "from-a-file"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("documents")
    documents = root / "documents"
    documents.mkdir()
    (documents / "dir-echo.yaml").write_text(DIR_ECHO)
    process = DaemonProcess(
        root,
        {
            "state": f"sqlite:///{root / 'state.db'}",
            "documents": [str(documents)],
            "workers": 2,
        },
    )
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def echo(word: str) -> str:
    return ECHO % word


def said(client: Any, execution_id: str) -> str:
    done = wait_status(client, execution_id, "Success", "Failed")
    assert done["AutomationExecutionStatus"] == "Success", done
    return str(done["Outputs"]["say.Output"][0]).strip()


def refused(call: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value


def code(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


def test_a_created_document_is_described_like_aws_and_starts_by_name(
    daemon: DaemonProcess,
) -> None:
    client = daemon.client()
    content = echo("hello")
    created = client.create_document(
        Name="greeter",
        Content=content,
        DocumentType="Automation",
        DocumentFormat="YAML",
        VersionName="first",
        Tags=[{"Key": "team", "Value": "ops"}],
    )["DocumentDescription"]
    assert created["Hash"] == hashlib.sha256(content.encode()).hexdigest()
    assert created["HashType"] == "Sha256"
    assert (created["DocumentVersion"], created["LatestVersion"], created["DefaultVersion"]) == (
        "1",
        "1",
        "1",
    )
    assert created["Status"] == "Active" and created["SchemaVersion"] == "0.3"
    assert created["Owner"] == "000000000000" and created["VersionName"] == "first"
    assert created["Description"] == "Says a word."
    assert created["Parameters"] == [
        {"Name": "Word", "Type": "String", "Description": "What to say", "DefaultValue": "hello"}
    ]
    assert created["Tags"] == [{"Key": "team", "Value": "ops"}]

    execution_id = client.start_automation_execution(DocumentName="greeter")[
        "AutomationExecutionId"
    ]
    assert said(client, execution_id) == "hello"
    shown = client.get_automation_execution(AutomationExecutionId=execution_id)
    assert shown["AutomationExecution"]["DocumentVersion"] == "1"


def test_versions_default_latest_and_numbers_select_what_runs(daemon: DaemonProcess) -> None:
    client = daemon.client()
    client.create_document(Name="versioned", Content=echo("one"), DocumentFormat="YAML")
    updated = client.update_document(
        Name="versioned", Content=echo("two"), DocumentFormat="YAML", DocumentVersion="$LATEST"
    )["DocumentDescription"]
    assert (updated["DocumentVersion"], updated["LatestVersion"], updated["DefaultVersion"]) == (
        "2",
        "2",
        "1",
    )

    def run(**version: str) -> str:
        started = client.start_automation_execution(DocumentName="versioned", **version)
        return said(client, started["AutomationExecutionId"])

    assert run() == "one"  # the default version
    assert run(DocumentVersion="$LATEST") == "two"
    assert run(DocumentVersion="1") == "one"
    missing = refused(
        client.start_automation_execution, DocumentName="versioned", DocumentVersion="7"
    )
    assert code(missing) == "AutomationDefinitionVersionNotFoundException"

    described = client.update_document_default_version(Name="versioned", DocumentVersion="2")
    assert described["Description"] == {"Name": "versioned", "DefaultVersion": "2"}
    assert run() == "two"
    versions = client.list_document_versions(Name="versioned")["DocumentVersions"]
    assert [(v["DocumentVersion"], v["IsDefaultVersion"]) for v in versions] == [
        ("1", False),
        ("2", True),
    ]


def test_update_refuses_old_versions_same_content_and_reused_version_names(
    daemon: DaemonProcess,
) -> None:
    client = daemon.client()
    client.create_document(
        Name="strict-updates", Content=echo("a"), DocumentFormat="YAML", VersionName="v-a"
    )
    client.update_document(Name="strict-updates", Content=echo("b"), DocumentFormat="YAML")
    old = refused(
        client.update_document,
        Name="strict-updates",
        Content=echo("c"),
        DocumentFormat="YAML",
        DocumentVersion="1",
    )
    assert code(old) == "InvalidDocumentVersion"
    same = refused(
        client.update_document, Name="strict-updates", Content=echo("a"), DocumentFormat="YAML"
    )
    assert code(same) == "DuplicateDocumentContent"
    reused = refused(
        client.update_document,
        Name="strict-updates",
        Content=echo("d"),
        DocumentFormat="YAML",
        VersionName="v-a",
    )
    assert code(reused) == "DuplicateDocumentVersionName"
    unknown = refused(client.update_document, Name="no-such-doc", Content=echo("x"))
    assert code(unknown) == "InvalidDocument"


def test_content_problems_are_refused_with_their_location(daemon: DaemonProcess) -> None:
    client = daemon.client()
    broken = (
        echo("x").replace("nextStep", "").replace("outputs: [say.Output]", "outputs: [nope.Output]")
    )
    invalid = refused(
        client.create_document, Name="broken-doc", Content=broken, DocumentFormat="YAML"
    )
    assert code(invalid) == "InvalidDocumentContent"
    message = invalid.response["Error"]["Message"]
    assert "line 10, column" in message and "nope" in message

    not_json = refused(client.create_document, Name="yaml-as-json", Content=echo("x"))
    assert code(not_json) == "InvalidDocumentContent"
    assert "DocumentFormat" in not_json.response["Error"]["Message"]

    command_as_runbook = refused(
        client.create_document, Name="wrong-kind", Content=json.dumps(COMMAND)
    )
    assert code(command_as_runbook) == "InvalidDocumentSchemaVersion"
    assert "DocumentType=Command" in command_as_runbook.response["Error"]["Message"]

    big = echo("x") + "#" + "x" * (64 * 1024) + "\n"
    too_big = refused(client.create_document, Name="too-big", Content=big, DocumentFormat="YAML")
    assert code(too_big) == "MaxDocumentSizeExceeded"

    for name in ("AWS-Mine", "amazon-thing", "amzn1"):
        reserved = refused(
            client.create_document, Name=name, Content=echo("x"), DocumentFormat="YAML"
        )
        assert code(reserved) == "ValidationException", name
    bad_name = refused(client.create_document, Name="a b", Content=echo("x"), DocumentFormat="YAML")
    assert code(bad_name) == "ValidationException"

    client.create_document(Name="only-once", Content=echo("x"), DocumentFormat="YAML")
    twice = refused(
        client.create_document, Name="only-once", Content=echo("y"), DocumentFormat="YAML"
    )
    assert code(twice) == "DocumentAlreadyExists"


def test_get_document_converts_between_json_and_yaml(daemon: DaemonProcess) -> None:
    client = daemon.client()
    client.create_document(Name="yaml-doc", Content=echo("y"), DocumentFormat="YAML")
    as_json = client.get_document(Name="yaml-doc", DocumentFormat="JSON")
    assert as_json["DocumentFormat"] == "JSON"
    assert json.loads(as_json["Content"]) == yaml.safe_load(echo("y"))
    as_stored = client.get_document(Name="yaml-doc")
    assert as_stored["Content"] == echo("y") and as_stored["DocumentFormat"] == "YAML"

    content = json.dumps(yaml.safe_load(echo("j")))
    client.create_document(Name="json-doc", Content=content)
    as_yaml = client.get_document(Name="json-doc", DocumentFormat="YAML")
    assert yaml.safe_load(as_yaml["Content"]) == json.loads(content)
    assert as_yaml["DocumentType"] == "Automation" and as_yaml["Status"] == "Active"


def test_get_document_selects_versions_by_number_and_name(daemon: DaemonProcess) -> None:
    client = daemon.client()
    client.create_document(Name="named-versions", Content=echo("1"), DocumentFormat="YAML")
    client.update_document(
        Name="named-versions", Content=echo("2"), DocumentFormat="YAML", VersionName="second"
    )
    assert client.get_document(Name="named-versions")["DocumentVersion"] == "1"
    by_name = client.get_document(Name="named-versions", VersionName="second")
    assert by_name["DocumentVersion"] == "2" and by_name["VersionName"] == "second"
    assert (
        client.describe_document(Name="named-versions", DocumentVersion="$LATEST")["Document"][
            "DocumentVersion"
        ]
        == "2"
    )
    assert code(refused(client.get_document, Name="named-versions", DocumentVersion="3")) == (
        "InvalidDocumentVersion"
    )
    assert code(refused(client.get_document, Name="never-created")) == "InvalidDocument"


def test_a_document_file_reads_as_version_one_until_a_stored_one_shadows_it(
    daemon: DaemonProcess,
) -> None:
    client = daemon.client()
    from_file = client.get_document(Name="dir-echo")
    assert from_file["Content"] == DIR_ECHO and from_file["DocumentVersion"] == "1"
    started = client.start_automation_execution(DocumentName="dir-echo")
    assert said(client, started["AutomationExecutionId"]) == "from-a-file"

    client.create_document(
        Name="dir-echo", Content=echo("from-the-database"), DocumentFormat="YAML"
    )
    started = client.start_automation_execution(DocumentName="dir-echo")
    assert said(client, started["AutomationExecutionId"]) == "from-the-database"


def test_list_documents_filters_by_name_type_owner_and_tag_and_pages(
    daemon: DaemonProcess,
) -> None:
    client = daemon.client()
    for index in range(3):
        client.create_document(
            Name=f"listed-{index}",
            Content=echo(str(index)),
            DocumentFormat="YAML",
            Tags=[{"Key": "env", "Value": "prod" if index else "dev"}],
        )
    client.create_document(
        Name="listed-command", Content=json.dumps(COMMAND), DocumentType="Command"
    )

    def names(*filters: dict[str, Any]) -> list[str]:
        found = []
        for page in client.get_paginator("list_documents").paginate(
            Filters=list(filters), PaginationConfig={"PageSize": 2}
        ):
            found += [d["Name"] for d in page["DocumentIdentifiers"]]
        return found

    prefix = {"Key": "Name", "Values": ["listed-"]}
    assert names(prefix) == ["listed-0", "listed-1", "listed-2", "listed-command"]
    assert names(prefix, {"Key": "DocumentType", "Values": ["Command"]}) == ["listed-command"]
    assert names(prefix, {"Key": "tag:env", "Values": ["prod"]}) == ["listed-1", "listed-2"]
    assert names(prefix, {"Key": "Owner", "Values": ["Self"]})[:1] == ["listed-0"]
    assert names(prefix, {"Key": "Owner", "Values": ["Amazon"]}) == []
    command = client.list_documents(Filters=[{"Key": "Name", "Values": ["listed-command"]}])
    assert command["DocumentIdentifiers"][0]["PlatformTypes"] == ["Linux", "MacOS"]
    assert command["DocumentIdentifiers"][0]["SchemaVersion"] == "2.2"
    legacy = client.list_documents(DocumentFilterList=[{"key": "Name", "value": "listed-2"}])
    assert [d["Name"] for d in legacy["DocumentIdentifiers"]] == ["listed-2"]
    unknown = refused(client.list_documents, Filters=[{"Key": "Colour", "Values": ["x"]}])
    assert code(unknown) == "InvalidFilterKey"


def test_a_command_document_is_stored_but_is_not_an_automation(daemon: DaemonProcess) -> None:
    client = daemon.client()
    created = client.create_document(
        Name="date-command", Content=json.dumps(COMMAND), DocumentType="Command"
    )["DocumentDescription"]
    assert created["DocumentType"] == "Command" and created["SchemaVersion"] == "2.2"
    start = refused(client.start_automation_execution, DocumentName="date-command")
    assert code(start) == "AutomationDefinitionNotFoundException"


def test_delete_a_version_then_the_document(daemon: DaemonProcess) -> None:
    client = daemon.client()
    client.create_document(Name="short-lived", Content=echo("1"), DocumentFormat="YAML")
    client.update_document(Name="short-lived", Content=echo("2"), DocumentFormat="YAML")
    default = refused(client.delete_document, Name="short-lived", DocumentVersion="1")
    assert code(default) == "InvalidDocumentOperation"
    client.delete_document(Name="short-lived", DocumentVersion="2")
    versions = client.list_document_versions(Name="short-lived")["DocumentVersions"]
    assert [v["DocumentVersion"] for v in versions] == ["1"]
    client.delete_document(Name="short-lived")
    assert code(refused(client.get_document, Name="short-lived")) == "InvalidDocument"
    gone = refused(client.start_automation_execution, DocumentName="short-lived")
    assert code(gone) == "AutomationDefinitionNotFoundException"
    assert code(refused(client.delete_document, Name="short-lived")) == "InvalidDocument"


def test_policies_apply_to_documents(daemon: DaemonProcess) -> None:
    limited, viewer = daemon.client(LIMITED), daemon.client(VIEWER)
    denied = refused(
        limited.create_document, Name="not-quick", Content=echo("x"), DocumentFormat="YAML"
    )
    assert code(denied) == "AccessDeniedException"
    limited.create_document(Name="quick-doc", Content=echo("x"), DocumentFormat="YAML")
    listed = limited.list_documents()["DocumentIdentifiers"]
    assert listed and all(d["Name"].startswith("quick-") for d in listed)
    assert viewer.get_document(Name="quick-doc")["Name"] == "quick-doc"
    assert code(refused(viewer.delete_document, Name="quick-doc")) == "AccessDeniedException"


def test_the_aws_cli_creates_updates_and_reads_documents(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(echo("cli-1"))
    second.write_text(echo("cli-2"))
    created = aws(
        daemon, "create-document", "--name", "cli-doc", "--content", f"file://{first}",
        "--document-type", "Automation", "--document-format", "YAML",
    )  # fmt: skip
    assert created["DocumentDescription"]["DocumentVersion"] == "1"
    updated = aws(
        daemon, "update-document", "--name", "cli-doc", "--content", f"file://{second}",
        "--document-format", "YAML", "--document-version", "$LATEST",
    )  # fmt: skip
    assert updated["DocumentDescription"]["LatestVersion"] == "2"
    shown = aws(daemon, "get-document", "--name", "cli-doc", "--document-version", "2")
    assert shown["Content"] == echo("cli-2")
    failed = aws(daemon, "describe-document", "--name", "cli-missing")
    assert failed["exit"] != 0 and "InvalidDocument" in failed["stderr"]
