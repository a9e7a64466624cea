"""The web console in a real headless Chromium (Debian's chromium + chromium-driver, driven
by Selenium) against a Baton subprocess with a webhook sink.

One browser and one gateway serve the whole module (starting Chromium is the slow part);
every wait is bounded. With ``BATON_UI_SCREENSHOTS=DIR`` each page is saved as a PNG there
(docs/screenshots/ holds the ones the README shows). A missing browser fails the tests:
``scripts/install-test-deps.sh`` installs it.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from procs import Baton, WebhookSink, baton_config, http, wait_until, write_yaml
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
OPS = f"ops-{secrets.token_urlsafe(12)}"
PROM = f"prom-{secrets.token_urlsafe(12)}"
WAIT = 10.0  # seconds, for anything the page or the gateway does
HOSTILE = ('<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
           '"><svg onload="window.pwned=3">')
T = TypeVar("T")


def executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


@pytest.fixture(scope="module")
def sink() -> Iterator[WebhookSink]:
    s = WebhookSink().start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def baton(tmp_path_factory: pytest.TempPathFactory, sink: WebhookSink) -> Iterator[Baton]:
    tmp = tmp_path_factory.mktemp("ui")
    db = tmp / "baton.db"
    data: dict[str, Any] = baton_config(db, sink.url, connector={"max_attempts": 1})
    data["api"] = {"tokens": [{"name": "ops", "token": {"env": "OPS_TOKEN"}}]}
    data["people"] = {"alice": {"name": "Alice Example", "email": "alice@example.com"}}
    data["schedules"] = {"primary": {"timezone": "Europe/Berlin", "layers": [
        {"name": "day", "rotation": "weekly", "handoff": "mon 09:00",
         "members": ["alice"]}]}}
    workdir = tmp / "work"
    workdir.mkdir()
    b = Baton(workdir, write_yaml(workdir / "baton.yaml", data), db,
              env={"PROM_TOKEN": PROM, "OPS_TOKEN": OPS})
    b.start()
    try:
        yield b
    finally:
        b.stop(grace=5.0)


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not executable(p)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: run scripts/install-test-deps.sh "
                    "(Debian packages chromium and chromium-driver)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1000,760", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    d.set_page_load_timeout(20)
    d.set_script_timeout(10)
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture(scope="module")
def console(driver: WebDriver, baton: Baton) -> WebDriver:
    """The browser, logged in (the login itself is checked by the first test)."""
    driver.get(baton.url("/ui/incidents"))
    wait(driver, lambda d: "/ui/login" in d.current_url, "the login page")
    shot(driver, "login")
    driver.find_element(By.ID, "token").send_keys(OPS)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    wait(driver, lambda d: d.current_url.endswith("/ui/incidents")
         and texts(d, "h1") == ["Incidents"], "the incidents page")
    return driver


def wait(driver: WebDriver, probe: Callable[[WebDriver], T], what: str,
         timeout: float = WAIT) -> T:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(probe)
    except WebDriverException as e:
        raise AssertionError(f"waited {timeout}s for {what}; at {driver.current_url}") from e


def texts(driver: WebDriver, css: str) -> list[str]:
    """The rendered text of every match, read in one step: live parts of the page are
    swapped in by htmx at any time, so element handles can go stale between two calls."""
    found: list[str] = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText);", css)
    return found


def click(driver: WebDriver, css: str, what: str) -> None:
    """Click the first match as it is now (found and clicked in one step, see ``texts``)."""
    wait(driver, lambda d: d.execute_script(
        "const e = document.querySelector(arguments[0]); if (e) { e.click(); } return !!e;",
        css), what)


def shot(driver: WebDriver, name: str) -> None:
    target = os.environ.get("BATON_UI_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(target) / f"{name}.png"))


def ingest(baton: Baton, key: str, summary: str, **fields: Any) -> str:
    answer = http("POST", baton.url("/v1/ingest/gen"),
                  {"dedup_key": key, "summary": summary, **fields}, token=PROM)
    assert answer.status == 202, answer.body
    return str(answer.body["incidents"][0])


def api(baton: Baton, path: str) -> Any:
    answer = http("GET", baton.url(path), token=OPS)
    assert answer.status == 200, answer.body
    return answer.body


def row_for(driver: WebDriver, incident_id: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, f'tr.incident[data-id="{incident_id}"]')


def test_login_is_required_and_works(console: WebDriver, baton: Baton) -> None:
    assert texts(console, "h1") == ["Incidents"]
    assert texts(console, "header .who") == ["ops"]
    cookie = console.get_cookie("baton_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_new_incident_appears_live_then_acknowledge_reaches_the_sink(
        console: WebDriver, baton: Baton, sink: WebhookSink) -> None:
    console.get(baton.url("/ui/incidents"))
    console.execute_script("window.loadedOnce = 'yes';")  # gone if the page reloads
    inc = ingest(baton, f"live-{time.time_ns()}", "checkout latency above 2s",
                 severity="critical", service="checkout",
                 labels={"service": "checkout", "team": "payments"},
                 links=[{"href": "https://grafana.example/d/checkout", "text": "dashboard"}])
    wait(console, lambda d: row_for(d, inc), "the new incident in the list, without reload")
    assert console.execute_script("return window.loadedOnce") == "yes"
    assert "checkout latency above 2s" in texts(console, f'tr.incident[data-id="{inc}"]')[0]
    wait_until(lambda: any(r.note.get("action") == "trigger" for r in sink.received),
               WAIT, "the trigger at the sink")
    shot(console, "incidents")

    click(console, f'tr.incident[data-id="{inc}"] td.title a', "the incident's link")
    wait(console, lambda d: d.find_elements(By.ID, "ack"), "the incident page")
    link = console.find_element(By.LINK_TEXT, "dashboard")
    assert link.get_attribute("href") == "https://grafana.example/d/checkout"
    click(console, "#ack", "the acknowledge button")
    wait(console, lambda d: texts(d, "#status") == ["acknowledged"], "the acknowledged status")
    entries = texts(console, "#timeline li")
    assert any("acknowledged" in e and "ops" in e for e in entries), entries
    wait_until(lambda: any(r.note.get("action") == "acknowledge" for r in sink.received),
               WAIT, "the acknowledge at the sink")
    assert api(baton, f"/v1/incidents/{inc}")["acknowledged_by"] == "ops"
    console.execute_script("window.loadedOnce = 'yes';")
    # The connector's delivery of the acknowledgement shows on the page by itself.
    wait(console, lambda d: [e for e in texts(d, "#timeline li")
                             if "notified" in e and "acknowledge" in e],
         "the acknowledge delivery on the timeline, without reload")
    assert console.execute_script("return window.loadedOnce") == "yes"
    shot(console, "incident")


def test_create_a_silence_after_its_preview(console: WebDriver, baton: Baton) -> None:
    service = f"billing{secrets.token_hex(3)}"
    ingest(baton, f"bill-{time.time_ns()}", f"{service} invoices failing",
           labels={"service": service})
    console.get(baton.url("/ui/silences"))
    console.find_element(By.ID, "matchers").send_keys(f'service="{service}"')
    console.find_element(By.ID, "preview-button").click()
    preview = wait(console, lambda d: texts(d, ".preview-list li"),
                   "the preview of matched incidents")
    assert f"{service} invoices failing" in preview[0]
    assert "Would match 1 open incident" in texts(console, "#preview")[0]
    shot(console, "silences")
    console.find_element(By.ID, "create-silence").click()
    rows = wait(console, lambda d: [r for r in texts(d, "tr.silence") if service in r],
                "the new silence in the list")
    assert "active" in rows[0] and "ops" in rows[0]


def test_replay_a_dead_letter(console: WebDriver, baton: Baton, sink: WebhookSink) -> None:
    # The script answers whichever delivery comes next: first let earlier ones finish.
    wait_until(lambda: not any(api(baton, f"/v1/deliveries?state={s}")["deliveries"]
                               for s in ("pending", "in_flight")), WAIT, "an idle queue")
    before = len(sink.received)
    sink.script((400, None))  # a permanent failure: dead at once (max_attempts 1 anyway)
    inc = ingest(baton, f"dead-{time.time_ns()}", "queue consumer stuck")
    dead = wait_until(lambda: [d for d in api(baton, "/v1/deliveries?state=dead")["deliveries"]
                               if d["incident_id"] == inc] or None, WAIT, "a dead letter")
    console.get(baton.url("/ui/deliveries"))
    row = f'tr.delivery[data-id="{dead[0]["id"]}"]'
    assert "400" in texts(console, row)[0]
    shot(console, "deliveries")
    click(console, f"{row} button.replay", "the replay button")
    wait(console, lambda d: "1 replayed" in texts(d, "main")[0], "the replay's answer")
    wait_until(lambda: api(baton, f"/v1/incidents/{inc}")["deliveries"][0]["state"]
               == "delivered" or None, WAIT, "the replayed delivery delivered")
    assert len(sink.received) >= before + 2


def test_who_is_on_call(console: WebDriver, baton: Baton) -> None:
    console.get(baton.url("/ui/oncall"))
    assert texts(console, '[data-schedule="primary"] .oncall-now') == ["Alice Example"]
    days = texts(console, '[data-schedule="primary"] table tbody tr')
    assert len(days) == 14 and "Alice Example" in days[0]
    shot(console, "oncall")


def test_reports_chart_and_figures(console: WebDriver, baton: Baton) -> None:
    console.get(baton.url("/ui/reports"))
    assert console.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    figures = texts(console, "table.figures")[0]
    assert "checkout" in figures and "all services" in figures
    shot(console, "reports")


def test_hostile_payloads_render_as_text_and_run_nothing(console: WebDriver,
                                                         baton: Baton) -> None:
    console.get(baton.url("/ui/incidents"))
    inc = ingest(baton, f"evil-{time.time_ns()}", HOSTILE, labels={"x": HOSTILE},
                 links=[{"href": "javascript:window.pwned=4", "text": "click me"},
                        {"href": " jAvAsCrIpT:window.pwned=5", "text": "spaced"}])
    # Arrives through the live update (htmx swap), then on a fresh load, then its page.
    wait(console, lambda d: row_for(d, inc), "the hostile incident, live")
    assert console.execute_script("return window.pwned") is None
    assert HOSTILE in texts(console, f'tr.incident[data-id="{inc}"]')[0]
    console.refresh()
    wait(console, lambda d: row_for(d, inc), "the hostile incident after reload")
    console.get(baton.url(f"/ui/incidents/{inc}"))
    assert texts(console, "h1.incident-title") == [HOSTILE]
    hrefs: list[str] = console.execute_script(
        "return Array.from(document.querySelectorAll('a'), a => a.href);")
    assert not [h for h in hrefs if "javascript" in h.lower()], hrefs
    assert "click me" in texts(console, "ul.links")[0]
    assert not texts(console, "ul.links a")  # none became a link
    assert console.execute_script("return window.pwned") is None
    assert not console.find_elements(By.CSS_SELECTOR, "main img, main svg, main script")


def test_posts_without_the_cookie_or_the_csrf_token_are_refused(console: WebDriver,
                                                                baton: Baton) -> None:
    inc = ingest(baton, f"csrf-{time.time_ns()}", "forged acknowledge target")
    # No cookie at all (a plain client, or a cross-site form: SameSite=Strict).
    assert http("POST", baton.url(f"/ui/incidents/{inc}/acknowledge"), {}).status == 403
    # The browser's own session, but a request without the CSRF token.
    status = console.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/ui/incidents/{inc}/acknowledge', {{method: 'POST',"
        " headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'note=x',"
        " redirect: 'manual'}).then(r => done(r.status), e => done(String(e)));")
    assert status == 403
    assert api(baton, f"/v1/incidents/{inc}")["status"] == "triggered"


def test_readable_on_a_phone_width(console: WebDriver, baton: Baton) -> None:
    """No page scrolls sideways at 390 px (a phone in portrait)."""
    size = console.get_window_size()
    console.set_window_size(390, 844)
    try:
        wide = {}
        for path in ("/ui/incidents", "/ui/silences", "/ui/deliveries", "/ui/oncall",
                     "/ui/reports"):
            console.get(baton.url(path))
            overflow = console.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 1:
                wide[path] = overflow
        console.get(baton.url("/ui/incidents"))
        shot(console, "phone-incidents")
        assert wide == {}
    finally:
        console.set_window_size(size["width"], size["height"])
