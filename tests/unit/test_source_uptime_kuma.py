"""Uptime Kuma adapter: statuses, UTC times, tags, addresses and message-only bodies."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from baton.errors import PayloadError
from baton.model import iso
from baton.sources.uptime_kuma import UptimeKumaSource

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "uptime-kuma"


def _down() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / "http-down.json").read_text("utf-8"))["payload"]
    return body


def _parse(body: Any, config: dict[str, Any] | None = None) -> list[Any]:
    return UptimeKumaSource("kuma", config or {}).parse(body, {})


@pytest.mark.parametrize(("status", "expected"), [(0, ["firing"]), (1, ["resolved"]),
                                                  (2, []), (3, [])])
def test_statuses(status: int, expected: list[str]) -> None:
    body = _down()
    body["heartbeat"]["status"] = status
    assert [a.status for a in _parse(body)] == expected


def test_time_is_utc_whatever_the_servers_zone() -> None:
    body = _down()
    body["heartbeat"].update(time="2024-09-24 23:51:35", timezone="Asia/Tokyo",
                             timezoneOffset="+09:00", localDateTime="2024-09-25 08:51:35")
    assert iso(_parse(body)[0].started_at) == "2024-09-24T23:51:35.000Z"
    body["heartbeat"]["time"] = "2024-09-24T23:51:35.527Z"
    assert iso(_parse(body)[0].started_at) == "2024-09-24T23:51:35.527Z"


def test_up_without_last_down_time_has_only_an_end() -> None:
    body = _down()
    body["heartbeat"].update(status=1, time="2024-09-25 00:06:35.911")
    [alert] = _parse(body)
    assert alert.started_at is None and iso(alert.ended_at) == "2024-09-25T00:06:35.911Z"


@pytest.mark.parametrize(("tag", "severity"), [
    ("critical", "critical"), ("P1", "critical"), ("high", "error"), ("warning", "warning"),
    ("low", "info"), ("", "error"), ("urgent", "error"),
])
def test_severity_tag(tag: str, severity: str) -> None:
    body = _down()
    body["monitor"]["tags"] = [{"name": "severity", "value": tag}]
    [alert] = _parse(body)
    assert alert.severity == severity
    assert alert.labels["severity"] == (tag or "true")


def test_default_severity_and_label() -> None:
    assert _parse(_down(), {"default_severity": "critical"})[0].severity == "critical"
    assert UptimeKumaSource.severity_label == "severity"


def test_tags_become_labels_without_overriding_the_monitors_own() -> None:
    body = _down()
    body["monitor"]["tags"] = [{"name": "team", "value": "web"}, {"name": "team", "value": "ops"},
                               {"name": "monitor_id", "value": "x"}, {"name": "", "value": "v"},
                               {"name": "beta", "value": None}]
    labels = _parse(body)[0].labels
    assert labels["team"] == "web,ops" and labels["beta"] == "true"
    assert labels["monitor_id"] == "29"


@pytest.mark.parametrize(("monitor", "address"), [
    ({"type": "http", "url": "https://shop.example.com/health"}, "https://shop.example.com/health"),
    ({"type": "keyword", "url": "http://intra/x"}, "http://intra/x"),
    ({"type": "port", "url": "https://", "hostname": "db-1", "port": 5432}, "db-1:5432"),
    ({"type": "ping", "url": "https://", "hostname": "10.0.0.1", "port": None}, "10.0.0.1"),
    ({"type": "dns", "url": "https://", "hostname": "example.com", "port": 53}, "example.com:53"),
    ({"type": "push", "url": "https://", "hostname": None}, None),
    ({"type": "docker", "url": "https://status.example.com", "hostname": None},
     "https://status.example.com"),
])
def test_addresses(monitor: dict[str, Any], address: str | None) -> None:
    body = _down()
    body["monitor"].update(monitor)
    [alert] = _parse(body)
    assert alert.resource == address
    is_link = monitor["type"] in ("http", "keyword")
    assert [link.href for link in alert.links] == ([monitor["url"]] if is_link else [])


def test_monitor_id_from_heartbeat_when_monitor_is_null() -> None:
    body = _down()
    body["monitor"] = None
    [alert] = _parse(body)
    assert alert.dedup_key == "uptime-kuma:monitor:29"
    assert alert.summary == "monitor 29 is down"


def test_na_message_falls_back_to_the_top_level_msg() -> None:
    body = _down()
    body["heartbeat"]["msg"] = "N/A"
    assert _parse(body)[0].description == body["msg"]


@pytest.mark.parametrize("msg", ["My Webhook Alert (1) Testing", "Kuma Testing"])
def test_test_button(msg: str) -> None:
    [alert] = _parse({"heartbeat": None, "monitor": None, "msg": msg})
    assert (alert.condition, alert.dedup_key) == ("test", "uptime-kuma:test")


def test_certificate_reminders_share_one_key_per_certificate() -> None:
    def cert(days: int, cn: str = "shop.example.com") -> Any:
        msg = (f"[Shop][https://shop.example.com] TLS certificate {cn} "
               f"will be expired in {days} days")
        [alert] = _parse({"heartbeat": None, "monitor": None, "msg": msg})
        return alert

    assert cert(21).dedup_key == cert(7).dedup_key != cert(7, "api.example.com").dedup_key
    assert cert(7).labels["days_remaining"] == "7" and cert(7).condition == "normal"


def test_other_messages_are_keyed_by_their_text() -> None:
    a = _parse({"heartbeat": None, "monitor": None, "msg": "Docker host down"})[0]
    b = _parse({"heartbeat": None, "monitor": None, "msg": "Docker host down"})[0]
    assert a.dedup_key == b.dedup_key and a.status == "firing" and a.condition == "normal"


@pytest.mark.parametrize("change", [
    {"heartbeat": {"status": True, "monitorID": 1}},
    {"heartbeat": {"status": 0, "monitorID": "29"}, "monitor": None},
    {"heartbeat": {"status": 0}, "monitor": {"id": None}},
    {"heartbeat": None, "monitor": None, "msg": "  "},
    {"heartbeat": None, "monitor": None, "msg": None},
    {"heartbeat": [], "monitor": None},
    {"monitor": {"id": 1, "tags": "prod"}},
])
def test_bad_shapes_are_payload_errors(change: dict[str, Any]) -> None:
    body = copy.deepcopy(_down())
    body.update(change)
    with pytest.raises(PayloadError):
        _parse(body)


def test_certificate_parsing_uses_no_regex() -> None:
    # The expiry message used to be matched by a DOTALL regex chaining lazy and greedy
    # wildcards, which backtracked for minutes on crafted text and blocked the event loop.
    from baton.sources import uptime_kuma

    assert not [name for name, value in vars(uptime_kuma).items()
                if isinstance(value, re.Pattern)]


@pytest.mark.parametrize("msg", [
    # The audit's input: within the length looked at (about 7 s for the old regex at
    # this size), and scaled up to 50 KB beyond it.
    "[" + "][] " * 250 + " certificate " * 75,
    "[" + "][] " * 6000 + " certificate " * 2000,
    "[" + "[" * 50_000,
    "[a][b] " + "x certificate " * 4000 + " will be expired in 5",
    "[a][b] TLS certificate " + " will be expired in " * 3000 + "x days",
    "[a][b] TLS certificate " + " will be expired in " * 90 + "x days",
])
def test_adversarial_messages_are_plain_messages(msg: str) -> None:
    [alert] = _parse({"heartbeat": None, "monitor": None, "msg": msg})
    assert alert.dedup_key.startswith("uptime-kuma:message:")
    assert alert.description == msg.strip()


def test_certificate_message_shapes() -> None:
    def cert(msg: str) -> Any:
        [alert] = _parse({"heartbeat": None, "monitor": None, "msg": msg})
        return alert

    fixture = json.loads((FIXTURES / "certificate-expiry.json").read_text("utf-8"))
    [alert] = _parse(fixture["payload"])
    assert alert.labels == fixture["expected"][0]["labels"]
    assert alert.dedup_key == fixture["expected"][0]["dedup_key"]
    client = cert("[Db][] Client certificate  will be expired in 7 days")
    assert client.labels == {"monitor_name": "Db", "certificate": "",
                             "certificate_kind": "Client", "days_remaining": "7"}
    assert client.resource is None
    odd = cert("[a] b][c d] e] My TLS certificate x certificate y will be expired in 1 days")
    assert odd.labels == {"monitor_name": "a] b", "certificate": "x certificate y",
                          "certificate_kind": "e] My TLS", "days_remaining": "1"}
    assert odd.resource == "c d"
    for text in ("[a][b] TLS certificate x will be expired in 1 day",
                 "[a][b] TLS certificate x will be expired in days",
                 "[a][b]  certificate x will be expired in 3 days",
                 "[a][b] TLS certificate x will be expired in 3 days now",
                 "[a] TLS certificate x will be expired in 3 days"):
        assert cert(text).dedup_key.startswith("uptime-kuma:message:"), text


def test_overlong_certificate_messages_are_plain_messages() -> None:
    # Only messages up to a bounded length are looked at as certificate reminders.
    msg = f"[{'n' * 5000}][https://x.example] TLS certificate x will be expired in 3 days"
    [alert] = _parse({"heartbeat": None, "monitor": None, "msg": msg})
    assert alert.dedup_key.startswith("uptime-kuma:message:")
