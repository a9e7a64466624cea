"""Zabbix, through the webhook media type Baton ships (contrib/zabbix/baton_media_type.yaml).

The media type's script POSTs its parameters (Zabbix macros, expanded) as one JSON object;
this adapter reads that object, and the parameters of other media types posted as they are
(``_zabbix_body`` reads their names as Baton's). What an event is follows from three macros:

- ``{EVENT.UPDATE.STATUS}`` 1: an update operation (acknowledged, commented, severity
  changed, closed); else ``{EVENT.VALUE}`` 1 a problem, 0 a recovery.
- The dedup key is ``zabbix:<{EVENT.ID}>``. In recovery and update operations Zabbix
  expands ``{EVENT.ID}`` to the *problem* event's id (``{EVENT.RECOVERY.ID}`` is the
  recovery event's own), so all three land on the incident the problem opened.
- An acknowledgement in Zabbix acknowledges the incident (as PagerDuty's Zabbix
  integration does); a manual close resolves it; a severity change updates it; other
  updates (comments, unacknowledge, suppress) open and change nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import PayloadError
from ..model import Alert, AlertStatus, Condition, Link, Severity
from ..plugin import Source
from ._common import check_payload, first_text, parse_time, quote
from ._zabbix_body import is_baton, normalize

# {EVENT.NSEVERITY} -> Baton, as Zabbix's own PagerDuty media type maps them.
NSEVERITY: dict[str, Severity] = {
    "0": "info",  # Not classified
    "1": "info",  # Information
    "2": "warning",  # Warning
    "3": "warning",  # Average
    "4": "error",  # High
    "5": "critical",  # Disaster
}
# The default English names ({EVENT.SEVERITY}), used only when the number is missing:
# Zabbix lets administrators rename severities, so the number is the reliable one.
NAMES: dict[str, str] = {"not classified": "0", "information": "1", "warning": "2",
                         "average": "3", "high": "4", "disaster": "5"}
SOURCES = {"0": "trigger", "1": "discovery", "2": "autoregistration", "3": "internal",
           "4": "service"}
# Tags that name the well-known alert fields, in order of preference.
_FIELD_TAGS: dict[str, tuple[str, ...]] = {
    "service": ("service",), "component": ("component",),
    "environment": ("environment", "env"),
}
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9_]")
_DIGITS = re.compile(r"[0-9]{1,20}", re.ASCII)
_ID_FIELDS = ("event_id", "event_recovery_id", "trigger_id")
_LABEL_KEYS = {
    "event_id": "event_id", "event_recovery_id": "recovery_event_id",
    "trigger_id": "trigger_id", "host_host": "host", "host_name": "host_name",
    "host_ip": "host_ip", "event_ack_status": "acknowledged", "event_opdata": "opdata",
    "event_update_action": "update_action", "event_update_user": "update_user",
}


def _no_id() -> PayloadError:
    return PayloadError(
        "payload.event_id: required: add a parameter event_id = {EVENT.ID} to the media type",
        ["payload.event_id: required (or eventid, id, EVENT.ID, or trigger_id = {TRIGGER.ID}) "
         "to key the problem on"])


class ZabbixSource(Source):
    """``type: zabbix``: config key ``default_severity``."""

    type: ClassVar[str] = "zabbix"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "severity"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        if isinstance(payload, dict) and not is_baton(payload):
            payload = _other_media_type(payload)
        if isinstance(payload, dict) and "test" not in payload and not (
                "event_id" in payload or payload.get("trigger_id")):
            raise _no_id()
        check_payload(f"sources/{self.type}.schema.json", payload, "Zabbix media type",
                      pointer="baton")
        for name in _ID_FIELDS:
            if name in payload and not _DIGITS.fullmatch(payload[name]):
                problem = f"payload.{name}: {quote(payload[name])} is not a Zabbix id"
                raise PayloadError(problem, [problem])
        if "test" in payload:
            return [self._alert(payload, "zabbix:test", "firing", "test", "test")]
        source = payload.get("event_source", "0")
        if source in ("1", "2"):
            return []  # discovery and autoregistration: nothing that recovers or escalates
        # Without {EVENT.ID} (a media type that does not send it) the trigger is the problem.
        key = (f"zabbix:{payload['event_id']}" if "event_id" in payload
               else f"zabbix:trigger:{payload['trigger_id']}")
        condition: Condition = "no_data" if source == "3" else "normal"
        if payload.get("event_update_status") == "1":
            return self._update(payload, key, condition)
        status: AlertStatus = "firing" if payload["event_value"] == "1" else "resolved"
        kind = "problem" if status == "firing" else "recovery"
        return [self._alert(payload, key, status, kind, condition)]

    def _update(self, payload: Mapping[str, Any], key: str,
                condition: Condition) -> list[Alert]:
        action = str(payload.get("event_update_action", "")).lower()
        if "closed" in action:
            return [self._alert(payload, key, "resolved", "update", condition)]
        # Media types without {EVENT.UPDATE.ACTION} (Zabbix's PagerDuty one) say only that
        # the problem is acknowledged now, as PagerDuty's script reads them.
        acked = (payload.get("event_ack_status") == "Yes" and "unacknowledged" not in action
                 and ("acknowledged" in action or "event_update_action" not in payload))
        # A service's update operation is its status (severity) changing; no action text.
        service = payload.get("event_source") == "4"
        if acked or service or "changed severity" in action:
            return [self._alert(payload, key, "firing", "update", condition, acked)]
        return []

    def _severity(self, payload: Mapping[str, Any], kind: str) -> Severity:
        number = payload.get("event_nseverity")
        if kind == "update" and isinstance(payload.get("event_update_nseverity"), str):
            number = payload["event_update_nseverity"]  # the severity just set
        if number not in NSEVERITY:
            number = NAMES.get(str(payload.get("event_severity", "")).strip().lower())
        if number in NSEVERITY:
            return NSEVERITY[number]
        default: Severity = self.config.get("default_severity") or "warning"
        return default

    def _alert(self, payload: Mapping[str, Any], key: str, status: AlertStatus, kind: str,
               condition: Condition, acknowledge: bool = False) -> Alert:
        tags = _tags(payload.get("event_tags"))
        labels = {f"tag_{_NOT_LABEL_CHAR.sub('_', k)}": v for k, v in tags.items()}
        labels.update({label: payload[name] for name, label in _LABEL_KEYS.items()
                       if isinstance(payload.get(name), str)})
        labels["zabbix_event"] = kind
        if payload.get("event_source") in SOURCES:
            labels["event_source"] = SOURCES[payload["event_source"]]
        # An update that changed the severity names the new one in its own macros.
        names = (("event_update_severity", "event_severity"), ("event_update_nseverity",
                                                                "event_nseverity"))
        for (update, plain), label in zip(names, ("severity", "nseverity"), strict=True):
            value = payload.get(update) if kind == "update" else None
            value = value if isinstance(value, str) else payload.get(plain)
            if isinstance(value, str):
                labels[label] = value
        event_id = payload.get("event_id", "")
        recovery = status == "resolved"
        return Alert(
            dedup_key=key,
            status=status,
            severity=self._severity(payload, kind),
            summary=(first_text(payload, ("event_name", "alert_subject"))
                     or ("Zabbix media type test" if condition == "test"
                         else f"Zabbix event {event_id}")),
            source_type=self.type,
            source_name=self.name,
            description=first_text(payload, ("alert_message", "trigger_description")) or "",
            service=_first_tag(tags, "service"),
            component=_first_tag(tags, "component"),
            environment=_first_tag(tags, "environment"),
            resource=first_text(payload, ("host_name", "host_host")),
            labels=labels,
            links=_links(payload),
            started_at=parse_time(payload.get("event_timestamp"), "payload.event_timestamp"),
            ended_at=(parse_time(payload.get("event_recovery_timestamp"),
                                 "payload.event_recovery_timestamp") if recovery else None),
            acknowledge=acknowledge,
            condition=condition,
            name=None if kind == "test" else _name(payload),
        )


def _other_media_type(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A body from another media type's parameters, under Baton's names; a test when its
    identifying macros came unexpanded (the media type's Test form)."""
    body, unexpanded = normalize(payload)
    if "test" in body or body.get("event_id") or body.get("trigger_id"):
        # Nothing else says the state (Keep's and other bodies without {EVENT.VALUE},
        # {TRIGGER.VALUE} or {TRIGGER.STATUS}): a notification is a problem.
        body.setdefault("event_value", "1")
        return body
    if unexpanded & {"event_id", "trigger_id"}:
        return {"test": True, **{k: body[k] for k in ("alert_subject", "alert_message")
                                 if isinstance(body.get(k), str)}}
    raise _no_id()


