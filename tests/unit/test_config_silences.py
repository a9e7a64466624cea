"""The ``silences`` config section: parsed, checked like API silences, applied, listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import ClientFactory, Sink, alert, build, config_dict, minimal, start_gateway

from baton.clock import FakeClock
from baton.errors import ConfigError
from baton.model import parse_iso

DRILL = {"matchers": ['service="db"'], "starts": "2026-12-24T22:00:00Z",
         "ends": "2026-12-25T02:00:00Z", "comment": "failover drill", "created_by": "ops"}


def problems(data: dict[str, Any], tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        build(data, tmp_path)
    return err.value.problems


def test_silences_are_read(tmp_path: Path) -> None:
    (s,) = build(minimal(silences=[DRILL]), tmp_path).silences
    assert [str(m) for m in s.matchers] == ['service="db"']
    start, end = parse_iso(DRILL["starts"]), parse_iso(DRILL["ends"])
    assert start is not None and end is not None
    assert (s.starts_at, s.ends_at) == (start.timestamp(), end.timestamp())
    assert (s.comment, s.created_by) == ("failover drill", "ops")
    again = build(minimal(silences=[dict(DRILL)]), tmp_path).silences[0]
    assert s.id == again.id and s.id.startswith("config-")  # stable across loads


@pytest.mark.parametrize(("silence", "expected"), [
    ({"matchers": ['service="db"']}, "silences[0]: 'ends' is a required property"),
    ({**DRILL, "matchers": ['x=~".*"']}, "silences[0].matchers: at least one matcher"),
    ({**DRILL, "matchers": ['x=~"("']}, "silences[0].matchers[0]: invalid matcher"),
    ({**DRILL, "ends": "tomorrow"}, "silences[0].ends: not an RFC 3339 time"),
    ({**DRILL, "ends": "2026-12-24T21:00:00Z"}, "silences[0].ends: must be after starts"),
    ({**DRILL, "until": "x"}, "silences[0].until: unknown key"),
])
def test_a_bad_silence_is_a_config_error_naming_its_path(
        tmp_path: Path, silence: dict[str, Any], expected: str) -> None:
    found = problems(minimal(silences=[silence]), tmp_path)
    assert any(p.startswith(expected) for p in found), found


async def test_config_silences_mute_and_are_listed_read_only(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = config_dict(tmp_path, receiver.url)
    data["silences"] = [{"matchers": ['service="db"'], "ends": "2026-01-01T01:00:00Z",
                         "comment": "upgrade"}]
    gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock)
    answer = await gw.ingest(alert("db1", service="db"))
    doc = await gw.incident(answer["incidents"][0])
    (listed,) = (await gw.get("/v1/silences"))["silences"]
    assert doc["suppressed"] == {"reason": "silenced", "silence_id": listed["id"]}
    assert (listed["origin"], listed["state"], listed["created_by"]) == (
        "config", "active", "config")
    assert (await gw.get(f"/v1/silences/{listed['id']}"))["comment"] == "upgrade"
    resp = await gw.client.delete(f"/v1/silences/{listed['id']}")
    assert resp.status == 409
    assert "defined in the config file" in (await resp.json())["detail"]
    assert (await gw.get("/v1/silences?state=expired"))["silences"] == []
