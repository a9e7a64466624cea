"""A `limit` that str.isdigit() accepts but int() refuses (a superscript digit, more
digits than int() parses) is a 400 naming the parameter, not a 500."""
from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ClientFactory, config_dict, start_gateway

from baton.plugin import parse_retry_after


@pytest.mark.parametrize("path", ["/v1/incidents", "/v1/deliveries", "/v1/reports/recurring"])
@pytest.mark.parametrize("limit", ["\u00b2", "9" * 4301])
async def test_odd_limit_is_400(aiohttp_client: ClientFactory, tmp_path: Path, path: str,
                                limit: str) -> None:
    gw = await start_gateway(aiohttp_client, config_dict(tmp_path), tmp_path)
    resp = await gw.client.get(path, params={"limit": limit}, headers=gw.headers)
    assert resp.status == 400, (resp.status, await resp.text())


@pytest.mark.parametrize(("header", "seconds"), [("120", 120.0), ("\u00b2", None),
                                                 ("soon", None), ("", None)])
def test_a_vendors_odd_retry_after_is_ignored_not_raised(header: str,
                                                         seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds
