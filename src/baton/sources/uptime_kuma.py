"""Uptime Kuma's Webhook notification, with its default JSON body ("Preset -
application/json"): ``{"heartbeat": {...}, "monitor": {...}, "msg": "..."}``.

A monitor going down and coming back up are one problem, keyed by the monitor's id. Kuma
also sends bodies without a heartbeat: its "Test" button (``"<notification name> Testing"``)
and TLS certificate expiry warnings, which carry only a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import PayloadError
from ..model import Alert, Link, Severity
from ..plugin import Source
from ._common import check_payload, first_text, parse_time, stable_hash
from .alertmanager import SEVERITY_WORDS

DOWN, UP, PENDING, MAINTENANCE = 0, 1, 2, 3

# Monitor types whose ``url`` is the address checked (the others use hostname and port).
_URL_TYPES = frozenset({"http", "keyword", "json-query", "real-browser", "grpc-keyword"})

# A certificate reminder is a monitor name, a URL and a CN: messages longer than this are
# not looked at as one (they are kept as plain messages).
_CERT_MESSAGE_MAX = 2048


class UptimeKumaSource(Source):
    """``type: uptime-kuma``: config key ``default_severity``."""

    type: ClassVar[str] = "uptime-kuma"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "severity"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        check_payload(f"sources/{self.type}.schema.json", payload, "Uptime Kuma webhook")
        heartbeat = payload["heartbeat"]
        monitor = payload["monitor"] or {}
        if heartbeat is None:
            return [self._message(payload["msg"] or "", monitor)]
        status = heartbeat["status"]
        # Pending (failing, retries not used up) is not a confirmed problem, and Kuma does
        # not notify on it; maintenance neither opens nor closes anything. The next down
        # or up does.
        if status not in (DOWN, UP):
            return []
        return [self._heartbeat(heartbeat, monitor, payload["msg"])]

    def _heartbeat(self, beat: Mapping[str, Any], monitor: Mapping[str, Any],
                   msg: str | None) -> Alert:
        monitor_id = monitor.get("id")
        if monitor_id is None:
            monitor_id = beat.get("monitorID")
        if not isinstance(monitor_id, int) or isinstance(monitor_id, bool):
            raise PayloadError("payload.monitor.id: required (or heartbeat.monitorID)",
                               ["payload.monitor.id: required when heartbeat.monitorID "
                                "is missing"])
        name = first_text(monitor, ("name",)) or f"monitor {monitor_id}"
        down = beat["status"] == DOWN
        labels = {**_tag_labels(monitor.get("tags")), "monitor_id": str(monitor_id),
                  "monitor_name": name}
        for label, key in (("monitor_type", "type"), ("monitor_path", "pathName")):
            value = first_text(monitor, (key,))
            if value:
                labels[label] = value
        address = _address(monitor)
        if address:
            labels["address"] = address
        detail = first_text(beat, ("msg",))
        # Kuma writes "N/A" when a check left no message; it says nothing.
        description = detail if detail and detail != "N/A" else (msg or "")
        time = parse_time(beat.get("time"), "payload.heartbeat.time")
        url = monitor.get("url")
        link = (Link(str(url), "Monitored URL"),) if (
            monitor.get("type") in _URL_TYPES and _is_url(url)) else ()
        return Alert(
            dedup_key=f"uptime-kuma:monitor:{monitor_id}",
            status="firing" if down else "resolved",
            severity=self._severity(labels),
            summary=f"{name} is {'down' if down else 'up'}",
            source_type=self.type,
            source_name=self.name,
            description=description,
            resource=address,
            labels=labels,
            links=link,
            # An up heartbeat says when the monitor went down in lastDownTime (Kuma 2).
            started_at=time if down else parse_time(beat.get("lastDownTime"),
                                                    "payload.heartbeat.lastDownTime"),
            ended_at=None if down else time,
            name=first_text(monitor, ("name",)),
        )

    def _message(self, msg: str, monitor: Mapping[str, Any]) -> Alert:
        text = msg.strip()
        if not monitor and text.endswith("Testing"):
            return Alert(dedup_key="uptime-kuma:test", status="firing",
                         severity=self._severity({}), summary=text or "Uptime Kuma test",
                         source_type=self.type, source_name=self.name, condition="test")
        cert = _cert_expiry(text)
        if cert:
            # One key per certificate, so the 21/14/7-day reminders update one incident.
            key = stable_hash([cert["name"], cert["url"], cert["cn"]])[:16]
            labels = {"monitor_name": cert["name"], "certificate": cert["cn"],
                      "certificate_kind": cert["kind"], "days_remaining": cert["days"]}
            return Alert(dedup_key=f"uptime-kuma:certificate:{key}", status="firing",
                         severity="warning", summary=text.splitlines()[0],
                         source_type=self.type, source_name=self.name,
                         resource=cert["url"] or None, labels=labels,
                         name=cert["name"] or None)
        if not text:
            raise PayloadError("payload.msg: empty, and there is no heartbeat",
                               ["payload.msg: must not be empty when heartbeat is null"])
        return Alert(dedup_key=f"uptime-kuma:message:{stable_hash(text)[:16]}",
                     status="firing", severity=self._severity({}),
                     summary=text.splitlines()[0], description=text,
                     source_type=self.type, source_name=self.name)

    def _severity(self, labels: Mapping[str, str]) -> Severity:
        found = SEVERITY_WORDS.get(labels.get("severity", "").strip().lower())
        default: Severity = self.config.get("default_severity") or "error"
        return found or default


def _cert_expiry(text: str) -> dict[str, str] | None:
    """The parts of Kuma's certificate reminder, ``[<monitor name>][<url>] <TLS|Client>
    certificate <CN> will be expired in <N> days``, or None for any other text.

    Split with str.partition/find rather than a regex: each step is one linear scan, so
    crafted text costs no more than its length (which is capped as well).
    """
    if len(text) > _CERT_MESSAGE_MAX or not text.startswith("["):
        return None
    name, sep, rest = text[1:].partition("][")
    if not sep:
        return None
    url, sep, rest = rest.partition("] ")
    if not sep:
        return None
    # The kind (TLS, Client) is at least one character before " certificate ".
    at = rest.find(" certificate ", 1)
    if at < 0:
        return None
    kind, rest = rest[:at], rest[at + len(" certificate "):]
    cn, sep, tail = rest.rpartition(" will be expired in ")
    days, space, unit = tail.partition(" ")
    if not sep or not days.isdecimal() or (space + unit) != " days":
        return None
    return {"name": name, "url": url, "kind": kind, "cn": cn, "days": days}


def _tag_labels(tags: Any) -> dict[str, str]:
    """Monitor tags as labels: ``{name: value}``, "true" for a tag without a value, values
    of a tag given twice joined with commas."""
    out: dict[str, list[str]] = {}
    for tag in tags if isinstance(tags, list) else ():
        if isinstance(tag, dict) and isinstance(tag.get("name"), str) and tag["name"]:
            value = tag.get("value")
            out.setdefault(tag["name"], []).append(
                value if isinstance(value, str) and value else "true")
    return {name: ",".join(values) for name, values in out.items()}


def _address(monitor: Mapping[str, Any]) -> str | None:
    url = monitor.get("url")
    if monitor.get("type") in _URL_TYPES and _is_url(url):
        return str(url)
    host = first_text(monitor, ("hostname",))
    if host:
        port = monitor.get("port")
        return f"{host}:{port}" if isinstance(port, int) and port else host
    return str(url) if _is_url(url) else None


def _is_url(value: Any) -> bool:
    # Kuma keeps "https://" as the url of monitors that have none.
    return (isinstance(value, str) and value.startswith(("https://", "http://"))
            and value not in ("https://", "http://"))
