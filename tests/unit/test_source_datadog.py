"""The Datadog adapter's tables and corners the fixtures leave out: priorities and
transitions, groups and their scope spellings, test notifications, unfilled variables."""

from __future__ import annotations

from typing import Any

import pytest

from baton.errors import PayloadError
from baton.model import iso
from baton.sources.datadog import DatadogSource


def parse(config: dict[str, Any] | None = None, **fields: Any) -> Any:
    body = {"alert_id": "1234", "alert_transition": "Triggered",
            "event_title": "[Triggered on {host:web-1}] CPU high", "date": "1700000000000",
            "alert_scope": "host:web-1", **fields}
    (alert,) = DatadogSource("dd", config or {}).parse(body, {})
    return alert


@pytest.mark.parametrize(("priority", "severity"), [
    ("P1", "critical"), ("P2", "error"), ("P3", "warning"), ("P4", "info"), ("P5", "info"),
    ("p1", "critical"), (" P2 ", "error"), ("", "error"), ("P9", "error"),
    ("$ALERT_PRIORITY", "error")])
def test_priority_table(priority: str, severity: str) -> None:
    alert = parse(alert_priority=priority)
    assert alert.severity == severity
    if priority.strip() and not priority.startswith("$"):
        assert alert.labels["priority"] == priority.strip(), "the original stays for severity_map"


def test_default_severity_is_configurable() -> None:
    assert parse({"default_severity": "critical"}).severity == "critical"
    assert parse({"default_severity": "critical"}, alert_priority="P4").severity == "info"


@pytest.mark.parametrize("transition", ["Warn", "Re-Warn", "warn"])
def test_warn_is_a_warning_whatever_the_priority(transition: str) -> None:
    alert = parse(alert_transition=transition, alert_priority="P1")
    assert (alert.status, alert.severity, alert.condition) == ("firing", "warning", "normal")


@pytest.mark.parametrize(("transition", "status", "condition"), [
    ("Triggered", "firing", "normal"), ("Re-Triggered", "firing", "normal"),
    ("Renotify", "firing", "normal"), ("Recovered", "resolved", "normal"),
    ("No Data", "firing", "no_data"), ("Re-No Data", "firing", "no_data"),
    ("Null", "firing", "normal"), ("Something New", "firing", "normal")])
def test_transitions(transition: str, status: str, condition: str) -> None:
    alert = parse(alert_transition=transition)
    assert (alert.status, alert.condition) == (status, condition)
    assert alert.labels["transition"] == transition


def test_resolve_sets_ended_at_not_started_at() -> None:
    firing, resolved = parse(), parse(alert_transition="Recovered", date="1700000600000")
    assert iso(firing.started_at) == "2023-11-14T22:13:20.000Z" and firing.ended_at is None
    assert resolved.started_at is None and iso(resolved.ended_at) == "2023-11-14T22:23:20.000Z"


def test_scope_spellings_are_one_group_and_groups_differ() -> None:
    a = parse(alert_scope="role:db, availability-zone:us-east-1a")
    b = parse(alert_scope="availability-zone:us-east-1a,role:db")
    c = parse(alert_scope="availability-zone:us-east-1b,role:db")
    assert a.dedup_key == b.dedup_key == "datadog:1234:availability-zone:us-east-1a,role:db"
    assert c.dedup_key != a.dedup_key
    assert parse(alert_scope="*").dedup_key == parse(alert_scope="").dedup_key == "datadog:1234"


def test_other_monitor_same_scope_is_another_problem() -> None:
    assert parse(alert_id="1235").dedup_key != parse().dedup_key


def test_numbers_from_an_unquoted_template_are_read_as_text() -> None:
    alert = parse(alert_id=1234, date=1700000000000)
    assert alert.dedup_key == "datadog:1234:host:web-1"
    assert iso(alert.started_at) == "2023-11-14T22:13:20.000Z"


