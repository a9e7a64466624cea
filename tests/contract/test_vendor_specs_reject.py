"""The vendor-spec checks (``specs/<type>.py``) must be able to fail.

``test_vendor_specs.py`` only shows that every captured request passes; a check that
validates nothing (a path that matches no operation and so checks no body, a limit
counted the wrong way) would pass there too. Here each connector's real trigger request is
captured from its fake, shown to pass its check, and then spoiled in one way at a time
that the vendor refuses or shows wrongly: each spoiled request must be reported.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import importlib
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from fakes import FakeState, FakeVendor, Seen, sample_notification, start

from baton import plugin

NAMES = sorted(plugin.discover(plugin.CONNECTOR_GROUP))
Spoil = Callable[[Seen], Seen]


def body(edit: Callable[[Any], None]) -> Spoil:
    """A JSON body changed in place by ``edit``."""
    def spoil(seen: Seen) -> Seen:
        doc = json.loads(seen.body)
        edit(doc)
        return dataclasses.replace(seen, body=json.dumps(doc, ensure_ascii=False).encode())
    return spoil


def form(**fields: str) -> Spoil:
    """A form body with ``fields`` set."""
    def spoil(seen: Seen) -> Seen:
        pairs = dict(urllib.parse.parse_qsl(seen.body.decode(), keep_blank_values=True))
        return dataclasses.replace(seen, body=urllib.parse.urlencode({**pairs, **fields})
                                   .encode())
    return spoil


def path(new: str) -> Spoil:
    return lambda seen: dataclasses.replace(seen, path=new)


def without_header(name: str) -> Spoil:
    return lambda seen: dataclasses.replace(seen, headers={
        k: v for k, v in seen.headers.items() if k.lower() != name.lower()})


def mail(edit: Callable[[email.message.EmailMessage], None]) -> Spoil:
    def spoil(seen: Seen) -> Seen:
        msg = email.message_from_bytes(seen.body, policy=email.policy.SMTP)
        edit(msg)  # type: ignore[arg-type]
        return dataclasses.replace(seen, body=msg.as_bytes())
    return spoil


def setitem(*keys: str | int, value: Any) -> Callable[[Any], None]:
    def edit(doc: Any) -> None:
        for key in keys[:-1]:
            doc = doc[key]
        doc[keys[-1]] = value
    return edit


def delitem(*keys: str | int) -> Callable[[Any], None]:
    def edit(doc: Any) -> None:
        for key in keys[:-1]:
            doc = doc[key]
        del doc[keys[-1]]
    return edit


def _replace_header(name: str, value: str) -> Callable[[email.message.EmailMessage], None]:
    def edit(msg: email.message.EmailMessage) -> None:
        del msg[name]
        msg[name] = value
    return edit


# Astral-plane emoji: 128 of them are 128 characters but 256 UTF-16 units.
EMOJI_256_UNITS = "🚨" * 128

SPOILED: dict[str, dict[str, Spoil]] = {
    "email": {
        "no Date": mail(lambda m: m.__delitem__("Date")),
        "two Subjects": lambda s: dataclasses.replace(
            s, body=b"Subject: again\r\n" + s.body),
        "a line over 998 octets": lambda s: dataclasses.replace(
            s, body=s.body.replace(b"\r\n\r\n", b"\r\n\r\n" + b"x" * 1000 + b"\r\n", 1)),
        "a bad Message-ID": mail(_replace_header("Message-ID", "no-angle-brackets")),
    },
    "jira": {
        "summary over 255 UTF-16 units": body(setitem("fields", "summary",
                                                      value=EMOJI_256_UNITS)),
        "a label with a space": body(setitem("fields", "labels", value=["two words"])),
        "a description that is no ADF": body(setitem("fields", "description",
                                                     value={"type": "doc", "content": [
                                                         {"type": "bogus"}]})),
        "a description over 32,767 units as ADF": body(setitem(
            "fields", "description", value={"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [{"type": "text",
                                                   "text": "🚨" * 16400}]}]})),
        "an unknown path": path("/rest/api/3/issues"),
        "no basic auth": without_header("Authorization"),
    },
    "opsgenie": {
        "message over 130": body(setitem("message", value="x" * 131)),
        "entity over 512": body(setitem("entity", value="x" * 513)),
        "21 tags": body(setitem("tags", value=[f"t{i}" for i in range(21)])),
        "details over 8000": body(setitem("details", value={"k": "x" * 8000})),
        "priority not P1-P5": body(setitem("priority", value="P9")),
        "an unknown path": path("/v2/alert"),
        "no GenieKey": without_header("Authorization"),
    },
    "pagerduty": {
        "summary over 1024": body(setitem("payload", "summary", value="x" * 1025)),
        "an unknown severity": body(setitem("payload", "severity", value="fatal")),
        "no source": body(delitem("payload", "source")),
        "a routing key of 31": body(setitem("routing_key", value="x" * 31)),
        "an unknown path": path("/v2/enqueue/x"),
    },
    "redmine": {
        "subject over 255": body(setitem("issue", "subject", value="x" * 256)),
        "an unknown attribute": body(setitem("issue", "bogus", value=1)),
        "no project": body(delitem("issue", "project_id")),
        "an unknown path": path("/issue.json"),
    },
    "servicenow": {
        "short_description over 160": body(setitem("short_description", value="x" * 161)),
        "short_description on two lines": body(setitem("short_description", value="a\nb")),
        "an unknown state": body(setitem("state", value="99")),
        "another table": path("/api/now/table/problem"),
        "no Authorization": without_header("Authorization"),
    },
    "slack": {
        "header over 150": body(setitem("blocks", 0, "text", "text", value="x" * 151)),
        "a header in mrkdwn": body(setitem("blocks", 0, "text", "type", value="mrkdwn")),
        "an unknown argument": body(setitem("bogus", value=1)),
        "no channel": body(delitem("channel")),
        "51 blocks": body(lambda d: d.__setitem__("blocks", d["blocks"][1:2] * 51)),
        "an unknown method": path("/api/chat.postMessages"),
    },
    "sms": {
        "Body over 1600 UTF-16 units": form(Body="🚨" * 801),
        "a To that is no phone number": form(To="not-a-number"),
        "an unknown field": form(Bogus="1"),
        "an unknown path": path("/2010-04-01/Accounts/AC5ef8732a3c49700934481addd5ce1659/"
                                "Message.json"),
    },
    "teams": {
        "an unknown element": body(setitem("attachments", 0, "content", "body", 0, "type",
                                           value="TextBlok")),
        "a card version Teams lacks": body(setitem("attachments", 0, "content", "version",
                                                   value="9.9")),
        "no attachments": body(setitem("attachments", value=[])),
        "a wrong content type": body(setitem("attachments", 0, "contentType",
                                             value="application/json")),
        "over 28 KB": body(setitem("attachments", 0, "content", "body", 0, "text",
                                   value="x" * 30000)),
    },
    "webhook": {
        "no incident id": body(delitem("id")),
        "an unknown status": body(setitem("status", value="exploded")),
        "a signature that is no v1 HMAC": lambda s: dataclasses.replace(s, headers={
            **s.headers, "webhook-signature": "v1,bm90IGEgbWFj"}),
        "a signature without its id": without_header("webhook-id"),
    },
    "zendesk": {
        "an unknown priority": body(setitem("ticket", "priority", value="asap")),
        "a new ticket without a comment": body(delitem("ticket", "comment")),
        "tags that are not strings": body(setitem("ticket", "tags", value=[1])),
        "an unknown path": path("/api/v2/ticket.json"),
        "no basic auth": without_header("Authorization"),
    },
}


async def _trigger_request(name: str, aiohttp_server: Any) -> Seen:
    """The request that writes: the last one a trigger sends."""
    fake: FakeVendor = importlib.import_module(f"fakes.{name.replace('-', '_')}")
    state = FakeState()
    base_url, stop = await start(fake, state, aiohttp_server)
    try:
        cls = plugin.load(plugin.CONNECTOR_GROUP, name)
        async with aiohttp.ClientSession() as http:
            outcome = await cls(f"neg-{name}", fake.config(base_url)).send(
                sample_notification(f"neg-{name}", "trigger"), http)
        assert outcome.kind == "ok", outcome
    finally:
        state.release.set()
        if stop is not None:
            await stop()
    return state.requests[-1]


def test_every_connector_has_spoiled_requests() -> None:
    assert sorted(SPOILED) == NAMES


@pytest.mark.parametrize(("name", "how"), [(n, h) for n in sorted(SPOILED)
                                           for h in SPOILED[n]])
async def test_the_spec_check_reports_a_spoiled_request(name: str, how: str,
                                                        aiohttp_server: Any) -> None:
    spec = importlib.import_module(f"specs.{name.replace('-', '_')}")
    seen = await _trigger_request(name, aiohttp_server)
    assert spec.check(seen) == [], "the unspoiled request must pass, or this proves nothing"
    assert spec.check(SPOILED[name][how](seen)), f"{name}: {how} was accepted"
