"""The daemon's Parameter Store API, driven by real clients: boto3 and the aws CLI.

One ``runbook serve`` process (SQLite, its own SecureString key file) serves the module.
Beyond the shapes and errors of each operation, the tests hold the daemon to one
promise: a SecureString's plain text is in no response read without decryption, in no
byte of the database files, in no log line, and on no dashboard page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from runbook_engine.daemon.config import ConfigError, Policy, load_config, parse_config
from runbook_engine.daemon.dashboard.parameter_source import StoreParameterSource
from runbook_engine.daemon.dashboard.passwords import hash_password
from runbook_engine.parameters import LocalParameterStore, MemoryParameterRows
from runbook_engine.secrets import SecretBox
from tests.services.daemon import (
    ALICE,
    LIMITED,
    POLICIES,
    VIEWER,
    DaemonProcess,
    send,
    signed_request,
    wait_for,
)

PLAINTEXT = "hunter2-plaintext-7f3a9c"
GREETING = """\
schemaVersion: '0.3'
parameters:
  Greeting: {type: String, default: '{{ssm:/app/greeting}}'}
mainSteps:
  - name: say
    action: aws:runShellScript
    inputs:
      Commands: ['echo "{{ Greeting }}"']
outputs: [say.Output]
"""
PASSWORD = "parameter pages"
ALICE_ARN = "arn:aws:iam::000000000000:user/alice"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("parameters")
    documents = root / "documents"
    documents.mkdir()
    (documents / "greeting.yaml").write_text(GREETING)
    hashed = hash_password(PASSWORD, cost=2**10)
    process = DaemonProcess(
        root,
        {
            "state": f"sqlite:///{root / 'state.db'}",
            "parameter_key_file": "keys/parameter.key",  # relative to the configuration file
            "documents": [str(documents)],
            "workers": 1,
            "policies": {**POLICIES, "limited": {"parameters": ["/team/*"]}},
            "dashboard": {
                "users": [
                    {"name": "alice", "password_hash": hashed},
                    {"name": "limited", "password_hash": hashed},
                ],
                "session_secret": "a-session-secret-for-tests",
            },
        },
    )
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def code_of(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def raw(daemon: DaemonProcess, target: str, body: dict[str, Any], key: Any = ALICE) -> Any:
    """The answer as the server wrote it (status, JSON), not as botocore parsed it."""
    return send(signed_request(daemon.url, target, json.dumps(body).encode(), key))


# -- PutParameter and GetParameter ----------------------------------------------------------


def test_put_creates_versions_and_get_returns_the_model_shape(daemon: DaemonProcess) -> None:
    ssm = daemon.client()
    put = ssm.put_parameter(Name="/shape/host", Value="db1", Type="String", Description="db")
    assert (put["Version"], put["Tier"]) == (1, "Standard")
    again = ssm.put_parameter(
        Name="/shape/host", Value="db2", Overwrite=True, Tier="Advanced", DataType="text"
    )
    assert (again["Version"], again["Tier"]) == (2, "Standard")
    found = ssm.get_parameter(Name="/shape/host")["Parameter"]
    assert {k: found[k] for k in ("Name", "Type", "Value", "Version", "DataType", "ARN")} == {
        "Name": "/shape/host",
        "Type": "String",
        "Value": "db2",
        "Version": 2,
        "DataType": "text",
        "ARN": "arn:aws:ssm:us-east-1:000000000000:parameter/shape/host",
    }
    assert abs(found["LastModifiedDate"] - datetime.now(UTC)) < timedelta(minutes=1)
    arn = "arn:aws:ssm:us-east-1:000000000000:parameter/shape/host"
    assert ssm.get_parameter(Name=arn + ":1")["Parameter"]["Value"] == "db1"
    _, body = raw(daemon, "GetParameter", {"Name": "/shape/host"})
    assert isinstance(body["Parameter"]["LastModifiedDate"], float)  # epoch seconds

    ssm.put_parameter(Name="RootName", Value=" a , b,c ", Type="StringList")
    listed = ssm.get_parameter(Name="/RootName")["Parameter"]  # the same root parameter
    assert (listed["Name"], listed["Value"]) == ("RootName", "a,b,c")


@pytest.mark.parametrize(
    ("request_body", "code"),
    [
        ({"Name": "/errors/taken", "Value": "x", "Type": "String"}, "ParameterAlreadyExists"),
        ({"Name": "/errors/taken", "Value": "x", "Type": "SecureString", "Overwrite": True},
         "HierarchyTypeMismatchException"),
        ({"Name": "/errors/port", "Value": "80a", "Type": "String", "AllowedPattern": "^[0-9]+$"},
         "ParameterPatternMismatchException"),
        ({"Name": "/errors/re", "Value": "1", "Type": "String", "AllowedPattern": "(["},
         "InvalidAllowedPatternException"),
        ({"Name": "/errors/new", "Value": "x"}, "ValidationException"),
        ({"Name": "/aws/mine", "Value": "x", "Type": "String"}, "ValidationException"),
        ({"Name": "/errors/with space", "Value": "x", "Type": "String"}, "ValidationException"),
        ({"Name": "/errors/kind", "Value": "x", "Type": "Text"}, "ValidationException"),
        ({"Name": "/errors/data", "Value": "x", "Type": "String", "DataType": "json"},
         "ValidationException"),
        ({"Name": "/errors/tier", "Value": "x", "Type": "String", "Tier": "Gold"},
         "ValidationException"),
        ({"Name": "/errors/ref", "Value": "{{ssm:/a}}", "Type": "String"}, "ValidationException"),
        ({"Name": "/errors/key", "Value": "x", "Type": "SecureString", "KeyId": "alias/mine"},
         "InvalidKeyId"),
        ({"Name": "/" + "/".join("l" * 16), "Value": "x", "Type": "String"},
         "HierarchyLevelLimitExceededException"),
    ],
)  # fmt: skip
def test_put_errors_carry_the_model_codes_and_both_message_spellings(
    daemon: DaemonProcess, request_body: dict[str, Any], code: str
) -> None:
    daemon.client().put_parameter(Name="/errors/taken", Value="x", Type="String", Overwrite=True)
    status, body = raw(daemon, "PutParameter", request_body)
    assert (status, body["__type"]) == (400, code)
    assert body["message"] and body["message"] == body["Message"]


def test_selectors_pick_a_version_or_a_label_and_never_fall_back(daemon: DaemonProcess) -> None:
    ssm = daemon.client()
    for value in ("one", "two", "three"):
        ssm.put_parameter(Name="/sel/p", Value=value, Type="String", Overwrite=True)
    labelled = ssm.label_parameter_version(Name="/sel/p", ParameterVersion=1, Labels=["stable"])
    assert labelled["ParameterVersion"] == 1 and "InvalidLabels" not in labelled
    by_version = ssm.get_parameter(Name="/sel/p:2")["Parameter"]
    assert (by_version["Value"], by_version["Selector"], by_version["Name"]) == (
        "two", ":2", "/sel/p",
    )  # fmt: skip
    by_label = ssm.get_parameter(Name="/sel/p:stable")["Parameter"]
    assert (by_label["Value"], by_label["Version"], by_label["Selector"]) == (
        "one", 1, ":stable",
    )  # fmt: skip
    assert ssm.get_parameter(Name="/sel/p")["Parameter"]["Value"] == "three"
    for missing in ("/sel/p:9", "/sel/p:nolabel"):
        with pytest.raises(ClientError) as error:
            ssm.get_parameter(Name=missing)
        assert code_of(error) == "ParameterVersionNotFound"
    with pytest.raises(ClientError) as error:
        ssm.get_parameter(Name="/sel/absent")
    assert code_of(error) == "ParameterNotFound"
    assert error.value.response["Error"]["Message"]


def test_get_parameters_lists_what_it_found_and_what_it_did_not(daemon: DaemonProcess) -> None:
    ssm = daemon.client()
    ssm.put_parameter(Name="/many/b", Value="B", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/many/a", Value="A", Type="String", Overwrite=True)
    answer = ssm.get_parameters(Names=["/many/b", "/many/missing", "/many/a", "/many/a:7"])
    assert [(p["Name"], p["Value"]) for p in answer["Parameters"]] == [
        ("/many/a", "A"),
        ("/many/b", "B"),
    ]
    assert answer["InvalidParameters"] == ["/many/missing", "/many/a:7"]
    assert "InvalidParameters" not in ssm.get_parameters(Names=["/many/a"])
    status, body = raw(daemon, "GetParameters", {"Names": [f"/n{i}" for i in range(11)]})
    assert (status, body["__type"]) == (400, "ValidationException")


# -- GetParametersByPath ----------------------------------------------------------------------


def put_tree(ssm: Any) -> None:
    values = {"/tree/a": "String", "/tree/b": "StringList", "/tree/s": "SecureString",
              "/tree/sub/c": "String", "/tree/sub/deeper/d": "String", "/treetop": "String"}  # fmt: skip
    for name, kind in values.items():
        ssm.put_parameter(Name=name, Value=f"{name}-v", Type=kind, Overwrite=True)


def test_by_path_reads_one_level_or_the_subtree(daemon: DaemonProcess) -> None:
    ssm = daemon.client()
    put_tree(ssm)
    level = ssm.get_parameters_by_path(Path="/tree")["Parameters"]
    assert [p["Name"] for p in level] == ["/tree/a", "/tree/b", "/tree/s"]
    assert ssm.get_parameters_by_path(Path="/tree/")["Parameters"] == level
    subtree = ssm.get_parameters_by_path(Path="/tree", Recursive=True)["Parameters"]
    assert [p["Name"] for p in subtree] == [
        "/tree/a", "/tree/b", "/tree/s", "/tree/sub/c", "/tree/sub/deeper/d",
    ]  # fmt: skip
    with pytest.raises(ClientError) as error:
        ssm.get_parameters_by_path(Path="tree")
    assert code_of(error) == "ValidationException"


def test_by_path_filters_on_type_key_and_label(daemon: DaemonProcess) -> None:
    ssm = daemon.client()
    put_tree(ssm)

    def names(*filters: dict[str, Any]) -> list[str]:
        found = ssm.get_parameters_by_path(
            Path="/tree", Recursive=True, ParameterFilters=list(filters)
        )
        return [p["Name"] for p in found["Parameters"]]

    assert names({"Key": "Type", "Values": ["StringList", "SecureString"]}) == [
        "/tree/b", "/tree/s",
    ]  # fmt: skip
    assert names({"Key": "Type", "Option": "BeginsWith", "Values": ["String"]}) == [
        "/tree/a", "/tree/b", "/tree/sub/c", "/tree/sub/deeper/d",
    ]  # fmt: skip
    assert names({"Key": "KeyId", "Values": ["alias/aws/ssm"]}) == ["/tree/s"]
    ssm.put_parameter(Name="/tree/a", Value="/tree/a-v2", Overwrite=True)
    ssm.label_parameter_version(Name="/tree/a", ParameterVersion=1, Labels=["blue"])
    labelled = ssm.get_parameters_by_path(
        Path="/tree", ParameterFilters=[{"Key": "Label", "Values": ["blue"]}]
    )["Parameters"]
    assert [(p["Name"], p["Version"], p["Selector"]) for p in labelled] == [("/tree/a", 1, ":blue")]
    for filters, code in (
        ([{"Key": "Name", "Values": ["x"]}], "InvalidFilterKey"),
        ([{"Key": "tag:team", "Values": ["x"]}], "InvalidFilterKey"),
        ([{"Key": "Label", "Option": "BeginsWith", "Values": ["b"]}], "InvalidFilterOption"),
        ([{"Key": "Type", "Values": ["Number"]}], "InvalidFilterValue"),
    ):
        with pytest.raises(ClientError) as error:
            ssm.get_parameters_by_path(Path="/tree", ParameterFilters=filters)
        assert code_of(error) == code, filters


def test_by_path_pages_for_botocores_paginator(daemon: DaemonProcess) -> None:
    ssm = daemon.client()
    for index in range(7):
        ssm.put_parameter(Name=f"/paged/p{index}", Value=str(index), Type="String", Overwrite=True)
    first = ssm.get_parameters_by_path(Path="/paged", MaxResults=3)
    assert len(first["Parameters"]) == 3 and first["NextToken"]
    pages = list(
        ssm.get_paginator("get_parameters_by_path").paginate(
            Path="/paged", PaginationConfig={"PageSize": 3}
        )
    )
    assert [len(page["Parameters"]) for page in pages] == [3, 3, 1]
    assert "NextToken" not in pages[-1]
    names = [p["Name"] for page in pages for p in page["Parameters"]]
    assert names == [f"/paged/p{i}" for i in range(7)]
    for body, code in (
        ({"Path": "/paged", "NextToken": "not-a-token"}, "InvalidNextToken"),
        ({"Path": "/other", "NextToken": first["NextToken"]}, "InvalidNextToken"),
        ({"Path": "/paged", "MaxResults": 11}, "ValidationException"),
        ({"Path": "/paged", "MaxResults": 0}, "ValidationException"),
    ):
        status, answer = raw(daemon, "GetParametersByPath", body)
        assert (status, answer["__type"]) == (400, code), body


# -- history, labels, delete ------------------------------------------------------------------


def test_history_is_paginated_and_names_who_changed_each_version(daemon: DaemonProcess) -> None:
    ssm = daemon.client()
    ssm.put_parameter(
        Name="/hist/p", Value="1", Type="String", Description="d", AllowedPattern="^[0-9]+$"
    )
    for value in range(2, 6):
        ssm.put_parameter(Name="/hist/p", Value=str(value), Overwrite=True)
    pages = list(
        ssm.get_paginator("get_parameter_history").paginate(
            Name="/hist/p", PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(page["Parameters"]) for page in pages] == [2, 2, 1]
    versions = [p for page in pages for p in page["Parameters"]]
    assert [(v["Version"], v["Value"]) for v in versions] == [(i, str(i)) for i in range(1, 6)]
    first = versions[0]
    assert first["LastModifiedUser"] == ALICE_ARN
    assert (first["Description"], first["AllowedPattern"], first["Tier"]) == (
        "d", "^[0-9]+$", "Standard",
    )  # fmt: skip
    with pytest.raises(ClientError) as error:
        ssm.get_parameter_history(Name="/hist/absent")
    assert code_of(error) == "ParameterNotFound"


def test_labels_move_between_versions_and_report_invalid_ones(daemon: DaemonProcess) -> None:
    ssm = daemon.client()
    ssm.put_parameter(Name="/lab/p", Value="1", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/lab/p", Value="2", Overwrite=True)
    answer = ssm.label_parameter_version(
        Name="/lab/p", ParameterVersion=1, Labels=["prod", "1st", "awsy", "ok.label"]
    )
    assert answer["InvalidLabels"] == ["1st", "awsy"]
    moved = ssm.label_parameter_version(Name="/lab/p", Labels=["prod"])  # default: latest
    assert moved["ParameterVersion"] == 2
    history = ssm.get_parameter_history(Name="/lab/p")["Parameters"]
    assert [v["Labels"] for v in history] == [["ok.label"], ["prod"]]
    ssm.label_parameter_version(Name="/lab/p", Labels=[f"l{i}" for i in range(9)])
    with pytest.raises(ClientError) as error:
        ssm.label_parameter_version(Name="/lab/p", Labels=["tenth", "eleventh"])
    assert code_of(error) == "ParameterVersionLabelLimitExceeded"
    for name, version, code in (
        ("/lab/p", 9, "ParameterVersionNotFound"),
        ("/lab/absent", 1, "ParameterNotFound"),
    ):
        with pytest.raises(ClientError) as error:
            ssm.label_parameter_version(Name=name, ParameterVersion=version, Labels=["x"])
        assert code_of(error) == code


def test_delete_removes_every_version(daemon: DaemonProcess) -> None:
    ssm = daemon.client()
    ssm.put_parameter(Name="/del/p", Value="1", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/del/p", Value="2", Overwrite=True)
    assert ssm.delete_parameter(Name="/del/p")["ResponseMetadata"]["HTTPStatusCode"] == 200
    for call in (ssm.get_parameter, ssm.delete_parameter, ssm.get_parameter_history):
        with pytest.raises(ClientError) as error:
            call(Name="/del/p")
        assert code_of(error) == "ParameterNotFound"
    assert ssm.put_parameter(Name="/del/p", Value="new", Type="String")["Version"] == 1


# -- SecureString -------------------------------------------------------------------------------


def test_secure_string_plaintext_appears_only_when_decryption_is_asked_for(
    daemon: DaemonProcess,
) -> None:
    ssm = daemon.client()
    ssm.put_parameter(Name="/secret/db", Value=PLAINTEXT, Type="SecureString", Overwrite=True)
    ssm.put_parameter(Name="/secret/db", Value=PLAINTEXT + "-2", Overwrite=True)
    ssm.label_parameter_version(Name="/secret/db", ParameterVersion=1, Labels=["old"])

    bodies: list[bytes] = []
    reader = daemon.client()
    reader.meta.events.register(
        "after-call.ssm", lambda http_response, **_: bodies.append(http_response.content)
    )
    plain_reads = [
        reader.get_parameter(Name="/secret/db")["Parameter"],
        reader.get_parameter(Name="/secret/db:old")["Parameter"],
        *reader.get_parameters(Names=["/secret/db", "/secret/db:1"])["Parameters"],
        *reader.get_parameters_by_path(Path="/secret")["Parameters"],
        *reader.get_parameters_by_path(
            Path="/secret", ParameterFilters=[{"Key": "Label", "Values": ["old"]}]
        )["Parameters"],
        *reader.get_parameter_history(Name="/secret/db")["Parameters"],
    ]
    assert len(bodies) == 6 and all(b"/secret/db" in body for body in bodies)
    assert not [body for body in bodies if PLAINTEXT.encode() in body]
    for shape in plain_reads:  # the ciphertext, as AWS answers with the KMS blob
        assert shape["Type"] == "SecureString" and shape["Value"].startswith("gAAAA")

    _, refused = raw(daemon, "PutParameter", {"Name": "/secret/pin", "Value": PLAINTEXT,
                     "Type": "SecureString", "AllowedPattern": "^[0-9]{4}$"})  # fmt: skip
    assert refused["__type"] == "ParameterPatternMismatchException"
    assert PLAINTEXT not in json.dumps(refused)

    decrypted = ssm.get_parameter(Name="/secret/db:1", WithDecryption=True)["Parameter"]
    assert decrypted["Value"] == PLAINTEXT
    many = ssm.get_parameters(Names=["/secret/db"], WithDecryption=True)["Parameters"]
    assert many[0]["Value"] == PLAINTEXT + "-2"
    by_path = ssm.get_parameters_by_path(Path="/secret", WithDecryption=True)["Parameters"]
    assert by_path[0]["Value"] == PLAINTEXT + "-2"
    history = ssm.get_parameter_history(Name="/secret/db", WithDecryption=True)["Parameters"]
    assert [v["Value"] for v in history] == [PLAINTEXT, PLAINTEXT + "-2"]
    assert history[0]["KeyId"] == "alias/aws/ssm"

    key_file = daemon.directory / "keys" / "parameter.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    database = [p for p in daemon.directory.iterdir() if p.name.startswith("state.db")]
    assert database and all(PLAINTEXT.encode() not in p.read_bytes() for p in database)
    assert any(b"gAAAA" in p.read_bytes() for p in database)  # the ciphertext is there
    assert daemon.events("request") and PLAINTEXT not in "".join(daemon.raw)


# -- access -----------------------------------------------------------------------------------


def test_policies_limit_parameters_by_name_and_operation(daemon: DaemonProcess) -> None:
    alice, limited, viewer = daemon.client(), daemon.client(LIMITED), daemon.client(VIEWER)
    alice.put_parameter(Name="/app/private", Value="p", Type="String", Overwrite=True)
    assert limited.put_parameter(Name="/team/x", Value="t", Type="String", Overwrite=True)
    for call in (
        lambda: limited.put_parameter(Name="/app/y", Value="v", Type="String"),
        lambda: limited.get_parameter(Name="/app/private"),
        lambda: limited.get_parameter(Name="/app/private:1"),
        lambda: limited.get_parameters(Names=["/team/x", "/app/private"]),
        lambda: limited.delete_parameter(Name="/app/private"),
        lambda: limited.get_parameter_history(Name="/app/private"),
        lambda: limited.label_parameter_version(Name="/app/private", Labels=["x"]),
        lambda: viewer.put_parameter(Name="/team/v", Value="v", Type="String"),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert code_of(error) == "AccessDeniedException"
    with pytest.raises(ClientError) as error:
        limited.get_parameter(Name="/app/private")
    assert error.value.response["Error"]["Message"] == (
        "User: arn:aws:iam::000000000000:user/limited is not authorized to perform:"
        " ssm:GetParameter on resource: arn:aws:ssm:us-east-1:000000000000:parameter/app/private"
    )
    seen = limited.get_parameters_by_path(Path="/", Recursive=True)["Parameters"]
    assert [p["Name"] for p in seen] == ["/team/x"]
    assert viewer.get_parameter(Name="/app/private")["Parameter"]["Value"] == "p"
    assert Policy(parameters=("app/*",)).allows_parameter("/app/db/host")
    assert Policy(parameters=("/Root*",)).allows_parameter("RootName")
    assert not Policy(parameters=("/app/*",)).allows_parameter("/apps/x")


def test_policy_and_key_file_configuration(tmp_path: Path) -> None:
    config = parse_config({"policies": {"ops": {"parameters": ["/app/*"]}}})
    assert config.policy("ops").parameters == ("/app/*",)
    assert config.policy("ops").documents == ("*",)
    with pytest.raises(ConfigError):
        parse_config({"policies": {"ops": {"parameters": "/app/*"}}})
    with pytest.raises(ConfigError):
        parse_config({"policies": {"ops": {"secrets": ["*"]}}})
    (tmp_path / "daemon.yaml").write_text("parameter_key_file: keys/p.key\n")
    assert load_config(tmp_path / "daemon.yaml").parameter_key_file == str(tmp_path / "keys/p.key")


# -- the engine and the dashboard share the store ---------------------------------------------


def test_an_execution_resolves_a_default_from_a_parameter_put_through_the_api(
    daemon: DaemonProcess,
) -> None:
    ssm = daemon.client()
    ssm.put_parameter(Name="/app/greeting", Value="hello from the API", Type="String",
                      Overwrite=True)  # fmt: skip
    execution_id = ssm.start_automation_execution(DocumentName="greeting")["AutomationExecutionId"]

    def finished() -> Any:
        shape = ssm.get_automation_execution(AutomationExecutionId=execution_id)
        execution = shape["AutomationExecution"]
        return execution if execution["AutomationExecutionStatus"] == "Success" else None

    done = wait_for(finished, what="the greeting execution")
    assert "Greeting" not in done["Parameters"]  # not supplied: the default was used
    assert done["Outputs"]["say.Output"] == ["hello from the API\n"]


def dashboard_page(daemon: DaemonProcess, user: str, path: str) -> str:
    """Log in through the form (cookies and CSRF token as a browser keeps them), then GET."""
    web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with web.open(daemon.url + "/ui/login", timeout=10) as response:
        token = re.search(r'name="csrf" value="([^"]+)"', response.read().decode())
    assert token
    form = {"csrf": token.group(1), "name": user, "password": PASSWORD}
    with web.open(
        daemon.url + "/ui/login", urllib.parse.urlencode(form).encode(), timeout=10
    ) as response:
        assert "/ui/login" not in response.url  # redirected onwards: logged in
    with web.open(daemon.url + path, timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())


def test_the_dashboard_lists_parameters_and_masks_secure_strings(daemon: DaemonProcess) -> None:
    ssm = daemon.client()
    ssm.put_parameter(Name="/web/secret", Value=PLAINTEXT, Type="SecureString", Overwrite=True)
    ssm.put_parameter(Name="/web/plain", Value="visible-value", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/team/web", Value="team-value", Type="String", Overwrite=True)
    page = dashboard_page(daemon, "alice", "/ui/parameters?path=/web/")
    assert "/web/secret" in page and "/web/plain" in page and "visible-value" in page
    assert "<code>****</code>" in page and "/team/web" not in page
    assert PLAINTEXT not in page and "gAAAA" not in page  # neither plain nor cipher text
    everything = dashboard_page(daemon, "alice", "/ui/parameters")
    assert PLAINTEXT not in everything and "/web/plain" in everything
    limited = dashboard_page(daemon, "limited", "/ui/parameters")
    assert "/team/web" in limited and "/web/plain" not in limited


@pytest.mark.anyio
async def test_the_store_source_filters_by_prefix_and_drops_secret_values(
    tmp_path: Path,
) -> None:
    store = LocalParameterStore(MemoryParameterRows(), SecretBox(tmp_path / "k"), "tester")
    await store.put("/a/secret", PLAINTEXT, type="SecureString")
    await store.put("/a/plain", "v", type="String")
    await store.put("Root", "r", type="String")
    source = StoreParameterSource(lambda: store)
    entries = await source.list_parameters()
    assert [e.name for e in entries] == ["/a/plain", "/a/secret", "Root"]
    secret = next(e for e in entries if e.type == "SecureString")
    assert secret.value is None and secret.shown_value == "****"
    assert [e.name for e in await source.list_parameters("/a/p")] == ["/a/plain"]
    assert [e.name for e in await source.list_parameters("/Ro")] == ["Root"]


# -- the aws CLI ------------------------------------------------------------------------------


def aws(daemon: DaemonProcess, *args: str) -> Any:
    executable = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if executable is None:
        pytest.fail("the aws CLI is not installed (pip install awscli: the test extra)")
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ALICE[0],
        "AWS_SECRET_ACCESS_KEY": ALICE[1],
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    environment.pop("AWS_PROFILE", None)
    result = subprocess.run(
        [executable, "ssm", *args, "--endpoint-url", daemon.url, "--region", "us-east-1",
         "--output", "json"],
        capture_output=True, text=True, env=environment, timeout=60,
    )  # fmt: skip
    if result.returncode != 0:
        return {"exit": result.returncode, "stderr": result.stderr}
    return json.loads(result.stdout) if result.stdout.strip() else {}


def test_the_aws_cli_puts_gets_and_pages_through_a_path(daemon: DaemonProcess) -> None:
    put = aws(daemon, "put-parameter", "--name", "/cli/p0", "--value", "v0", "--type", "String",
              "--overwrite")  # fmt: skip
    assert put == {"Version": put["Version"], "Tier": "Standard"}
    ssm = daemon.client()
    for index in range(1, 5):
        ssm.put_parameter(Name=f"/cli/p{index}", Value=f"v{index}", Type="String", Overwrite=True)
    got = aws(daemon, "get-parameter", "--name", "/cli/p0")
    assert (got["Parameter"]["Name"], got["Parameter"]["Value"]) == ("/cli/p0", "v0")
    before = len(daemon.events("request"))
    listed = aws(daemon, "get-parameters-by-path", "--path", "/cli", "--page-size", "2")
    assert [p["Value"] for p in listed["Parameters"]] == [f"v{i}" for i in range(5)]
    calls = [e for e in daemon.events("request")[before:]
             if e["operation"] == "GetParametersByPath"]  # fmt: skip
    assert len(calls) == 3  # the CLI's paginator followed NextToken twice
