"""The web dashboard through starlette's TestClient: logins, CSRF, escaping, approvals.

The app is the daemon's own (``build_app``) over an engine on a MemoryStore; executions
run in the TestClient's event loop (``client.portal``), so an approval sent through the
dashboard is picked up by a real ``Engine.wait`` and the runbook runs its shell step.
Passwords are hashed with a low scrypt cost to keep the tests quick (the cost is part
of the hash, so the check uses it too).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from runbook_engine.cli import main as cli
from runbook_engine.daemon.app import build_app
from runbook_engine.daemon.config import ConfigError, DaemonConfig, DashboardUser, parse_config
from runbook_engine.daemon.dashboard.graph_svg import back_edges, graph_svg
from runbook_engine.daemon.dashboard.passwords import (
    PasswordHashError,
    check_hash,
    hash_password,
    verify_password,
)
from runbook_engine.daemon.dashboard.providers import (
    ParameterEntry,
    Providers,
    ScheduleEntry,
    stored_documents,
)
from runbook_engine.daemon.dashboard.schedule_source import StoreScheduleSource
from runbook_engine.daemon.dashboard.sessions import SessionKeeper
from runbook_engine.daemon.metrics import Metrics
from runbook_engine.daemon.operations import Operations
from runbook_engine.daemon.schedule_runner import ScheduleRunner
from runbook_engine.engine import Engine
from runbook_engine.graph import END, build_graph
from runbook_engine.records import ExecutionRecord, LoopContext, StepRecord
from runbook_engine.schedules import create_schedule
from runbook_engine.status import Status
from runbook_engine.store.memory import MemoryStore
from runbook_engine.validation import load_runbook

CHEAP = 2**10
POLICIES = {
    "viewer": {"operations": ["Get*", "Describe*"]},
    "limited": {"documents": ["quick-*"]},
    "starter": {"operations": ["StartAutomationExecution"]},
}
PASSWORDS = {
    "alice": "correct horse",
    "bob": "battery staple",
    "viewer": "just looking",
    "limited": "only quick ones",
    "starter": "starts only",
}
USERS = tuple(DashboardUser(n, hash_password(p, cost=CHEAP)) for n, p in PASSWORDS.items())
SECRET = "a-session-secret-for-tests"
ROOT = Path(__file__).resolve().parent.parent
APPROVAL_GATE = str(ROOT / "runbooks" / "approval-gate.yaml")
HOSTILE = "<script>alert('pwned')</script>"
LOOPING = """\
schemaVersion: '0.3'
mainSteps:
  - name: prepare
    action: aws:sleep
    inputs: {Duration: PT0S}
  - name: repeat
    action: aws:loop
    inputs:
      Iterators: [a, b]
      Steps:
        - name: work
          action: aws:sleep
          inputs: {Duration: PT0S}
  - name: check
    action: aws:sleep
    onFailure: step:prepare
    inputs: {Duration: PT0S}