def _name(payload: Mapping[str, Any]) -> str | None:
    """The event's name ({EVENT.NAME}, the trigger's name as expanded); else
    {TRIGGER.NAME}; else the subject without the prefix Zabbix's stock message templates
    give it ("Problem: ", "Resolved in 5m: ", "Updated problem: ")."""
    name = first_text(payload, ("event_name", "trigger_name"))
    if name:
        return name
    subject = first_text(payload, ("alert_subject",))
    if not subject:
        return None
    head, sep, rest = subject.partition(": ")
    if sep and rest.strip() and head.split(" ")[0] in ("Problem", "Resolved", "Updated"):
        return rest.strip()
    return subject


def _tags(value: Any) -> dict[str, str]:
    """{EVENT.TAGSJSON} as a mapping; a tag set twice (``component: cpu`` and ``component:
    memory``) keeps its values sorted and comma-joined, so the label is stable."""
    seen: dict[str, set[str]] = {}
    for item in value if isinstance(value, list) else ():
        if isinstance(item, dict) and isinstance(item.get("tag"), str) and item["tag"]:
            tag_value = item.get("value")
            seen.setdefault(item["tag"], set()).add(
                tag_value if isinstance(tag_value, str) else "")
    return {tag: ",".join(sorted(v for v in values if v)) or "" for tag, values in
            sorted(seen.items())}


def _first_tag(tags: Mapping[str, str], field: str) -> str | None:
    for name in _FIELD_TAGS[field]:
        value = tags.get(name)
        if value:
            return value.split(",")[0]
    return None


def _links(payload: Mapping[str, Any]) -> tuple[Link, ...]:
    links: list[Link] = []
    base = first_text(payload, ("zabbix_url",))
    trigger, event = payload.get("trigger_id"), payload.get("event_id")
    if base and isinstance(trigger, str) and isinstance(event, str):
        # The problem's page in Zabbix's frontend, as Zabbix's own media types link it.
        links.append(Link(f"{base.rstrip('/')}/tr_events.php?triggerid={trigger}"
                          f"&eventid={event}", "Event in Zabbix"))
    event_url = first_text(payload, ("event_url",))
    if not links and event_url and event_url.startswith(("https://", "http://")):
        links.append(Link(event_url, "Event in Zabbix"))  # as a media type built it
    url = first_text(payload, ("trigger_url",))
    if url:
        links.append(Link(url, "Trigger URL"))
    return tuple(links)

