"""Kibana (Elastic Stack) alerting rules, through a Webhook connector action.

Kibana's Webhook connector has no body of its own: the rule action renders a Mustache
template the user pastes (``BODY_TEMPLATE``, also in the schema description). This adapter
reads what that template produces, and the flat bodies other tools publish (``_kibana_body``
maps them onto the same shape). One request is one alert of one rule, as the action runs
"for each alert"; the action group ``recovered`` is the resolve; the rule names the alert.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import PayloadError
from ..model import Alert, AlertStatus, Condition, Link, Severity
from ..plugin import Source
from ._common import check_payload, first_text, parse_time, stable_hash
from ._kibana_body import is_nested, nest
from .alertmanager import SEVERITY_WORDS

# Kept identical to the template in schemas/sources/kibana.schema.json (a unit test checks).
BODY_TEMPLATE = """{
  "baton": "kibana/1",
  "date": "{{date}}",
  "kibanaBaseUrl": "{{kibanaBaseUrl}}",
  "severity": "{{context.rule.severity}}",
  "rule": {
    "id": "{{rule.id}}",
    "name": "{{rule.name}}",
    "url": "{{rule.url}}",
    "spaceId": "{{rule.spaceId}}",
    "tags": "{{rule.tags}}"
  },
  "alert": {
    "id": "{{alert.id}}",
    "uuid": "{{alert.uuid}}",
    "actionGroup": "{{alert.actionGroup}}",
    "actionGroupName": "{{alert.actionGroupName}}",
    "flapping": "{{alert.flapping}}",
    "consecutiveMatches": "{{alert.consecutiveMatches}}"
  },
  "context": {
    "title": "{{context.title}}",
    "reason": "{{context.reason}}",
    "message": "{{context.message}}",
    "conditions": "{{context.conditions}}",
    "value": "{{context.value}}",
    "group": "{{context.group}}",
    "link": "{{context.link}}",
    "alertDetailsUrl": "{{context.alertDetailsUrl}}",
    "viewInAppUrl": "{{context.viewInAppUrl}}",
    "ruleDescription": "{{context.rule.description}}"
  }
}"""

RECOVERED = "recovered"
# Past this the readable key (rule and alert id, or the rule's name) becomes a hash.
_MAX_KEY = 200
# Action groups meaning the rule had no data to evaluate: metrics.threshold.nodata,
# custom_threshold.nodata and the like.
_NO_DATA_GROUP = re.compile(r"(?:^|[._])no_?data$", re.IGNORECASE)

_LABELS = (  # (label, section, key): the template's fields kept as labels, when not empty
    ("rule_id", "rule", "id"), ("rule_name", "rule", "name"), ("space_id", "rule", "spaceId"),
    ("rule_tags", "rule", "tags"), ("alert_id", "alert", "id"), ("alert_uuid", "alert", "uuid"),
    ("action_group", "alert", "actionGroup"), ("action_group_name", "alert", "actionGroupName"),
    ("flapping", "alert", "flapping"), ("consecutive_matches", "alert", "consecutiveMatches"),
    ("group", "context", "group"),
)
_LINKS = (("rule", "url", "Rule"), ("context", "alertDetailsUrl", "Alert details"),
          ("context", "viewInAppUrl", "View in app"), ("context", "link", "Source"))


class KibanaSource(Source):
    """``type: kibana``: config key ``default_severity``."""

    type: ClassVar[str] = "kibana"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "severity"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        schema_name = f"sources/{self.type}.schema.json"
        if is_nested(payload) or not isinstance(payload, dict):
            check_payload(schema_name, payload, "Kibana webhook", pointer="nested")
            return [self._alert(payload)]
        # A flat body written for another tool: only a rule to key on is required.
        body = nest(payload)
        if not (body["rule"].get("id") or body["rule"].get("name")):
            raise PayloadError(
                "payload.rule.id: required (or a rule name): put Baton's template in the "
                "rule action's body, or keep one with {{rule.id}} or {{rule.name}}",
                ["payload.rule.id: required (or rule.name, ruleId, rule_id, name, "
                 "rule_name) to key the problem on"])
        check_payload(schema_name, payload, "Kibana webhook", pointer="flat")
        return [self._alert(body)]

    def _alert(self, body: Mapping[str, Any]) -> Alert:
        rule: Mapping[str, str] = body["rule"]
        alert: Mapping[str, str] = body["alert"]
        context: Mapping[str, str] = body.get("context") or {}
        sections = {"rule": rule, "alert": alert, "context": context}
        group = alert["actionGroup"]
        status: AlertStatus = "resolved" if group == RECOVERED else "firing"
        condition: Condition = "no_data" if _NO_DATA_GROUP.search(group) else "normal"
        rule_id, alert_id = rule.get("id", ""), alert.get("id", "")
        rule_name = rule.get("name", "")
        # The connector's own "Test" tab sends the template as typed, without rendering it:
        # its fields are placeholders, not facts worth keeping.
        if any("{{" in text for text in (rule_id, alert_id, rule_name)):
            return Alert(dedup_key="kibana:test", status="firing",
                         severity=self._severity("", ""),
                         summary="Kibana webhook connector test",
                         description="The Baton template, sent from the connector's Test tab "
                                     "without its variables rendered.",
                         source_type=self.type, source_name=self.name, condition="test")
        # A flat template without {{rule.id}} keys on the rule's name; one without an alert
        # id (security detections: each rule is one problem) on the rule alone.
        ident = rule_id or f"name:{rule_name}"
        dedup_key = f"kibana:{ident}" + (f":{alert_id}" if alert_id else "")
        if len(dedup_key) > _MAX_KEY:
            dedup_key = "kibana:" + stable_hash([ident, alert_id])
        labels = {label: sections[part][key] for label, part, key in _LABELS
                  if isinstance(sections[part].get(key), str) and sections[part][key]}
        severity_word = body.get("severity") or ""
        if severity_word:
            labels["severity"] = severity_word
        when = parse_time(body.get("date"), "payload.date")
        headline = first_text(context, ("title", "reason")) or rule_name or dedup_key
        return Alert(
            dedup_key=dedup_key,
            status=status,
            severity=self._severity(severity_word, group),
            summary=headline.strip().splitlines()[0],
            source_type=self.type,
            source_name=self.name,
            description=_description(context),
            resource=first_text(context, ("group",)),
            labels=labels,
            links=tuple(Link(sections[part][key], text) for part, key, text in _LINKS
                        if _is_url(sections[part].get(key))),
            started_at=when if status == "firing" else None,
            ended_at=when if status == "resolved" else None,
            name=rule_name.strip() or None,
            condition=condition,
        )

    def _severity(self, word: str, group: str) -> Severity:
        # The template's severity (a security rule's, or a constant the user typed) first;
        # else the action group's last word: metrics.threshold.warning, slo.burnRate.high.
        for candidate in (word, group.rsplit(".", 1)[-1]):
            found = SEVERITY_WORDS.get(candidate.strip().lower())
            if found:
                return found
        default: Severity = self.config.get("default_severity") or "warning"
        return default


def _description(context: Mapping[str, str]) -> str:
    parts: list[str] = []
    for key in ("message", "reason", "ruleDescription", "conditions"):
        text = (context.get(key) or "").strip()
        if text and text not in parts:
            parts.append(text)
    value = (context.get("value") or "").strip()
    if value:
        parts.append(f"Value: {value}")
    return "\n\n".join(parts)


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))
