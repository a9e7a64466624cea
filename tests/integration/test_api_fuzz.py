"""Fuzzing the HTTP API from its own description: every operation of /openapi.json, with
requests generated from the schema (valid ones, and ones that break it), against a real
``baton serve``. Nothing may answer 5xx: bad input is a 4xx problem, never a crash.

Bounded: ``EXAMPLES`` requests per operation and mode, derandomized (the same requests in
every run), so CI stays fast and a failure reproduces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from procs import Baton, WebhookSink, baton_config, write_yaml

pytestmark = pytest.mark.integration

EXAMPLES = 25
API_TOKEN = "fuzz-api-token-0123456789abcdef"
SPEC: dict[str, Any] = json.loads(
    resources.files("baton.schemas").joinpath("openapi.json").read_text("utf-8"))
OPERATIONS = [r.ok() for r in schemathesis.openapi.from_dict(SPEC).get_all_operations()]


@pytest.fixture(scope="module")
def baton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baton]:
    tmp = tmp_path_factory.mktemp("fuzz")
    sink = WebhookSink().start()
    data = baton_config(tmp / "baton.db", sink.url)
    data["api"] = {"tokens": [{"name": "fuzz", "token": {"env": "API_TOKEN"}}]}
    data["silences"] = [{"matchers": ['service="maintenance"'],
                         "ends": "2099-01-01T00:00:00Z"}]
    b = Baton(tmp, write_yaml(tmp / "baton.yaml", data), tmp / "baton.db",
              env={"PROM_TOKEN": "fuzz-source-token", "API_TOKEN": API_TOKEN})
    b.start()
    try:
        yield b
    finally:
        b.stop(grace=5.0)
        sink.stop()


def _headers(path: str) -> dict[str, str]:
    token = "fuzz-source-token" if path.startswith("/v1/ingest/") else API_TOKEN
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE,
                                  schemathesis.GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
@pytest.mark.parametrize("operation", OPERATIONS,
                         ids=[f"{o.method.upper()} {o.path}" for o in OPERATIONS])
def test_no_operation_answers_5xx(baton: Baton, operation: Any,
                                  mode: schemathesis.GenerationMode) -> None:
    failures: list[str] = []
    session = requests.Session()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=baton.base_url, session=session,
                             headers=_headers(operation.path), timeout=10)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} for {case.as_curl_command()}: "
                            f"{response.text[:300]}")

    try:
        run()
    except Unsatisfiable:
        # No request can break this operation's description (no parameters, or none
        # constrained): there is nothing invalid to send.
        assert mode is schemathesis.GenerationMode.NEGATIVE
    finally:
        session.close()
    assert failures == [], "\n".join(failures[:5])
    assert baton.alive(), baton.log_tail()


def test_the_description_served_is_the_one_fuzzed(baton: Baton) -> None:
    served = requests.get(f"{baton.base_url}/openapi.json", timeout=5).json()
    assert json.dumps(served, sort_keys=True) == json.dumps(SPEC, sort_keys=True)
    assert len(OPERATIONS) >= 20
    assert Path(baton.log_path).exists()