def test_test_notifications_never_share_the_real_key() -> None:
    real = parse()
    test = parse(event_title="[TEST] [Triggered on {host:web-1}] CPU high")
    assert test.condition == "test" and real.condition == "normal"
    assert test.dedup_key == "datadog-test:1234:host:web-1" != real.dedup_key
    recovered = parse(event_title="[TEST] [Recovered on {host:web-1}] CPU high",
                      alert_transition="Recovered")
    assert (recovered.status, recovered.dedup_key) == ("resolved", test.dedup_key)


def test_tags_become_labels_and_fields() -> None:
    alert = parse(tags="env:prod, service:api,team:x,team:y,monitor,url:http://a:1/b,priority:9",
                  hostname="")
    assert alert.labels["team"] == "x,y"
    assert alert.labels["url"] == "http://a:1/b"
    assert "monitor" not in alert.labels and "priority" not in alert.labels
    assert (alert.service, alert.environment, alert.resource) == ("api", "prod", "web-1")
    assert parse(hostname="db-1").resource == "db-1"


def test_unfilled_variables_count_as_empty() -> None:
    alert = parse(snapshot="$SNAPSHOT", tags="$TAGS", hostname="$HOSTNAME",
                  alert_scope="$ALERT_SCOPE")
    assert alert.dedup_key == "datadog:1234"
    assert alert.links == () and "tags" not in alert.labels and alert.resource is None


@pytest.mark.parametrize("value", ["", "  ", "$ALERT_ID"])
def test_a_missing_monitor_id_keys_on_the_monitor_name(value: str) -> None:
    alert = parse(alert_id=value)
    assert alert.dedup_key == "datadog:name:CPU high:host:web-1"
    assert alert.name == "CPU high" and "monitor_id" not in alert.labels


@pytest.mark.parametrize("value", ["", "  ", "$ALERT_TRANSITION"])
def test_a_missing_transition_is_read_from_the_title(value: str) -> None:
    assert parse(alert_transition=value).labels["transition"] == "Triggered"
    recovered = parse(alert_transition=value, event_title="[Recovered on {host:web-1}] CPU high")
    assert recovered.status == "resolved"
    assert parse(alert_transition=value, event_title="CPU high").status == "firing"