"""


class Parameters:
    async def list_parameters(self, path: str | None = None) -> Sequence[ParameterEntry]:
        entries = [
            ParameterEntry("/app/db/password", "SecureString", "hunter2-secret", version=3),
            ParameterEntry("/app/db/host", "String", "db.internal", version=1),
            ParameterEntry("/other/zones", "StringList", "a,b", version=2),
        ]
        return [e for e in entries if path is None or e.name.startswith(path)]


class Schedules:
    async def list_schedules(self) -> Sequence[ScheduleEntry]:
        return [ScheduleEntry("nightly", "hello-world", "cron(0 2 * * ? *)")]


@dataclass
class Site:
    client: TestClient
    engine: Engine
    tmp: Path

    def call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return await function(*args, **kwargs)

        return self.client.portal.call(run)  # type: ignore[union-attr]

    def login(self, name: str = "alice", password: str | None = None) -> str:
        """Log in; returns the CSRF token of the pages this session sees."""
        self.client.cookies.clear()
        form = self.client.get("/ui/login")
        token = csrf_of(form.text)
        response = self.client.post(
            "/ui/login",
            data={"csrf": token, "name": name, "password": password or PASSWORDS[name]},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        return csrf_of(self.client.get("/ui/executions").text)

    def waiting_approval(self) -> str:
        marker = self.tmp / "marker.txt"
        execution_id = self.call(
            self.engine.start, APPROVAL_GATE, {"Approver": "alice", "Marker": str(marker)}
        )
        view = self.call(self.engine.wait, execution_id, until_waiting=True)
        assert view.status == Status.WAITING
        return str(execution_id)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def make_site(
    tmp_path: Path, providers: Providers | None = None, engine: Engine | None = None
) -> Iterator[Site]:
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "looping.yaml").write_text(LOOPING)
    config = DaemonConfig(
        documents=(str(documents),),
        dashboard_users=USERS,
        dashboard_secret=SECRET,
        policies=parse_config({"policies": POLICIES}).policies,
    )
    engine = engine or Engine(MemoryStore(), documents=[documents])
    operations = Operations(engine, config, lambda: None)
    app = build_app(config, engine, operations, Metrics(), providers)
    with TestClient(app, base_url="http://testserver") as client:
        yield Site(client, engine, tmp_path)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path, Providers(parameters=Parameters(), schedules=Schedules()))


# -- logging in ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/ui/executions", "/ui/executions/some-id", "/ui/documents", "/ui/parameters",
             "/ui/schedules", "/ui/documents/looping"],
)  # fmt: skip
def test_every_page_sends_a_stranger_to_the_login_page(site: Site, path: str) -> None:
    response = site.client.get(path + "?x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/ui/login?next={path.replace('/', '%2F')}%3Fx%3D1"


def test_the_root_leads_to_the_dashboard(site: Site) -> None:
    response = site.client.get("/", follow_redirects=True)
    assert response.url.path == "/ui/login"
    assert 'name="password"' in response.text


def test_a_wrong_password_or_an_unknown_user_is_refused(site: Site) -> None:
    for name, password in (("alice", "battery staple"), ("mallory", "correct horse"), ("", "")):
        form = site.client.get("/ui/login")
        response = site.client.post(
            "/ui/login",
            data={"csrf": csrf_of(form.text), "name": name, "password": password},
            follow_redirects=False,
        )
        assert response.status_code == 401
        assert "Wrong user name or password." in response.text
        assert "runbook_session" not in response.cookies
    assert site.client.get("/ui/executions", follow_redirects=False).status_code == 303


def test_a_good_password_gives_a_strict_httponly_session(site: Site) -> None:
    form = site.client.get("/ui/login?next=/ui/documents")
    response = site.client.post(
        "/ui/login",
        data={"csrf": csrf_of(form.text), "name": "alice", "password": PASSWORDS["alice"],
              "next": "/ui/documents"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303 and response.headers["location"] == "/ui/documents"
    cookie = next(h for h in response.headers.get_list("set-cookie") if "runbook_session=" in h)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    page = site.client.get("/ui/documents")
    assert page.status_code == 200 and "alice" in page.text


def test_login_redirects_only_to_dashboard_pages(site: Site) -> None:
    for target in ("https://evil.example/", "//evil.example/ui/", "/metrics", "/ui\\..\\x"):
        site.client.cookies.clear()
        form = site.client.get("/ui/login")
        response = site.client.post(
            "/ui/login",
            data={"csrf": csrf_of(form.text), "name": "bob", "password": PASSWORDS["bob"],
                  "next": target},
            follow_redirects=False,
        )  # fmt: skip
        assert response.headers["location"] == "/ui/executions"


def test_the_login_form_needs_its_csrf_token(site: Site) -> None:
    site.client.get("/ui/login")
    for token in (None, "forged"):
        data = {"name": "alice", "password": PASSWORDS["alice"]}
        if token:
            data["csrf"] = token
        response = site.client.post("/ui/login", data=data, follow_redirects=False)
        assert response.status_code == 403
        assert "runbook_session" not in response.cookies


def test_logging_out_ends_the_session_in_the_browser(site: Site) -> None:
    token = site.login()
    response = site.client.post("/ui/logout", data={"csrf": token}, follow_redirects=False)
    assert response.status_code == 303
    assert 'runbook_session=""' in response.headers["set-cookie"]
    site.client.cookies.clear()
    assert site.client.get("/ui/executions", follow_redirects=False).status_code == 303


def test_forged_expired_and_outdated_sessions_are_not_accepted() -> None:
    users = {u.name: u for u in USERS}
    keeper = SessionKeeper(SECRET, 60, users.get, clock=lambda: 1000.0)
    cookie = keeper.issue(users["alice"])
    assert keeper.read(cookie) is not None
    payload, mac = cookie.split(".")
    assert keeper.read(payload + "." + mac[:-2] + "xx") is None
    assert SessionKeeper("another-secret-entirely", 60, users.get).read(cookie) is None
    assert SessionKeeper(SECRET, 60, users.get, clock=lambda: 1061.0).read(cookie) is None
    changed = {"alice": replace(users["alice"], password_hash=hash_password("new", cost=CHEAP))}
    assert SessionKeeper(SECRET, 60, changed.get, clock=lambda: 1000.0).read(cookie) is None
    assert SessionKeeper(SECRET, 60, {}.get, clock=lambda: 1000.0).read(cookie) is None


# -- CSRF and approvals ---------------------------------------------------------------------


def test_forms_without_the_right_csrf_token_are_refused(site: Site) -> None:
    execution_id = site.waiting_approval()
    bobs = site.login("bob")
    site.login("alice")
    path = f"/ui/executions/{execution_id}/signal"
    attempts: list[tuple[dict[str, str], dict[str, str]]] = [
        ({"decision": "Approve"}, {}),
        ({"decision": "Approve", "csrf": "not-the-token"}, {}),
        ({"decision": "Approve", "csrf": bobs}, {}),
    ]
    mine = csrf_of(site.client.get(f"/ui/executions/{execution_id}").text)
    attempts.append(({"decision": "Approve", "csrf": mine}, {"Origin": "https://evil.example"}))
    attempts.append(({"decision": "Approve", "csrf": mine}, {"Sec-Fetch-Site": "cross-site"}))
    for data, headers in attempts:
        response = site.client.post(path, data=data, headers=headers, follow_redirects=False)
        assert response.status_code == 403, (data, headers)
        reason = "another site" if headers else "CSRF token is missing or wrong"
        assert reason in response.text
    cancel = site.client.post(f"/ui/executions/{execution_id}/cancel", data={"csrf": "x"})
    assert cancel.status_code == 403
    assert site.call(site.engine.store.get_signals, execution_id) == []
    assert site.call(site.engine.store.get_execution, execution_id).status == Status.WAITING
    site.client.cookies.clear()
    stranger = site.client.post(path, data={"decision": "Approve", "csrf": mine})
    assert stranger.status_code == 403


def test_approving_in_the_dashboard_signals_as_the_logged_in_user(site: Site) -> None:
    execution_id = site.waiting_approval()
    token = site.login("alice")
    page = site.client.get(f"/ui/executions/{execution_id}")
    assert "Waiting for approval: askForApproval" in page.text
    assert f"Write {site.tmp / 'marker.txt'} on this host?" in page.text
    response = site.client.post(
        f"/ui/executions/{execution_id}/signal",
        data={"csrf": token, "decision": "Approve", "step": "askForApproval", "comment": "ok"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    [signal] = site.call(site.engine.store.get_signals, execution_id)
    assert (signal.type, signal.principal) == ("Approve", "arn:aws:iam::000000000000:user/alice")
    assert signal.payload["Comment"] == ["ok"]
    view = site.call(site.engine.wait, execution_id)
    assert view.status == Status.SUCCESS
    page = site.client.get(f"/ui/executions/{execution_id}?notice=approved")
    assert "Approval sent." in page.text and 'id="status">Success' in page.text
    assert "approved by" in page.text  # makeTheChange's log, in full
    assert 'id="step-makeTheChange"' in page.text
    assert "Waiting for approval" not in page.text


def test_someone_who_is_not_an_approver_is_told_why(site: Site) -> None:
    execution_id = site.waiting_approval()
    token = site.login("bob")
    response = site.client.post(
        f"/ui/executions/{execution_id}/signal",
        data={"csrf": token, "decision": "Approve"},
        follow_redirects=False,
    )
    assert response.status_code == 409
    assert "user/bob is not an approver of this step" in response.text
    assert site.call(site.engine.store.get_signals, execution_id) == []


def test_a_user_whose_policy_only_reads_gets_no_buttons(site: Site) -> None:
    execution_id = site.waiting_approval()
    token = site.login("viewer")
    page = site.client.get(f"/ui/executions/{execution_id}")
    assert "Waiting for approval" in page.text
    assert 'value="Approve"' not in page.text and 'id="cancel"' not in page.text
    response = site.client.post(
        f"/ui/executions/{execution_id}/signal", data={"csrf": token, "decision": "Approve"}
    )
    assert response.status_code == 403


def test_a_policy_limits_what_a_user_sees(site: Site) -> None:
    execution_id = site.waiting_approval()
    token = site.login("limited")
    assert execution_id not in site.client.get("/ui/executions").text
    assert site.client.get(f"/ui/executions/{execution_id}").status_code == 403
    assert "approval-gate" not in site.client.get("/ui/documents").text
    assert site.client.get("/ui/documents/approval-gate").status_code == 403
    response = site.client.post(
        f"/ui/executions/{execution_id}/signal", data={"csrf": token, "decision": "Approve"}
    )
    assert response.status_code == 403
    site.login("starter")
    assert site.client.get("/ui/executions").status_code == 403
    assert site.client.get(f"/ui/executions/{execution_id}").status_code == 403


def test_rejecting_and_cancelling(site: Site) -> None:
    rejected, cancelled = site.waiting_approval(), site.waiting_approval()
    token = site.login("alice")
    response = site.client.post(
        f"/ui/executions/{rejected}/signal", data={"csrf": token, "decision": "Reject"}
    )
    assert response.status_code == 200 and "Rejection sent." in response.text
    view = site.call(site.engine.wait, rejected)
    assert view.step("askForApproval").outputs["ApprovalStatus"] == "Rejected"
    assert view.step("recordRejection").status == Status.SUCCESS
    response = site.client.post(f"/ui/executions/{cancelled}/cancel", data={"csrf": token})
    assert "Cancellation requested." in response.text
    assert site.call(site.engine.wait, cancelled).status == Status.CANCELLED
    again = site.client.post(f"/ui/executions/{cancelled}/cancel", data={"csrf": token})
    assert again.status_code == 409 and "already Cancelled" in again.text


# -- what pages show ------------------------------------------------------------------------


def _stored_execution(site: Site, name: str = "looping", status: Status = Status.FAILED) -> str:
    now = datetime.now(UTC)
    record = ExecutionRecord(
        execution_id=f"exec-{name}-{now.timestamp()}",
        document_name=name,
        document_content=LOOPING,
        status=status,
        start_time=now - timedelta(seconds=10),
        end_time=now,
        parameters={"Note": HOSTILE},
        outputs={"check.Result": HOSTILE},
        failure_message=f"Step check failed: {HOSTILE}",
    )
    return str(site.call(site.engine.store.create_execution, record))


def test_hostile_text_in_records_is_escaped(site: Site) -> None:
    execution_id = _stored_execution(site)
    now = datetime.now(UTC)
    step = StepRecord(
        execution_id=execution_id,
        step_execution_id="step-1",
        sequence=1,
        step_name="work",
        action="aws:sleep",
        status=Status.FAILED,
        start_time=now - timedelta(seconds=5),
        end_time=now,
        inputs={"Duration": HOSTILE},
        outputs={"Out": HOSTILE},
        logs=f"line one\n{HOSTILE}\nline three",
        failure_message=HOSTILE,
        failure_type="Verification",
        failure_details={"Why": [HOSTILE]},
        loop=LoopContext("step-0", "repeat", 2),
    )
    site.call(site.engine.store.put_step, step)
    site.login()
    page = site.client.get(f"/ui/executions/{execution_id}")
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert page.text.count("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;") >= 7
    assert "loop repeat, iteration 2" in page.text and "Verification" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_the_executions_list_filters_and_pages(site: Site) -> None:
    for index in range(27):
        _stored_execution(site, "looping" if index % 3 else "other-doc", Status.SUCCESS)
    _stored_execution(site, "other-doc", Status.FAILED)
    site.login()
    first = site.client.get("/ui/executions")
    assert first.text.count('class="id"><a href=') == 25 and 'rel="next"' in first.text
    second = site.client.get("/ui/executions?page=2")
    assert second.text.count('class="id"><a href=') == 3 and 'rel="prev"' in second.text
    failed = site.client.get("/ui/executions?status=Failed")
    assert failed.text.count('class="id"><a href=') == 1
    others = site.client.get("/ui/executions?prefix=other")
    assert others.text.count('class="id"><a href=') == 10
    assert "Success 27" in first.text and "Failed 1" in first.text


def test_the_execution_page_draws_the_step_graph(site: Site) -> None:
    execution_id = _stored_execution(site)
    site.login()
    page = site.client.get(f"/ui/executions/{execution_id}").text
    svg = page[
        page.index('<svg class="graph"') : page.index("</svg>", page.index('<svg class="graph"'))
        + 6
    ]
    for name in ("prepare", "repeat", "work", "check", "END"):
        assert f">{name}</text>" in svg
    assert 'href="#step-prepare"' in svg and "edge-onFailure" in svg and "edge-loop" in svg


def test_graph_layout_sets_loops_and_jumps_back_aside(tmp_path: Path) -> None:
    path = tmp_path / "looping.yaml"
    path.write_text(LOOPING)
    graph = build_graph(load_runbook(path))
    assert back_edges(graph) == {("work", "repeat"), ("check", "prepare")}
    svg = str(graph_svg(graph, {"prepare": "Success", "check": "Failed"}))
    assert 'class="node st-Success"' in svg and 'class="node st-Failed"' in svg
    assert svg.count("<rect") == 5 and END not in svg


def test_documents_list_the_daemons_directories_and_the_bundled_runbooks(site: Site) -> None:
    site.login()
    page = site.client.get("/ui/documents").text
    assert "looping" in page and "approval-gate" in page and "Approval gate" in page
    document = site.client.get("/ui/documents/approval-gate").text
    assert "askForApproval" in document and '<svg class="graph"' in document
    assert site.client.get("/ui/documents/nothing-here").status_code == 404
    assert site.client.get("/ui/documents/..%2F..%2Fetc%2Fpasswd").status_code == 404


@pytest.mark.anyio
async def test_stored_documents_are_read_through_the_store_when_it_has_them() -> None:
    @dataclass
    class Stored:
        name: str
        version: str = "2"

    class StoreWithDocuments:
        async def list_documents(self) -> list[Any]:
            return [Stored("Team-Restart"), {"Name": "Api-Created", "DocumentVersion": "1"}]

    assert await stored_documents(MemoryStore()) == []
    found = await stored_documents(StoreWithDocuments())
    assert [(d.name, d.version, d.source) for d in found] == [
        ("Team-Restart", "2", "stored"),
        ("Api-Created", "1", "stored"),
    ]


def test_secure_string_values_are_never_shown(site: Site) -> None:
    site.login()
    page = site.client.get("/ui/parameters")
    assert "hunter2" not in page.text
    assert "<code>****</code>" in page.text and "db.internal" in page.text
    under = site.client.get("/ui/parameters?path=/other/").text
    assert "/other/zones" in under and "/app/db/host" not in under
    schedules = site.client.get("/ui/schedules").text
    assert "nightly" in schedules and "cron(0 2 * * ? *)" in schedules


def test_pages_say_when_a_back_end_is_not_configured(tmp_path: Path) -> None:
    for site in make_site(tmp_path):
        site.login()
        for path in ("/ui/parameters", "/ui/schedules"):
            page = site.client.get(path)
            assert page.status_code == 200 and "not configured on this daemon" in page.text


# -- configuration and the password command -------------------------------------------------


def test_dashboard_configuration() -> None:
    hashed = USERS[0].password_hash
    config = parse_config(
        {"dashboard": {"users": [{"name": "alice", "password_hash": hashed}],
                       "session_secret": "s" * 16, "session_hours": 2}}
    )  # fmt: skip
    assert config.dashboard_user("alice") == USERS[0] and config.dashboard_user("bob") is None
    assert (config.dashboard_secret, config.dashboard_session_seconds) == ("s" * 16, 7200.0)
    bad = [
        {"users": [{"name": "alice", "password_hash": "plaintext"}]},
        {"users": [{"name": "alice"}]},
        {"users": [{"name": "a", "password_hash": hashed}, {"name": "a", "password_hash": hashed}]},
        {"session_secret": "short"},
        {"session_hours": 0},
        {"password": "x"},
    ]
    for entry in bad:
        with pytest.raises(ConfigError):
            parse_config({"dashboard": entry})


def test_password_hashes() -> None:
    hashed = hash_password("pw", cost=CHEAP)
    assert verify_password("pw", hashed) and not verify_password("pW", hashed)
    assert hash_password("pw", cost=CHEAP) != hashed  # salted
    for broken in ("scrypt$1000$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "md5$x", "",
                   "scrypt$1024$8$1$!!$!!"):  # fmt: skip
        with pytest.raises(PasswordHashError):
            check_hash(broken)


def test_the_dashboard_password_command() -> None:
    result = CliRunner().invoke(cli, ["dashboard-password", "--stdin", "--name", "carol"],
                                input="open sesame\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    hashed = re.search(r'password_hash: "([^"]+)"', result.output)
    assert hashed and verify_password("open sesame", hashed.group(1))
    config = parse_config(
        {"dashboard": {"users": [{"name": "carol", "password_hash": hashed.group(1)}]}}
    )
    assert config.dashboard_user("carol") is not None
    empty = CliRunner().invoke(cli, ["dashboard-password", "--stdin"], input="\n")
    assert empty.exit_code == 2


# -- schedules from the store -----------------------------------------------------------------


@pytest.fixture
def scheduled(tmp_path: Path) -> Iterator[Site]:
    """A site whose schedules page reads the engine's own store (as ``runbook serve``)."""
    engine = Engine(MemoryStore(), documents=[tmp_path / "documents"])
    source = StoreScheduleSource(lambda: engine.store.schedules)
    yield from make_site(tmp_path, Providers(schedules=source), engine)


