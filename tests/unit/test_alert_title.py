"""An incident is titled by the alert's name, then what is wrong."""

from __future__ import annotations

import pytest

from baton.model import Alert


def alert(summary: str, name: str | None) -> Alert:
    return Alert(dedup_key="k1", status="firing", severity="critical", summary=summary,
                 source_type="alertmanager", source_name="prom", name=name)


@pytest.mark.parametrize(("name", "summary", "title"), [
    ("HighErrorRate", "5xx above 5% on checkout", "HighErrorRate: 5xx above 5% on checkout"),
    # The summary already names the alert (a Datadog title holds its monitor's name).
    ("CPU high", "[Triggered on {host:a}] CPU high", "[Triggered on {host:a}] CPU high"),
    ("cpu HIGH", "CPU high on web-1", "CPU high on web-1"),
    ("InstanceDown", "", "InstanceDown"),
    ("InstanceDown", "InstanceDown", "InstanceDown"),
    (None, "Disk full", "Disk full"),
    ("  ", "Disk full", "Disk full"),
    (None, "", "k1"),
    # Only the name as a word counts: "Up" inside "Backup" does not name the alert.
    ("Up", "Backup failed on db-1", "Up: Backup failed on db-1"),
    ("Load", "Unloaded queue on mq-2", "Load: Unloaded queue on mq-2"),
    ("CPU high (5m)", "[Warn] CPU high (5m)", "[Warn] CPU high (5m)"),
])
def test_title(name: str | None, summary: str, title: str) -> None:
    assert alert(summary, name).title == title


def test_name_round_trips_through_the_alert_document() -> None:
    a = alert("5xx above 5%", "HighErrorRate")
    assert Alert.from_dict(a.to_dict()) == a
    assert a.match_labels()["alertname"] == "HighErrorRate"
