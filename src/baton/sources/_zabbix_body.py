"""Zabbix webhook bodies from media types other than Baton's, read under Baton's names.

A Zabbix webhook's body is whatever its script posts; a common script posts the media type's
parameters as they are (``JSON.stringify(params)``), so the keys are the parameter names of
whichever media type the user started from: Baton's (``event_id``, ``event_value``, ...),
the ones Zabbix ships for Opsgenie and Redmine (mostly the same names, plus ``zbxurl``,
``zbxuser``, ``event_tags_json`` as text), the older PagerDuty one (``eventid``,
``eventvalue``, ``eventupdate``, ``eventack``, ``severity`` = {EVENT.NSEVERITY},
``hostname``, ``triggerid``, ``url``), Keep's (``id``, ``triggerId``, ``name``,
``status`` = {TRIGGER.STATUS}, ``severity`` = {TRIGGER.SEVERITY}, ``tags``, and macro
names such as ``EVENT.VALUE``, ``HOST.NAME``), the macro names themselves (``EVENT.ID``,
``TRIGGER.STATUS``: Zabbix's iLert media type), or what Zabbix's Grafana OnCall media type
posts (``alert_uid``, ``title``, ``state`` ok/alerting, ``message``,
``link_to_upstream_details``). ``normalize`` maps them onto Baton's names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# A parameter name -> Baton's, for names that are not Baton's own or a macro's.
ALIASES: dict[str, str] = {
    # Zabbix's PagerDuty media type (5.x)
    "eventid": "event_id", "eventvalue": "event_value", "eventupdate": "event_update_status",
    "eventack": "event_ack_status", "eventname": "alert_subject", "eventtags": "event_tags",
    "eventdate": "event_date", "eventtime": "event_time", "hostname": "host_name",
    "hostip": "host_ip", "triggerid": "trigger_id", "triggerdesc": "trigger_description",
    "triggeropdata": "event_opdata", "url": "zabbix_url",
    # Zabbix's Opsgenie media type
    "zbxurl": "zabbix_url", "zbxuser": "event_update_user", "event_tags_json": "event_tags",
    # Keep's media type
    "id": "event_id", "triggerId": "trigger_id", "message": "alert_message",
    "name": "event_name", "service": "host_host", "status": "trigger_status",
    "tags": "event_tags", "description": "trigger_description",
    # Zabbix's Grafana OnCall media type: what its script posts (OnCall's formatted webhook)
    "alert_uid": "event_id", "title": "event_name", "state": "trigger_status",
    "link_to_upstream_details": "event_url",
    # Macro names, once lowercased with dots as underscores
    "alert_sendto": "alert_sendto", "user_fullname": "event_update_user",
    "event_update_nseverity": "event_update_nseverity",
}
# Parameters whose value is a severity: a number 0-5 is {EVENT.NSEVERITY}, else a name.
_SEVERITY_NAMES = frozenset({"severity", "trigger_severity"})
_MACRO_NAME = re.compile(r"\{?[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+\}?", re.ASCII)
# A macro Zabbix could not expand stays as its name ({EVENT.RECOVERY.ID}, {$ZABBIX.URL});
# *UNKNOWN* is what it writes for a value it cannot resolve.
_UNEXPANDED = re.compile(r"\{\$?[A-Z][A-Z0-9_.]*(:[^}]*)?\}|\*UNKNOWN\*", re.ASCII)
_STATE = {"problem": "1", "alerting": "1", "ok": "0", "resolved": "0", "1": "1", "0": "0"}
_NUMBERS = frozenset("012345")
_MAX_TAGS = 1000
_MAX_TAGS_TEXT = 200_000


def is_baton(payload: Mapping[str, Any]) -> bool:
    """The body Baton's own script (contrib/zabbix/baton.js) posts."""
    return payload.get("format") == "baton-zabbix/1"


def normalize(payload: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """(the body under Baton's names, Baton's names whose values were unexpanded macros).

    Baton's own names win over aliases of the same parameter; values are strings (numbers
    as written), {EVENT.TAGS} text and {EVENT.TAGSJSON} text become the parsed tag list.
    """
    out: dict[str, Any] = {}
    unexpanded: set[str] = set()
    # Baton's names first, so an alias never overrides them, whatever the key order.
    for key in sorted(payload, key=lambda k: _canonical(k) != k):
        name, value = _canonical(key), payload[key]
        if name in _SEVERITY_NAMES:
            name = "event_nseverity" if str(value).strip() in _NUMBERS else "event_severity"
        if name in out:
            continue
        if name == "event_tags":
            out[name] = _tags(value)
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            out[name] = value  # the schema says what is wrong with it
            continue
        text = str(value).strip() if not isinstance(value, str) else value
        if isinstance(value, str) and _UNEXPANDED.fullmatch(value.strip()):
            unexpanded.add(name)
            continue
        if text.strip() or name == key:
            out[name] = text
    _state(out)
    return out, unexpanded


def _canonical(key: str) -> str:
    if key in ALIASES:
        return ALIASES[key]
    if _MACRO_NAME.fullmatch(key):
        name = key.strip("{}").lower().replace(".", "_")
        return ALIASES.get(name, name)
    return key


def _state(out: dict[str, Any]) -> None:
    """{EVENT.VALUE} from what else says the state: {TRIGGER.VALUE}, or {TRIGGER.STATUS}
    and {EVENT.STATUS} (PROBLEM, OK, RESOLVED)."""
    if isinstance(out.get("event_value"), str) and out["event_value"]:
        return
    for name in ("trigger_value", "trigger_status", "event_status"):
        value = out.get(name)
        if isinstance(value, str) and value.strip().lower() in _STATE:
            out["event_value"] = _STATE[value.strip().lower()]
            return


def _tags(value: Any) -> Any:
    """{EVENT.TAGSJSON} (parsed, or as text) or {EVENT.TAGS} text (``a:b, c``) as the
    list of {tag, value} Baton's script sends."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or _UNEXPANDED.fullmatch(text) or len(text) > _MAX_TAGS_TEXT:
        return []
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return []
        # Text is read leniently (what Zabbix wrote is always well-formed; anything else
        # is not worth refusing the problem over): only {tag, value} items are kept.
        return [{k: v for k, v in item.items() if k in ("tag", "value") and isinstance(v, str)}
                for item in parsed[:_MAX_TAGS] if isinstance(item, dict)
                and isinstance(item.get("tag"), str)] if isinstance(parsed, list) else []
    tags = []
    for part in text.split(",")[:_MAX_TAGS]:
        tag, sep, tag_value = part.strip().partition(":")
        if tag.strip():
            tags.append({"tag": tag.strip(), "value": tag_value.strip()} if sep
                        else {"tag": tag.strip()})
    return tags
