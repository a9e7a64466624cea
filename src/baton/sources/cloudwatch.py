"""Amazon CloudWatch alarms, delivered by an SNS topic's HTTP(S) subscription.

SNS posts a signed envelope whose ``Message`` is the alarm as JSON text. ``prepare`` does
everything that needs I/O or the clock: it checks the topic, the message's age and the
signature (fetching SNS's certificate), and visits the SubscribeURL of a subscription
confirmation when its topic is one of ``topic_arns`` (without ``topic_arns`` it only logs
the URL: confirming any topic would let every AWS account subscribe Baton to its own).
``parse`` then trusts the envelope: the gateway calls ``prepare`` before
``parse`` on every request, and refuses the request when it cannot; anything else that
calls ``parse`` (the fixtures, ``baton simulate``) hands it a body it already trusts.

The dedup key is the alarm's ARN, the same in the ALARM and the OK message of one alarm.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote as urlquote

import aiohttp
import structlog
from yarl import URL

from .. import schema
from ..duration import parse_duration
from ..errors import AuthError, PayloadError
from ..model import Alert, Link, Severity
from ..plugin import Source
from . import _sns
from ._common import MAX_PROBLEMS, check_payload, first_text, parse_time, quote, stable_hash

log = structlog.get_logger("baton.sources.cloudwatch")
SCHEMA = "sources/cloudwatch.schema.json"

# CloudWatch alarms carry no severity. A "severity: <word>" in the alarm description (the
# one free text an alarm owner controls that reaches SNS) names one; else ``severity``.
_SEVERITY_IN_TEXT = re.compile(r"\bseverity\s*[:=]\s*([A-Za-z0-9_-]{1,32})", re.IGNORECASE)
SEVERITY_WORDS: dict[str, Severity] = {
    **dict.fromkeys(("critical", "crit", "p1"), "critical"),
    **dict.fromkeys(("error", "high", "major", "p2"), "error"),
    **dict.fromkeys(("warning", "warn", "medium", "minor", "p3"), "warning"),
    **dict.fromkeys(("info", "low", "p4", "p5"), "info"),
}
# arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>
_ALARM_ARN = re.compile(r"arn:(aws[a-z-]*):cloudwatch:([a-z0-9-]+):(\d+):alarm:(.+)", re.S)
_CONSOLE = {"aws": "console.aws.amazon.com", "aws-cn": "console.amazonaws.cn",
            "aws-us-gov": "console.amazonaws-us-gov.com"}
_TRIGGER_LABELS = (("MetricName", "metric_name"), ("Namespace", "namespace"),
                   ("Statistic", "statistic"), ("ExtendedStatistic", "statistic"),
                   ("Unit", "unit"), ("ComparisonOperator", "comparison_operator"),
                   ("Threshold", "threshold"), ("Period", "period"),
                   ("EvaluationPeriods", "evaluation_periods"),
                   ("DatapointsToAlarm", "datapoints_to_alarm"),
                   ("TreatMissingData", "treat_missing_data"))


class CloudWatchSource(Source):
    """``type: cloudwatch``: config keys ``severity``, ``topic_arns``, ``max_age``,
    ``signing_host_pattern``, ``confirm_subscriptions``, ``allow_http``."""

    type: ClassVar[str] = "cloudwatch"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "severity"
    content_types: ClassVar[tuple[str, ...]] = ("text/plain",)  # what SNS sends

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self.host_pattern = re.compile(config.get("signing_host_pattern")
                                       or _sns.DEFAULT_HOST_PATTERN)
        self.max_age = parse_duration(config.get("max_age", "1h"))
        self.topics = frozenset(config.get("topic_arns") or ())
        self.certificates = _sns.CertificateCache()

    async def prepare(self, raw: bytes, payload: Any, headers: Mapping[str, str],
                      now: float, http: aiohttp.ClientSession) -> str | None:
        check_payload(SCHEMA, payload, "SNS message")
        # Cheap refusals first: a forged body should not make Baton fetch anything.
        if self.topics and payload["TopicArn"] not in self.topics:
            raise AuthError(f"payload.TopicArn: {quote(payload['TopicArn'])} is not one of "
                            "the configured topic_arns", _sns.CHALLENGE)
        sent = parse_time(payload["Timestamp"], "payload.Timestamp")
        if sent is None or abs(now - sent.timestamp()) > self.max_age:
            raise AuthError("payload.Timestamp: older than max_age (a replay?) or in the "
                            "future", _sns.CHALLENGE)
        allow_http = bool(self.config.get("allow_http", False))
        await _sns.verify(payload, now, http, self.certificates, self.host_pattern,
                          allow_http)
        kind = payload["Type"]
        if kind == "SubscriptionConfirmation":
            url = _sns.allowed_url(payload.get("SubscribeURL") or "", self.host_pattern,
                                   allow_http)
            if url is None:
                raise AuthError("payload.SubscribeURL: not an https URL on an SNS host",
                                _sns.CHALLENGE)
            await self._subscription(payload["TopicArn"], url, http)
        elif kind == "UnsubscribeConfirmation":
            log.warning("SNS subscription ended", topic_arn=payload["TopicArn"])
        message_id: str = payload["MessageId"]
        return message_id

    async def _subscription(self, topic_arn: str, url: URL,
                            http: aiohttp.ClientSession) -> None:
        """Confirm a verified subscription, but only to a topic named in ``topic_arns``:
        any AWS account can sign a confirmation for a topic of its own. Otherwise the
        SubscribeURL is logged for a human (its Token only confirms this subscription,
        which is what visiting the URL is for; it grants nothing else)."""
        if topic_arn not in self.topics:  # prepare refused any other topic when it is set
            log.info("SNS subscription left unconfirmed: topic_arns is not set, so Baton "
                     "confirms no topic itself; visit subscribe_url if the topic is yours, "
                     "and add it to topic_arns", topic_arn=topic_arn, subscribe_url=str(url))
        elif not self.config.get("confirm_subscriptions", True):
            log.warning("SNS subscription left unconfirmed (confirm_subscriptions is "
                        "false): visit subscribe_url to confirm it", topic_arn=topic_arn,
                        subscribe_url=str(url))
        else:
            await _sns.confirm(url, http)
            log.info("SNS subscription confirmed", topic_arn=topic_arn)

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        check_payload(SCHEMA, payload, "SNS message")
        if payload["Type"] != "Notification":
            return []  # confirmations carry no alarm; prepare acted on them
        try:
            alarm = json.loads(payload["Message"])
            if "\\u" in payload["Message"]:
                # An unpaired surrogate escape would parse into text no store can hold.
                json.dumps(alarm, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
            raise PayloadError("payload.Message: not a CloudWatch alarm (not JSON)",
                               ["payload.Message: not JSON text"]) from None
        if schema.certainly_valid(SCHEMA, alarm, pointer="alarm"):
            return [self._alert(alarm, payload)]
        found = schema.problems(SCHEMA, alarm, pointer="alarm", prefix="payload.Message")
        if found:
            raise PayloadError(f"not a CloudWatch alarm: {found[0]}", found[:MAX_PROBLEMS])
        return [self._alert(alarm, payload)]

    def _alert(self, alarm: dict[str, Any], envelope: dict[str, Any]) -> Alert:
        name: str = alarm["AlarmName"]
        state: str = alarm["NewStateValue"]
        arn = alarm.get("AlarmArn") or ""
        arn_match = _ALARM_ARN.fullmatch(arn)
        labels = _labels(alarm, envelope, arn_match)
        word = _SEVERITY_IN_TEXT.search(alarm.get("AlarmDescription") or "")
        if word:
            labels["severity"] = word.group(1)
        default: Severity = self.config.get("severity") or "error"
        severity = SEVERITY_WORDS.get(labels.get("severity", "").lower(), default)
        # An alarm's ARN is unique and survives every state change; an ARN-less message
        # (older CloudWatch) still names the alarm by account, region and name.
        dedup_key = arn or "cloudwatch:" + stable_hash(
            [alarm.get("AWSAccountId"), alarm.get("Region"), name])
        changed = parse_time(alarm.get("StateChangeTime"), "payload.Message.StateChangeTime")
        return Alert(
            dedup_key=dedup_key,
            status="resolved" if state == "OK" else "firing",
            severity=severity,
            # The alarm's description is what its owner wrote about the problem; the
            # alarm's name leads the title either way.
            summary=next((line.strip() for line in
                          (alarm.get("AlarmDescription") or "").splitlines() if line.strip()),
                         name),
            source_type=self.type,
            source_name=self.name,
            description="\n\n".join(t for t in (alarm.get("AlarmDescription"),
                                                alarm.get("NewStateReason")) if t),
            resource=_resource(alarm.get("Trigger")),
            labels=labels,
            links=_links(arn_match),
            started_at=changed if state != "OK" else None,
            ended_at=changed if state == "OK" else None,
            condition="no_data" if state == "INSUFFICIENT_DATA" else "normal",
            name=name,
        )


def _labels(alarm: dict[str, Any], envelope: dict[str, Any],
            arn_match: re.Match[str] | None) -> dict[str, str]:
    labels = {"alertname": alarm["AlarmName"], "state": alarm["NewStateValue"],
              "topic_arn": envelope["TopicArn"]}
    for key, label in (("OldStateValue", "old_state"), ("AWSAccountId", "aws_account_id"),
                       ("Region", "region_name"), ("AlarmArn", "alarm_arn"),
                       ("AlarmRule", "alarm_rule")):
        text = first_text(alarm, (key,))
        if text:
            labels[label] = text
    if arn_match:
        labels["region"] = arn_match.group(2)
        labels.setdefault("aws_account_id", arn_match.group(3))
    trigger = alarm.get("Trigger")
    if isinstance(trigger, dict):
        labels["alarm_type"] = "metric_math" if trigger.get("Metrics") else "metric"
        for key, label in _TRIGGER_LABELS:
            value = trigger.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool) \
                    and value != "":
                labels[label] = str(value)
        for metric in trigger.get("Metrics") or ():
            # Metric math: the expression is what crossed the threshold, and the
            # namespace of the metrics it reads is what routes usually match on.
            if not isinstance(metric, dict):
                continue
            if isinstance(metric.get("Expression"), str) and "expression" not in labels:
                labels["expression"] = metric["Expression"]
            inner = (metric.get("MetricStat") or {}).get("Metric") or {}
            if isinstance(inner.get("Namespace"), str):
                labels.setdefault("namespace", inner["Namespace"])
        for dim_name, dim_value in _dimensions(trigger):
            labels.setdefault(f"dimension_{dim_name}", dim_value)
    elif "AlarmRule" in alarm:
        labels["alarm_type"] = "composite"
    return labels


def _dimensions(trigger: Any) -> list[tuple[str, str]]:
    """(name, value) of the metric's dimensions; for a metric math alarm, those of every
    metric the expression reads, each pair once, in the order CloudWatch listed them."""
    if not isinstance(trigger, dict):
        return []
    lists = [trigger.get("Dimensions")]
    for metric in trigger.get("Metrics") or ():
        stat = metric.get("MetricStat") if isinstance(metric, dict) else None
        inner = stat.get("Metric") if isinstance(stat, dict) else None
        if isinstance(inner, dict):
            lists.append(inner.get("Dimensions"))
    out: list[tuple[str, str]] = []
    for dims in lists:
        for dim in dims or ():
            pair = (dim.get("name"), dim.get("value")) if isinstance(dim, dict) else None
            if pair and isinstance(pair[0], str) and isinstance(pair[1], str) \
                    and pair not in out:
                out.append((pair[0], pair[1]))
    return out


def _resource(trigger: Any) -> str | None:
    dims = _dimensions(trigger)
    return ",".join(f"{n}={v}" for n, v in dims) if dims else None


def _links(arn_match: re.Match[str] | None) -> tuple[Link, ...]:
    if arn_match is None:
        return ()
    partition, region, _, name = arn_match.groups()
    host = _CONSOLE.get(partition)
    if host is None:
        return ()
    href = (f"https://{region}.{host}/cloudwatch/home?region={region}"
            f"#alarmsV2:alarm/{urlquote(name, safe='')}")
    return (Link(href, "CloudWatch alarm"),)