def make_schedules(site: Site) -> tuple[str, str, str]:
    """A one-time schedule that has fired, and a nightly one with targets; their ids and
    the execution the first one started."""
    engine = site.engine
    once = site.call(
        create_schedule,
        engine,
        document_name="looping",
        expression=None,
        created_by="arn:aws:iam::000000000000:user/alice",
        association_name="run-once",
    )
    started = site.call(ScheduleRunner(engine, lambda: None).tick, datetime.now(UTC))
    assert len(started) == 1
    nightly = site.call(
        create_schedule,
        engine,
        document_name="looping",
        expression="cron(0 2 * * ? *)",
        created_by="arn:aws:iam::000000000000:user/alice",
        association_name="nightly-<b>",
        targets=[{"Key": "tag:Role", "Values": ["web", "db"]}],
    )
    return once.association_id, nightly.association_id, started[0]


def test_the_schedules_page_lists_the_stores_schedules(scheduled: Site) -> None:
    once, nightly, execution_id = make_schedules(scheduled)
    record = scheduled.call(scheduled.engine.store.schedules.get, nightly)
    scheduled.login()
    page = scheduled.client.get("/ui/schedules").text
    rows = re.findall(r'<tr id="schedule-([^"]+)">(.*?)</tr>', page, re.S)
    assert [association_id for association_id, _ in rows] == [nightly, once]  # by name
    nightly_row, once_row = rows[0][1], rows[1][1]
    assert "nightly-&lt;b&gt;" in nightly_row and "<b>" not in nightly_row
    assert "looping" in nightly_row and "<code>cron(0 2 * * ? *)</code>" in nightly_row
    assert "<code>tag:Role=web,db</code>" in nightly_row
    assert record.next_run is not None
    assert record.next_run.strftime("%Y-%m-%d %H:%M:%S UTC") in nightly_row
    # The one-time schedule fired: no next firing, its last execution linked.
    assert "<td>none</td>" in once_row
    assert f'<a href="/ui/executions/{execution_id}">{execution_id}</a>' in once_row
    assert scheduled.client.get(f"/ui/executions/{execution_id}").status_code == 200


