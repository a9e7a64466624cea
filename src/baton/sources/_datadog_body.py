"""The Datadog webhook bodies people already paste, read into one set of fields.

Datadog lets the user write the webhook's payload, so the same ``$VARIABLES`` arrive under
whatever keys the template gives them: Baton's own (the variable names in lower case),
Datadog's default body (``title``, ``body``, ``org``, ...), Keep's (``monitor_id``,
``scopes``, ``severity``, ``url``), the camelCase ones Squadcast and SIGNL4 publish in
Datadog's integration tiles (``alertId``, ``alertTransition``, ``alertScope``), and
``monitor_id``/``monitor_name``/``transition`` as many small receivers name them.
``fields`` maps each of those onto Baton's key; the adapter reads only Baton's keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Baton's key <- the keys of the published templates that carry the same variable, first
# found wins. Baton's own key comes first, so its template reads as it always did.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "event_id", "eventId"),
    "alert_id": ("alert_id", "alertId", "monitor_id", "monitorId"),
    "alert_transition": ("alert_transition", "alertTransition", "transition"),
    "event_title": ("event_title", "title", "eventTitle"),
    "alert_title": ("alert_title", "alertTitle"),
    "monitor_name": ("monitor_name", "monitorName"),
    "event_msg": ("event_msg", "body", "eventMessage", "text_only_msg", "message"),
    "event_type": ("event_type", "eventType"),
    "date": ("date",),
    "last_updated": ("last_updated", "lastUpdated"),
    "link": ("link", "url"),
    "snapshot": ("snapshot",),
    "hostname": ("hostname", "host"),
    "tags": ("tags",),
    "org_id": ("org_id", "orgId"),
    "org_name": ("org_name", "orgName"),
    "alert_type": ("alert_type", "alertType"),
    # $ALERT_PRIORITY (P1..P5); Keep's template names it severity. "priority" is last:
    # Squadcast's template fills it with $PRIORITY (normal, low), not the monitor's.
    "alert_priority": ("alert_priority", "alertPriority", "severity", "priority"),
    "alert_status": ("alert_status", "alertStatus"),
    "alert_metric": ("alert_metric", "alertMetric"),
    "alert_query": ("alert_query", "alertQuery", "query"),
    "alert_scope": ("alert_scope", "alertScope", "scopes", "scope"),
    "alert_cycle_key": ("alert_cycle_key", "alertCycleKey"),
    "aggreg_key": ("aggreg_key", "aggregKey"),
}

# The transitions Datadog writes in its event titles: "[Triggered on {host:a}] CPU high".
TRANSITIONS = ("Triggered", "Re-Triggered", "Recovered", "Warn", "Re-Warn", "No Data",
               "Re-No Data", "Renotify")
_TRANSITION_WORDS = {t.lower(): t for t in TRANSITIONS}

# A variable Datadog could not fill in for this monitor type may come through as its own
# name; it says nothing.
_UNFILLED = re.compile(r"\$[A-Z_]+(\[[^\]]*\])?")
# The monitor's page, as Datadog links it in $EVENT_MSG (the default template's body):
# the only place that body names the monitor's id.
# Older bodies link it as /monitors#<id>.
_MONITOR_LINK = re.compile(
    r"(https://[a-z0-9.-]{1,100}\.datadoghq\.(?:com|eu))/monitors[/#]([0-9]{1,20})", re.ASCII)
# The footer Datadog appends names the monitor itself; the user's message above it may link
# other monitors ("see also"), which must not pass for this one.
_STATUS_LINK = re.compile(r"\[Monitor Status\]\(" + _MONITOR_LINK.pattern, re.ASCII)
_MAX_PREFIXES = 8


def text(value: Any) -> str:
    """A template value as text: numbers as written, unfilled variables as empty."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    out = value.strip() if isinstance(value, str) else str(value)
    return "" if _UNFILLED.fullmatch(out) else out


def fields(payload: Mapping[str, Any]) -> dict[str, str]:
    """Baton's key -> value for every variable the body carries under any known key."""
    out: dict[str, str] = {}
    for key, names in ALIASES.items():
        for name in names:
            value = payload.get(name)
            if isinstance(value, list) and key == "tags":  # a template that sends a list
                value = ",".join(v for v in value if isinstance(v, str))
            found = text(value)
            if found:
                out[key] = found
                break
    org = payload.get("org")
    if isinstance(org, dict):  # the default template's {"id": "$ORG_ID", "name": ...}
        for key, name in (("org_id", "id"), ("org_name", "name")):
            value = text(org.get(name))
            if value and key not in out:
                out[key] = value
    title = out.get("event_title") or out.get("alert_title") or ""
    transition, scope, name, test = read_title(title)
    if test:
        out["test"] = "true"
    if "alert_transition" not in out and transition:
        out["alert_transition"] = transition  # the default template has no other
    # Only a template without a scope at all: an empty $ALERT_SCOPE is a simple monitor's.
    if scope and not any(name in payload for name in ALIASES["alert_scope"]):
        out["alert_scope"] = scope
    if "monitor_name" not in out:
        own = read_title(out["alert_title"])[2] if out.get("alert_title") else name
        if own:
            out["monitor_name"] = own
    if "alert_id" not in out:
        link = _monitor_link(out.get("event_msg", "")[:100_000])
        if link:
            out["alert_id"] = link[2]
            out["site"] = link[1]  # where the monitor's page is, for its link
    return out


def _monitor_link(message: str) -> re.Match[str] | None:
    """The monitor's own link in $EVENT_MSG: the footer's Monitor Status; else a link when
    every monitor link there names the same monitor (several: none can be trusted)."""
    own = _STATUS_LINK.search(message)
    if own:
        return own
    links = list(_MONITOR_LINK.finditer(message))
    return links[0] if links and len({link[2] for link in links}) == 1 else None


def read_title(title: str) -> tuple[str, str, str, bool]:
    """(transition, scope, monitor name, test) from a Datadog event title such as
    ``[P2] [Triggered on {host:web-1,env:prod}] CPU high`` or ``[Recovered] CPU high``;
    test when one of the groups is ``[TEST]`` (first or, in older titles, after the
    transition).

    The leading ``[...]`` groups are Datadog's (priority, test marker, transition and
    group); what follows is the monitor's name. Each group is found by counting brackets
    in one pass, so a crafted title costs no more than its length.
    """
    transition = scope = ""
    test = False
    rest = title.strip()
    for _ in range(_MAX_PREFIXES):
        if not rest.startswith("["):
            break
        end = _closing(rest)
        if end < 0:
            break
        inner, rest = rest[1:end].strip(), rest[end + 1:].lstrip()
        test = test or inner.upper() == "TEST"
        word, _, group = inner.partition(" on ")
        if word.lower() in _TRANSITION_WORDS and not transition:
            transition = _TRANSITION_WORDS[word.lower()]
            group = group.strip()
            if group.startswith("{") and group.endswith("}"):
                scope = group[1:-1]
    return transition, scope, rest, test


def _closing(text: str) -> int:
    depth = 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return i
    return -1