@pytest.mark.parametrize("value", ["", "  ", "$ALERT_ID"])
def test_nothing_to_key_on_is_refused(value: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(alert_id=value, event_title="$EVENT_TITLE")
    assert "payload.alert_id" in str(caught.value)


@pytest.mark.parametrize(("title", "transition", "scope", "name", "test"), [
    ("[Triggered on {host:a,env:b}] CPU high", "Triggered", "host:a,env:b", "CPU high", False),
    ("[P2] [Re-Triggered] CPU [x] high", "Re-Triggered", "", "CPU [x] high", False),
    ("[TEST] [No Data on {a:[1]}] Lag", "No Data", "a:[1]", "Lag", True),
    ("[Triggered] [TEST] Host Cluster Alert", "Triggered", "", "Host Cluster Alert", True),
    ("[unclosed CPU", "", "", "[unclosed CPU", False),
    ("Plain name", "", "", "Plain name", False),
    ("[" * 50_000, "", "", "[" * 50_000, False),
])
def test_titles(title: str, transition: str, scope: str, name: str, test: bool) -> None:
    from baton.sources._datadog_body import read_title

    assert read_title(title) == (transition, scope, name, test)


def test_published_templates_read_alike() -> None:
    keep = {"monitor_id": "9", "alert_transition": "Recovered", "title": "[Recovered] Lag",
            "scopes": "host:a", "severity": "P1", "url": "https://app.datadoghq.eu/event/x"}
    camel = {"alertId": "9", "alertTransition": "Recovered", "title": "[Recovered] Lag",
             "alertScope": "host:a", "alert_priority": "P1", "priority": "normal"}
    a, b = (DatadogSource("dd", {}).parse(body, {})[0] for body in (keep, camel))
    assert a.dedup_key == b.dedup_key == "datadog:9:host:a"
    assert (a.status, a.severity, a.name) == (b.status, b.severity, b.name) == (
        "resolved", "critical", "Lag")
    assert a.links[0].href == "https://app.datadoghq.eu/monitors/9"


def test_date_falls_back_to_last_updated_and_bad_dates_are_refused() -> None:
    assert iso(parse(date="", last_updated="1700000000000").started_at) \
        == "2023-11-14T22:13:20.000Z"
    assert parse(date="", last_updated="").started_at is None
    with pytest.raises(PayloadError) as caught:
        parse(date="yesterday")
    assert "payload.date" in str(caught.value)


def test_links_follow_the_datadog_site() -> None:
    alert = parse(link="https://app.datadoghq.eu/event/jump_to?event_id=5",
                  snapshot="https://p.datadoghq.eu/snapshot/x.png")
    assert [(link.href, link.text) for link in alert.links] == [
        ("https://app.datadoghq.eu/monitors/1234", "Monitor"),
        ("https://app.datadoghq.eu/event/jump_to?event_id=5", "Event"),
        ("https://p.datadoghq.eu/snapshot/x.png", "Snapshot")]
    assert parse(link="javascript:alert(1)").links == ()


def test_description_drops_markdown_markers_and_adds_the_status() -> None:
    alert = parse(event_msg="%%%\nDisk full @webhook-baton\n%%%", alert_status="x > 0.9")
    assert alert.description == "Disk full @webhook-baton\n\nx > 0.9"
    assert parse(body="from the default template").description == "from the default template"
    assert parse(event_title="", title="", alert_title="").summary == "Datadog monitor 1234"


@pytest.mark.parametrize("key", ["alert_id", "alertId", "monitor_id", "monitorId", "title",
                                 "event_title", "eventTitle", "alert_title", "alertTitle",
                                 "monitor_name", "monitorName"])
def test_any_one_identifying_key_is_enough(key: str) -> None:
    """The schema's variants and the adapter agree on what is needed: one key."""
    [alert] = DatadogSource("dd", {}).parse({key: "5"}, {})
    assert alert.status == "firing" and alert.dedup_key in ("datadog:5", "datadog:name:5")


@pytest.mark.parametrize("key", ["event_msg", "body", "eventMessage", "text_only_msg",
                                 "message"])
def test_a_message_with_the_monitor_link_is_enough(key: str) -> None:
    body = {key: "%%%\n[[Monitor Status](https://app.datadoghq.eu/monitors/77?from_ts=1)]\n%%%"}
    [alert] = DatadogSource("dd", {}).parse(body, {})
    assert alert.dedup_key == "datadog:77"
    assert alert.links[0].href == "https://app.datadoghq.eu/monitors/77"


def test_a_link_to_another_monitor_in_the_message_is_not_this_monitors_id() -> None:
    """The monitor's own message comes first in $EVENT_MSG and may link other monitors
    ("see also"); Datadog's footer names this one. Keying on the first link would make
    this monitor's alerts open, and its recoveries resolve, the other monitor's incident."""
    message = ("%%%\nDisk full. See also [the parent](https://app.datadoghq.com/monitors/111)"
               "\n\n- - -\n\n[[Monitor Status](https://app.datadoghq.com/monitors/222?"
               "from_ts=1)] · [[Edit Monitor](https://app.datadoghq.com/monitors/222/edit)]"
               "\n%%%")
    [alert] = DatadogSource("dd", {}).parse({"title": "[Triggered] Disk full",
                                             "body": message}, {})
    assert alert.dedup_key == "datadog:222"
    assert alert.links[0].href == "https://app.datadoghq.com/monitors/222"


def test_links_to_several_monitors_without_the_footer_name_none_of_them() -> None:
    message = ("See [a](https://app.datadoghq.com/monitors/111) and "
               "[b](https://app.datadoghq.com/monitors/333)")
    [alert] = DatadogSource("dd", {}).parse({"title": "[Triggered] Disk full",
                                             "body": message}, {})
    assert alert.dedup_key == "datadog:name:Disk full"