def test_deleting_a_schedule_needs_the_csrf_token_and_keeps_its_executions(
    scheduled: Site,
) -> None:
    once, nightly, execution_id = make_schedules(scheduled)
    bobs = scheduled.login("bob")
    token = scheduled.login("alice")
    page = scheduled.client.get("/ui/schedules").text
    assert f'action="/ui/schedules/{nightly}/delete"' in page
    path = f"/ui/schedules/{nightly}/delete"
    for data, headers in [
        ({"confirm": "yes"}, {}),
        ({"csrf": "not-the-token"}, {}),
        ({"csrf": bobs}, {}),
        ({"csrf": token}, {"Origin": "https://evil.example"}),
    ]:
        response = scheduled.client.post(path, data=data, headers=headers)
        assert response.status_code == 403, (data, headers)
    ids = [r.association_id for r in scheduled.call(scheduled.engine.store.schedules.list_all)]
    assert sorted(ids) == sorted([once, nightly])

    response = scheduled.client.post(path, data={"csrf": token}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/schedules?notice=deleted"
    page = scheduled.client.get(response.headers["location"]).text
    assert "Schedule deleted." in page and nightly not in page and once in page
    ids = [r.association_id for r in scheduled.call(scheduled.engine.store.schedules.list_all)]
    assert ids == [once]
    again = scheduled.client.post(path, data={"csrf": token})
    assert again.status_code == 404 and f"There is no schedule {nightly}" in again.text

    scheduled.client.post(f"/ui/schedules/{once}/delete", data={"csrf": token})
    assert scheduled.call(scheduled.engine.store.schedules.list_all) == []
    kept = scheduled.call(scheduled.engine.store.get_execution, execution_id)
    assert kept.document_name == "looping"  # the executions a schedule started stay


def test_who_may_see_and_delete_schedules(scheduled: Site) -> None:
    _, nightly, _ = make_schedules(scheduled)
    token = scheduled.login("viewer")  # Get* and Describe*: reads only
    page = scheduled.client.get("/ui/schedules").text
    assert nightly in page and "/delete" not in page
    refused = scheduled.client.post(f"/ui/schedules/{nightly}/delete", data={"csrf": token})
    assert refused.status_code == 403 and "DeleteAssociation" in refused.text
    token = scheduled.login("limited")  # documents quick-* only
    page = scheduled.client.get("/ui/schedules").text
    assert nightly not in page and "No schedules." in page
    refused = scheduled.client.post(f"/ui/schedules/{nightly}/delete", data={"csrf": token})
    assert refused.status_code == 403
    assert len(scheduled.call(scheduled.engine.store.schedules.list_all)) == 2


def test_a_schedule_source_that_cannot_delete_offers_no_button(site: Site) -> None:
    token = site.login()
    page = site.client.get("/ui/schedules").text
    assert "nightly" in page and "/delete" not in page
    response = site.client.post("/ui/schedules/some-id/delete", data={"csrf": token})
    assert response.status_code == 404
