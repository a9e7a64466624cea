"""The web console through aiohttp's test client: sessions, CSRF, escaping, filters, and
that its actions are the management API's own operations."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from helpers import ClientFactory, Gateway, Sink, alert, build, config_dict, start_gateway

from baton.clock import FakeClock
from baton.ui import session as sess
from baton.ui.filters import safe_href

OPS = "s3cr3t-ops-token"
ENV = {"OPS_TOKEN": OPS}
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


def with_tokens(tmp_path: Path, url: str) -> dict[str, Any]:
    data = config_dict(tmp_path, url)
    data["api"] = {"tokens": [{"name": "ops", "token": {"env": "OPS_TOKEN"}}]}
    data["policies"]["notify"]["repeat"] = 1  # room for one "escalate now"
    return data


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
             tmp_path: Path) -> Gateway:
    return await start_gateway(aiohttp_client, with_tokens(tmp_path, receiver.url), tmp_path,
                               clock=clock, environ=ENV)


async def api_incident(gw: Gateway, incident_id: str) -> dict[str, Any]:
    gw.headers = {"Authorization": f"Bearer {OPS}"}
    doc: dict[str, Any] = await gw.get(f"/v1/incidents/{incident_id}")
    return doc


def flash_of(resp: Any) -> list[str]:
    morsel = resp.cookies.get(sess.FLASH_COOKIE)
    assert morsel is not None, resp.headers
    return list(json.loads(sess._unb64(morsel.value)))


def csrf_of(html: str) -> str:
    found = (re.search(r'name="_csrf" value="([^"]+)"', html)
             or re.search(r'"X-CSRF-Token": "([^"]+)"', html))
    assert found, html[:2000]
    return found.group(1)


async def login(client: TestClient[Any, Any], token: str = OPS) -> str:
    """Logs in; returns the session's CSRF token (read from the incidents page)."""
    page = await client.get("/ui/login")
    nonce = csrf_of(await page.text())
    resp = await client.post("/ui/login", data={"token": token, "_csrf": nonce,
                                                "next": "/ui/incidents"},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    page = await client.get("/ui/incidents")
    assert page.status == 200
    return csrf_of(await page.text())


async def test_nothing_readable_without_a_session(gw: Gateway) -> None:
    for path in ("/ui/", "/ui/incidents", "/ui/silences", "/ui/deliveries", "/ui/oncall",
                 "/ui/reports", "/ui/incidents/x"):
        resp = await gw.client.get(path, allow_redirects=False)
        assert resp.status == 303, path
        assert resp.headers["Location"].startswith("/ui/login?next="), path
    resp = await gw.client.get("/ui/events", allow_redirects=False)
    assert resp.status == 401
    # The login page and the static files are public; they say nothing about incidents.
    assert (await gw.client.get("/ui/login")).status == 200
    assert (await gw.client.get("/ui/static/htmx-2.0.11.min.js")).status == 200


async def test_login_sets_a_strict_httponly_cookie_and_a_wrong_token_is_refused(
        gw: Gateway) -> None:
    page = await gw.client.get("/ui/login")
    nonce = csrf_of(await page.text())
    bad = await gw.client.post("/ui/login", data={"token": "nope", "_csrf": nonce},
                               allow_redirects=False)
    assert bad.status == 303 and "error=1" in bad.headers["Location"]
    assert sess.COOKIE not in bad.cookies
    no_nonce = await gw.client.post("/ui/login", data={"token": OPS}, allow_redirects=False)
    assert no_nonce.status == 403
    good = await gw.client.post("/ui/login", data={"token": OPS, "_csrf": nonce},
                                allow_redirects=False)
    assert good.status == 303
    header = next(v for v in good.headers.getall("Set-Cookie") if v.startswith(sess.COOKIE))
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/ui" in header
    assert "Max-Age=43200" in header and "Secure" not in header  # plain HTTP here
    assert OPS not in header  # the token itself never goes into the cookie
    assert (await gw.client.get("/ui/incidents")).status == 200
    # Behind a proxy that terminates TLS, the cookie is Secure all the same.
    nonce = csrf_of(await (await gw.client.get("/ui/login")).text())
    proxied = await gw.client.post("/ui/login", data={"token": OPS, "_csrf": nonce},
                                   headers={"X-Forwarded-Proto": "https"},
                                   allow_redirects=False)
    header = next(v for v in proxied.headers.getall("Set-Cookie")
                  if v.startswith(sess.COOKIE))
    assert "Secure" in header


async def test_login_never_redirects_off_the_console(gw: Gateway) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/v1/incidents"):
        nonce = csrf_of(await (await gw.client.get("/ui/login")).text())
        resp = await gw.client.post("/ui/login", data={"token": OPS, "_csrf": nonce,
                                                       "next": target},
                                    allow_redirects=False)
        assert resp.headers["Location"] == "/ui/", target


async def test_state_changes_need_the_cookie_and_the_csrf_token(gw: Gateway) -> None:
    inc = (await gw.ingest(alert("k")))["incidents"][0]
    csrf = await login(gw.client)
    path = f"/ui/incidents/{inc}/acknowledge"
    assert (await gw.client.post(path, data={}, allow_redirects=False)).status == 403
    assert (await gw.client.post(path, data={"_csrf": "x" + csrf},
                                 allow_redirects=False)).status == 403
    # A valid CSRF token without the cookie (another browser, a forged cross-site form).
    gw.client.session.cookie_jar.clear()
    assert (await gw.client.post(path, data={"_csrf": csrf},
                                 allow_redirects=False)).status == 403
    assert (await api_incident(gw, inc))["status"] == "triggered"


async def test_actions_are_the_apis_and_the_token_name_is_the_actor(gw: Gateway) -> None:
    inc = (await gw.ingest(alert("k")))["incidents"][0]
    csrf = await login(gw.client)
    for action, fields in (("acknowledge", {}), ("notes", {"text": "looking"}),
                           ("unacknowledge", {}), ("escalate", {"reason": "db down"}),
                           ("resolve", {"note": "fixed"})):
        resp = await gw.client.post(f"/ui/incidents/{inc}/{action}",
                                    data={"_csrf": csrf, **fields}, allow_redirects=False)
        assert resp.status == 303, (action, await resp.text())
        assert flash_of(resp) == ["", action], (action, flash_of(resp))
    # htmx sends the token as a header instead of a form field.
    resp = await gw.client.post(f"/ui/incidents/{inc}/notes", data={"text": "by header"},
                                headers={sess.CSRF_HEADER: csrf}, allow_redirects=False)
    assert resp.status == 303
    doc = await api_incident(gw, inc)
    assert doc["status"] == "resolved" and doc["resolved_by"] == "ops"
    by_ops = [e["type"] for e in doc["timeline"] if e["actor"] == "ops"]
    assert by_ops == ["acknowledged", "note", "unacknowledged", "escalated", "resolved",
                      "note"], doc["timeline"]
    # A refused transition is said on the page, not a crash.
    resp = await gw.client.post(f"/ui/incidents/{inc}/acknowledge", data={"_csrf": csrf},
                                allow_redirects=False)
    assert resp.status == 303 and "is resolved" in flash_of(resp)[0], flash_of(resp)
    # The outcome is shown once, from the cookie; the URL cannot make the page say things.
    html = await (await gw.client.get(f"/ui/incidents/{inc}?error=call+555")).text()
    assert "is resolved" in html and "call 555" not in html
    html = await (await gw.client.get(f"/ui/incidents/{inc}")).text()
    assert "is resolved<" not in html


async def test_payload_values_are_escaped_and_unsafe_links_are_text(gw: Gateway) -> None:
    inc = (await gw.ingest(alert("h", HOSTILE, labels={"team": HOSTILE}, links=[
        {"href": "javascript:window.pwned=3", "text": "click"},
        {"href": " JaVaScRiPt:alert(1)", "text": "spaced"},
        {"href": "https://runbooks.example/db?a=1&b=2", "text": "runbook"}])))["incidents"][0]
    await login(gw.client)
    for path in ("/ui/incidents", f"/ui/incidents/{inc}", "/ui/incidents?q=script"):
        html = await (await gw.client.get(path)).text()
        assert "<script>window" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html, path
    html = await (await gw.client.get(f"/ui/incidents/{inc}")).text()
    assert 'href="javascript' not in html.lower() and 'href=" javascript' not in html.lower()
    assert 'href="https://runbooks.example/db?a=1&amp;b=2"' in html
    resp = await gw.client.get(f"/ui/incidents/{inc}")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


def test_only_http_and_https_become_links() -> None:
    assert safe_href("https://x.example/a") == "https://x.example/a"
    assert safe_href("HTTP://x.example") == "HTTP://x.example"
    for bad in ("javascript:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
                "data:text/html,<script>", "vbscript:x", "//x.example", "/relative",
                "https:/no-host", "http://x\n.example", None, 42):
        assert safe_href(bad) is None, bad


async def test_filters_and_search(gw: Gateway) -> None:
    await gw.ingest(alert("a", "disk full on db1", severity="critical",
                          labels={"service": "db"}, service="db"))
    await gw.ingest(alert("b", "latency high", severity="warning", labels={"team": "web"}))
    await login(gw.client)

    async def titles(query: str) -> list[str]:
        html = await (await gw.client.get(f"/ui/incidents?{query}")).text()
        return re.findall(r'<td class="title"><a href="[^"]+">([^<]*)</a>', html)

    assert sorted(await titles("")) == ["disk full on db1", "latency high"]
    assert await titles("severity=critical") == ["disk full on db1"]
    assert await titles("service=db") == ["disk full on db1"]
    assert await titles("q=LATENCY") == ["latency high"]
    assert await titles("q=team%3Dweb") == ["latency high"]
    assert sorted(await titles("source=app")) == ["disk full on db1", "latency high"]
    assert await titles("source=other") == []
    assert await titles("status=resolved") == []
    html = await (await gw.client.get("/ui/incidents")).text()
    assert 'data-count="triggered">2<' in html


async def test_without_tokens_the_console_is_open_but_csrf_still_holds(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    gw = await start_gateway(aiohttp_client, config_dict(tmp_path, receiver.url), tmp_path,
                             clock=clock)
    inc = (await gw.ingest(alert("k")))["incidents"][0]
    page = await gw.client.get("/ui/incidents")
    assert page.status == 200
    csrf = csrf_of(await page.text())
    path = f"/ui/incidents/{inc}/acknowledge"
    assert (await gw.client.post(path, data={}, allow_redirects=False)).status == 403
    resp = await gw.client.post(path, data={"_csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    doc = await gw.get(f"/v1/incidents/{inc}")
    assert doc["acknowledged_by"] == "console"


async def test_events_stream_says_when_incidents_change(gw: Gateway) -> None:
    await login(gw.client)
    resp = await gw.client.get("/ui/events")
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
    assert await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5) == b"retry: 2000\n\n"
    await gw.ingest(alert("live"))
    chunk = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
    assert chunk == b"event: incidents\ndata: changed\n\n"
    resp.close()


def test_a_session_ends_with_its_expiry_a_tampered_cookie_or_its_tokens_change(
        tmp_path: Path) -> None:
    config = build(with_tokens(tmp_path, "http://127.0.0.1:9/x"), tmp_path, ENV)
    tokens = config.api_tokens
    secret = sess.new_secret()
    session = sess.Session("ops", 1000.0, "c" * 32)
    cookie = sess.encode(secret, tokens, session)
    assert sess.decode(secret, tokens, cookie, 999.0) == session
    assert sess.decode(secret, tokens, cookie, 1000.0) is None  # expired
    assert sess.decode(sess.new_secret(), tokens, cookie, 999.0) is None  # a restart
    body, _, sig = cookie.partition(".")
    forged = sess._b64(b'["admin", 1000.0, "cccc"]')
    assert sess.decode(secret, tokens, f"{forged}.{sig}", 999.0) is None
    assert sess.decode(secret, tokens, f"{body}.{sig[:-2]}AA", 999.0) is None
    assert sess.decode(secret, tokens, "garbage", 999.0) is None
    assert sess.decode(secret, (), cookie, 999.0) is None  # the token was removed
    rotated = build(with_tokens(tmp_path, "http://127.0.0.1:9/x"), tmp_path,
                    {"OPS_TOKEN": "a-new-value"}).api_tokens
    assert sess.decode(secret, rotated, cookie, 999.0) is None  # its value changed


def test_templates_and_static_files_ship_in_the_package() -> None:
    """pyproject's package-data globs cover every file the console reads at run time, so
    a regular (non-editable) install has them."""
    import tomllib
    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))[
        "tool"]["setuptools"]["package-data"]["baton.ui"]
    ui = root / "src" / "baton" / "ui"
    files = {p.relative_to(ui) for d in ("templates", "static") for p in (ui / d).iterdir()}
    covered = {p.relative_to(ui) for g in globs for p in ui.glob(g)}
    assert files and files <= covered


async def test_every_page_renders_and_reports_carry_the_figures(gw: Gateway,
                                                                clock: FakeClock) -> None:
    inc = (await gw.ingest(alert("r", service="<b>svc</b>")))["incidents"][0]
    csrf = await login(gw.client)
    clock.advance(90)
    await gw.client.post(f"/ui/incidents/{inc}/acknowledge", data={"_csrf": csrf})
    for path in ("/ui/silences", "/ui/deliveries", "/ui/oncall", "/ui/reports?since=7d",
                 "/ui/reports?since=bogus"):
        resp = await gw.client.get(path)
        assert resp.status == 200, path
    html = await (await gw.client.get("/ui/reports")).text()
    assert "&lt;b&gt;svc&lt;/b&gt;" in html and "<b>svc" not in html
    assert html.count("MTTA 1m30s") >= 2, html  # the chart, the trend table
    assert '<svg class="chart"' in html and '<svg class="chart trend"' in html


async def test_silence_preview_lists_matching_open_incidents(gw: Gateway) -> None:
    await gw.ingest(alert("p1", "db one down", labels={"service": "db"}))
    await gw.ingest(alert("p2", "web slow", labels={"service": "web"}))
    csrf = await login(gw.client)
    resp = await gw.client.post("/ui/silences/preview", data={
        "matchers": 'service="db"\n', "duration": "1h"}, headers={sess.CSRF_HEADER: csrf})
    html = await resp.text()
    assert "Would match <b>1</b> open incident now" in html and "db one down" in html
    assert "web slow" not in html
    resp = await gw.client.post("/ui/silences/preview", data={
        "matchers": 'service=~".*"', "duration": "1h"}, headers={sess.CSRF_HEADER: csrf})
    assert "Not a valid silence" in await resp.text()  # it would mute every alert
    assert (await gw.client.post("/ui/silences/preview", data={"matchers": "a=b"})
            ).status == 403


async def test_the_bare_path_leads_to_the_console(gw: Gateway) -> None:
    resp = await gw.client.get("/ui", allow_redirects=False)
    assert resp.status == 308 and resp.headers["Location"] == "/ui/"
    assert (await gw.client.get("/ui/login-other", allow_redirects=False)).status == 303


async def test_one_watcher_polls_for_every_open_console(gw: Gateway) -> None:
    store = gw.store
    calls = 0
    real = store.incident_stats

    async def counted() -> tuple[dict[str, int], str]:
        nonlocal calls
        calls += 1
        return await real()

    store.incident_stats = counted  # type: ignore[method-assign]
    await login(gw.client)
    streams = [await gw.client.get("/ui/events") for _ in range(5)]
    for s in streams:
        await asyncio.wait_for(s.content.readuntil(b"\n\n"), 5)
    await asyncio.sleep(2.5)
    assert calls <= 4, calls  # one poller at 1/s, not one per console
    await gw.ingest(alert("seen-by-all"))
    for s in streams:
        assert await asyncio.wait_for(s.content.readuntil(b"\n\n"), 5) == (
            b"event: incidents\ndata: changed\n\n")
        s.close()


async def test_live_parts_of_the_incident_page(gw: Gateway) -> None:
    inc = (await gw.ingest(alert("parts", HOSTILE)))["incidents"][0]
    await login(gw.client)
    events = await (await gw.client.get(f"/ui/incidents/{inc}/live?part=events")).text()
    assert 'id="timeline"' in events and "received" in events and "<script>" not in events
    meta = await (await gw.client.get(f"/ui/incidents/{inc}/live?part=meta")).text()
    assert 'id="status">triggered<' in meta
    assert (await gw.client.get(f"/ui/incidents/{inc}/live?part=x")).status == 404
    gw.client.session.cookie_jar.clear()
    resp = await gw.client.get(f"/ui/incidents/{inc}/live?part=events",
                               headers={"HX-Request": "true"}, allow_redirects=False)
    assert resp.status == 401


async def test_a_reload_that_removes_the_token_ends_its_console_sessions(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from baton.api import state
    from baton.app import create_app
    from baton.config import load_config

    monkeypatch.setenv("OPS_TOKEN", OPS)
    monkeypatch.setenv("CI_TOKEN", "s3cr3t-ci-token")
    data = with_tokens(tmp_path, receiver.url)
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    app = create_app(load_config(path), clock=clock, run_dispatcher=False)
    client = await aiohttp_client(app)
    await login(client)
    data["api"] = {"tokens": [{"name": "ci", "token": {"env": "CI_TOKEN"}}]}
    path.write_text(yaml.safe_dump(data), "utf-8")
    await app[state.RELOADER].reload()
    resp = await client.get("/ui/incidents", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/ui/login")
    await login(client, "s3cr3t-ci-token")  # the new token logs in at once
