"""/openapi.json describes every route the app serves, and nothing it does not."""

from __future__ import annotations

from pathlib import Path

from helpers import ClientFactory, build, config_dict

from baton.app import create_app


async def test_every_route_is_documented(aiohttp_client: ClientFactory,
                                         tmp_path: Path) -> None:
    app = create_app(build(config_dict(tmp_path), tmp_path), run_dispatcher=False)
    # The web console (/ui) is HTML for people, not part of the JSON API's description.
    served = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
              if r.method != "HEAD" and r.resource is not None
              and not r.resource.canonical.startswith("/ui")}
    client = await aiohttp_client(app)
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(m, path) for path, ops in doc["paths"].items() for m in ops}
    assert served == documented
