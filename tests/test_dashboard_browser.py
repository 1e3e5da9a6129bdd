"""The dashboard in a real headless Chromium, against a real ``runbook serve`` process.

Debian's ``chromium`` and ``chromium-driver`` (tests/run.sh installs them); selenium is
handed the driver's path, so selenium-manager never looks for (or downloads) anything.
A browser that cannot start fails the test with the reason: it is never skipped.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from runbook_engine.daemon.dashboard.passwords import hash_password
from tests.services.daemon import Daemons, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1600",
)
PASSWORD = "correct horse battery"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            pytest.fail(f"{path} is missing: install Debian's chromium and chromium-driver")
    profile = tempfile.mkdtemp(prefix="runbook-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (*ARGUMENTS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        shutil.rmtree(profile, ignore_errors=True)
        pytest.fail(f"headless Chromium did not start: {exc.msg or exc}", pytrace=False)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def text_of(driver: WebDriver, selector: str, timeout: float = 20) -> str:
    """The text of an element, once the page (after a form post and its redirect) has it."""
    found = WebDriverWait(driver, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector))
    )
    return str(found.text)


def reload_until(
    driver: WebDriver, check: Callable[[], bool], what: str, timeout: float = 20
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; the page says:\n{text_of(driver, 'main')}")
        time.sleep(0.3)
        driver.refresh()


def log_in(driver: WebDriver, password: str) -> None:
    driver.find_element(By.ID, "name").send_keys("alice")
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()


def test_approving_a_waiting_execution_in_chromium(
    daemons: Daemons, browser: WebDriver, tmp_path: Path
) -> None:
    daemon = daemons.start(
        state=f"sqlite:///{tmp_path / 'state.db'}",
        dashboard={"users": [{"name": "alice", "password_hash": hash_password(PASSWORD)}]},
    )
    client: Any = daemon.client()
    marker = tmp_path / "approved.txt"
    execution_id = client.start_automation_execution(
        DocumentName="approval-gate", Parameters={"Approver": ["alice"], "Marker": [str(marker)]}
    )["AutomationExecutionId"]

    def status() -> str:
        found = client.get_automation_execution(AutomationExecutionId=execution_id)
        return str(found["AutomationExecution"]["AutomationExecutionStatus"])

    wait_for(lambda: status() == "Waiting", what="the execution to wait for approval")

    browser.get(daemon.url + "/")
    assert "/ui/login" in browser.current_url
    log_in(browser, "not the password")
    assert "Wrong user name or password." in text_of(browser, ".error")
    log_in(browser, PASSWORD)
    # The form's POST checks the password hash (scrypt): on a busy machine the click may
    # return before the browser has followed the redirect.
    wait_for(lambda: browser.current_url.endswith("/ui/executions"), what="the login")
    row = browser.find_element(By.LINK_TEXT, execution_id).find_element(By.XPATH, "./../..")
    assert "approval-gate" in row.text and "Waiting" in row.text

    browser.find_element(By.LINK_TEXT, execution_id).click()
    assert text_of(browser, "#status") == "Waiting"
    approval = text_of(browser, "#approval-askForApproval")
    assert f"Write {marker} on this host?" in approval and "alice" in approval
    browser.find_element(By.NAME, "comment").send_keys("looks fine")
    browser.find_element(By.ID, "approve-askForApproval").click()
    assert "Approval sent." in text_of(browser, ".notice")
    reload_until(browser, lambda: text_of(browser, "#status") == "Success", "Success")

    steps = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")][1:4]
        for row in browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")
    ]
    assert steps == [
        ["askForApproval", "aws:approve", "Success"],
        ["makeTheChange", "aws:runShellScript", "Success"],
    ]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline svg.bar rect")) == 2
    nodes = browser.find_elements(By.CSS_SELECTOR, "svg.graph g.node")
    assert len(nodes) == 4  # three steps and END
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.graph g.node.st-Success")) == 2

    details = browser.find_elements(By.CSS_SELECTOR, "details.step")
    change = details[1]
    change.find_element(By.TAG_NAME, "summary").click()
    logs = change.find_element(By.CSS_SELECTOR, "pre.logs").text
    assert "approved by" in logs and "alice" in logs and "looks fine" in logs
    assert "approved by" in marker.read_text()

    screenshot = tmp_path / "execution.png"
    assert browser.save_screenshot(str(screenshot))
    data = screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000

    decisions = client.get_automation_execution(AutomationExecutionId=execution_id)[
        "AutomationExecution"
    ]["Outputs"]
    assert decisions["askForApproval.ApprovalStatus"] == ["Approved"]


ECHO = """\
schemaVersion: '0.3'
parameters:
  Word: {type: String, default: hi}
mainSteps:
  - name: say
    action: aws:runShellScript
    inputs: {Commands: ['echo {{ Word }}']}
"""


def test_schedules_are_listed_and_deleted_in_chromium(
    daemons: Daemons, browser: WebDriver, tmp_path: Path
) -> None:
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "echo.yaml").write_text(ECHO)
    daemon = daemons.start(
        state=f"sqlite:///{tmp_path / 'state.db'}",
        documents=[str(documents)],
        schedule_poll_seconds=0.2,
        dashboard={"users": [{"name": "alice", "password_hash": hash_password(PASSWORD)}]},
    )
    client: Any = daemon.client()
    once = client.create_association(Name="echo", AssociationName="say-once")[
        "AssociationDescription"
    ]["AssociationId"]
    nightly = client.create_association(
        Name="echo",
        AssociationName="say-nightly",
        ScheduleExpression="cron(0 2 * * ? *)",
        Targets=[{"Key": "tag:Role", "Values": ["web"]}],
    )["AssociationDescription"]["AssociationId"]

    def fired() -> str | None:
        shown = client.describe_association(AssociationId=once)["AssociationDescription"]
        return shown.get("LastExecutionDate") and shown["Overview"]["Status"]

    wait_for(lambda: fired() == "Success", what="the one-time association to run")

    browser.get(daemon.url + "/ui/schedules")
    log_in(browser, PASSWORD)
    wait_for(lambda: browser.current_url.endswith("/ui/schedules"), what="the login")
    rows = browser.find_elements(By.CSS_SELECTOR, "#schedules tbody tr")
    assert [row.get_attribute("id") for row in rows] == [f"schedule-{nightly}", f"schedule-{once}"]
    cells = [cell.text for cell in rows[0].find_elements(By.TAG_NAME, "td")]
    assert cells[0].startswith("say-nightly") and cells[1:4] == [
        "echo",
        "cron(0 2 * * ? *)",
        "tag:Role=web",
    ]
    assert cells[4].endswith(" 02:00:00 UTC")  # and it ran once at creation, as SSM does
    cells = [cell.text for cell in rows[1].find_elements(By.TAG_NAME, "td")]
    assert cells[4] == "none" and cells[5].endswith(" UTC")

    rows[1].find_element(By.CSS_SELECTOR, "td a").click()  # the last execution
    assert "/ui/executions/" in browser.current_url
    assert text_of(browser, "#status") == "Success"
    browser.back()

    browser.find_element(By.CSS_SELECTOR, f"#schedule-{nightly} form.delete button").click()
    assert "Schedule deleted." in text_of(browser, ".notice")
    remaining = browser.find_elements(By.CSS_SELECTOR, "#schedules tbody tr")
    assert [row.get_attribute("id") for row in remaining] == [f"schedule-{once}"]
    listed = client.list_associations()["Associations"]
    assert [a["AssociationId"] for a in listed] == [once]
