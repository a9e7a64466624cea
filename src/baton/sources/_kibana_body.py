"""Kibana webhook bodies written for other tools, read into the shape of Baton's template.

The Webhook connector sends whatever the rule action's Mustache body renders, and many
rules already carry a body written for another tool. Besides Baton's nested template
(``rule``, ``alert``, ``context`` objects), the published ones are flat: Keep's
(``ruleId``, ``name`` = rule.name, ``id`` = alert.id, ``actionGroup``, ``status`` =
actionGroupName, ``lastReceived`` = date, ``context.message`` as dotted keys, ...) and the
security-detection bodies SOC write-ups give (``rule_name``, ``alert_id``, ``severity``,
``timestamp``, ``host``, ``kibana_url``). ``nest`` maps a flat body onto the nested shape,
so the adapter reads one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# (section, key of Baton's template) <- the keys published flat templates use for it,
# first found wins.
ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("rule", "id"): ("rule.id", "ruleId", "rule_id", "ruleID"),
    ("rule", "name"): ("rule.name", "ruleName", "rule_name", "name"),
    ("rule", "url"): ("rule.url", "ruleUrl", "rule_url", "kibana_url"),
    ("rule", "spaceId"): ("rule.spaceId", "spaceId", "space_id"),
    ("rule", "tags"): ("rule.tags", "ruleTags", "rule_tags", "tags"),
    ("alert", "id"): ("alert.id", "alertId", "alert_id", "id", "fingerprint"),
    ("alert", "uuid"): ("alert.uuid", "alertUuid", "alert_uuid"),
    ("alert", "actionGroup"): ("alert.actionGroup", "actionGroup", "action_group"),
    ("alert", "actionGroupName"): ("alert.actionGroupName", "actionGroupName", "status"),
    ("alert", "flapping"): ("alert.flapping", "isFlapping", "flapping"),
    ("alert", "consecutiveMatches"): ("alert.consecutiveMatches", "consecutiveMatches"),
    ("context", "title"): ("context.title", "title"),
    ("context", "reason"): ("context.reason", "reason", "description"),
    ("context", "message"): ("context.message", "message"),
    ("context", "conditions"): ("context.conditions", "conditions"),
    ("context", "value"): ("context.value", "value"),
    ("context", "group"): ("context.group", "group", "host"),
    ("context", "link"): ("context.link", "link"),
    ("context", "alertDetailsUrl"): ("context.alertDetailsUrl", "alertDetailsUrl", "url"),
    ("context", "viewInAppUrl"): ("context.viewInAppUrl", "viewInAppUrl"),
    ("context", "ruleDescription"): ("context.rule.description", "rule.description",
                                     "ruleDescription"),
    ("", "date"): ("date", "lastReceived", "timestamp", "@timestamp"),
    ("", "severity"): ("severity", "context.rule.severity", "rule.severity"),
    ("", "kibanaBaseUrl"): ("kibanaBaseUrl",),
}
# A flat body's state when it has no action group: Keep's ``status`` is the action group's
# name, "Recovered" for the recovered group.
RECOVERED_NAMES = frozenset({"recovered", "resolved", "ok", "closed"})


def is_nested(payload: Any) -> bool:
    """Baton's template (and other nested ones): ``rule`` and ``alert`` are objects."""
    return isinstance(payload, dict) and isinstance(payload.get("rule"), dict) \
        and isinstance(payload.get("alert"), dict)


def nest(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A flat body in Baton's nested shape: only the fields found, as strings."""
    flat = _flatten(payload)
    out: dict[str, Any] = {"rule": {}, "alert": {}, "context": {}}
    for (section, key), names in ALIASES.items():
        value = next((flat[n] for n in names if flat.get(n)), None)
        if value is None:
            continue
        (out[section] if section else out)[key] = value
    alert = out["alert"]
    if not alert.get("actionGroup"):
        # No action group in the template: Keep's status (the group's name) or a
        # state word; a body that says neither reports a problem.
        name = str(alert.get("actionGroupName", "")).strip().lower()
        alert["actionGroup"] = "recovered" if name in RECOVERED_NAMES else ""
    return out


def _flatten(payload: Mapping[str, Any]) -> dict[str, str]:
    """Top-level strings, plus strings one and two objects down as dotted keys
    (``{"rule": {"name": x}}`` -> ``rule.name``), which is how nested templates that are
    not Baton's spell the same variables. Numbers and booleans a template left unquoted
    are read as written."""
    out: dict[str, str] = {}
    for key, value in payload.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                if isinstance(inner, dict):
                    for leaf, deep in inner.items():
                        _put(out, f"{key}.{sub}.{leaf}", deep)
                else:
                    _put(out, f"{key}.{sub}", inner)
        else:
            _put(out, key, value)
    return out


def _put(out: dict[str, str], key: str, value: Any) -> None:
    if isinstance(value, bool):
        out.setdefault(key, "true" if value else "false")
    elif isinstance(value, str | int | float):
        text = str(value).strip()
        if text:
            out.setdefault(key, text)
