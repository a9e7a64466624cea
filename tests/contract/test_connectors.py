"""The connector contract: every entry point in ``baton.connectors`` against its fake vendor.

Connectors are found through the entry points, as the gateway finds them, so a new one is
checked the moment it is registered. One without ``fakes/<type>.py`` fails; nothing here
skips. The fake-vendor interface is documented in ``fakes/__init__.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import importlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog.testing
from fakes import (
    FakeState,
    FakeVendor,
    Reply,
    closed_port,
    sample_incident,
    sample_notification,
    start,
)
from jsonschema import Draft202012Validator

from baton import plugin, schema
from baton.model import Notification, Outcome
from baton.secret import Secret

FAKES = Path(__file__).parent / "fakes"
NAMES = sorted(plugin.discover(plugin.CONNECTOR_GROUP))
FORMAT = logging.Formatter("%(name)s %(levelname)s %(message)s")
STATUS_TABLE = (
    [(s, "ok") for s in (200, 201, 202, 204)]
    + [(s, "retryable") for s in (408, 429, 500, 502, 503, 504)]
    + [(s, "permanent") for s in (400, 401, 403, 404, 409, 410, 422)]
)


def load_fake(name: str) -> FakeVendor:
    module = name.replace("-", "_")
    if not (FAKES / f"{module}.py").is_file():
        pytest.fail(f"connector {name!r} has no fake vendor: add tests/contract/fakes/"
                    f"{module}.py with make_app(state) (or serve(state)) and "
                    "config(base_url); every "
                    "registered connector must pass the contract", pytrace=False)
    fake: FakeVendor = importlib.import_module(f"fakes.{module}")
    return fake


def secrets_in(value: Any) -> list[str]:
    """Every Secret value in a config, however deeply nested."""
    if isinstance(value, Secret):
        return [value.reveal()]
    if isinstance(value, dict):
        return [s for v in value.values() for s in secrets_in(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in secrets_in(v)]
    return []


def as_config_text(value: Any) -> Any:
    """The config as a user writes it: each Secret becomes ``{env: NAME}``."""
    if isinstance(value, Secret):
        return {"env": "CONTRACT_SECRET"}
    if isinstance(value, dict):
        return {k: as_config_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_config_text(v) for v in value]
    return value


@dataclasses.dataclass
class Rig:
    """A connector wired to its fake vendor, remembering every text it produced."""

    name: str
    fake: FakeVendor
    state: FakeState
    base_url: str
    http: aiohttp.ClientSession
    sensitive: list[str]
    texts: list[str] = dataclasses.field(default_factory=list)

    def connector(self, base_url: str | None = None) -> plugin.Connector:
        cls = plugin.load(plugin.CONNECTOR_GROUP, self.name)
        config = self.fake.config(base_url or self.base_url)
        return cls(f"contract-{self.name}", config)  # type: ignore[no-any-return]

    async def send(self, notification: Notification, base_url: str | None = None) -> Outcome:
        outcome = await self.connector(base_url).send(notification, self.http)
        self.texts += [outcome.detail, repr(outcome)]
        return outcome

    def notification(self, action: str = "trigger", **kw: Any) -> Notification:
        return sample_notification(f"contract-{self.name}", action, **kw)


def retry_after(rig: Rig, seconds: float) -> float | None:
    """What the connector must report: the vendor's wait, or None for a protocol that has
    no Retry-After (SMTP), whose fake declares ``RETRY_AFTER = False``."""
    return seconds if getattr(rig.fake, "RETRY_AFTER", True) else None


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def rig(name: str, aiohttp_server: Any, caplog: pytest.LogCaptureFixture
              ) -> AsyncIterator[Rig]:
    fake = load_fake(name)
    state = FakeState()
    base_url, stop = await start(fake, state, aiohttp_server)
    sensitive = secrets_in(fake.config(base_url)) + list(getattr(fake, "SENSITIVE", ()))
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        async with aiohttp.ClientSession() as http:
            rig = Rig(name, fake, state, base_url, http, sensitive)
            yield rig
    state.release.set()
    if stop is not None:
        await stop()
    # The "never leaks a secret" clause, checked after every path the suite drives.
    # caplog keeps one handler per phase; at teardown only get_records sees the test's.
    records = caplog.get_records("setup") + caplog.get_records("call")
    texts = rig.texts + [repr(e) for e in logs] + [FORMAT.format(r) for r in records]
    for secret in sensitive:
        leaks = [t.replace(secret, "<SECRET>") for t in texts if secret in t]
        assert not leaks, f"a secret of {name} leaked into: {leaks}"


def test_fake_vendor_exists(name: str) -> None:
    fake = load_fake(name)
    assert callable(getattr(fake, "make_app", None) or getattr(fake, "serve", None))
    assert callable(fake.config)


def test_entry_point_loads_a_connector_of_that_type(name: str) -> None:
    cls = plugin.load(plugin.CONNECTOR_GROUP, name)
    assert isinstance(cls, type) and issubclass(cls, plugin.Connector)
    assert cls.type == name
    assert isinstance(cls.idempotent, bool)


def test_schema_is_valid_and_documents_itself(name: str) -> None:
    file = f"connectors/{name}.schema.json"
    assert schema.exists(file), f"schemas/{file} is missing"
    doc = schema.load(file)
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == f"{schema.BASE_URI}{file}"
    assert doc.get("additionalProperties") is False
    undocumented = [k for k, v in doc.get("properties", {}).items() if not v.get("description")]
    assert not undocumented, f"properties without description: {undocumented}"
    assert doc.get("examples"), "the schema needs examples; examples[0] is a full config"
    assert schema.problems(file, doc["examples"][0]) == []


def test_fake_config_uses_only_schema_keys(name: str) -> None:
    fake = load_fake(name)
    text = as_config_text(fake.config("http://127.0.0.1:9"))
    assert schema.problems(f"connectors/{name}.schema.json", text) == []


async def test_trigger_then_resolve(rig: Rig) -> None:
    first = await rig.send(rig.notification("trigger"))
    assert first.kind == "ok", first
    resolved = sample_incident("resolved")
    if first.external_ref is not None:  # what the dispatcher records and hands back
        resolved["external_refs"] = [first.external_ref.to_dict()]
    second = await rig.send(rig.notification("resolve", incident=resolved))
    assert second.kind == "ok", second
    assert [a.action for a in rig.state.accepted] == ["trigger", "resolve"]


async def test_retry_carries_the_same_idempotency_key(rig: Rig) -> None:
    """A retried trigger reaches the vendor under the same keys (the vendor folds it into
    the first: PagerDuty's dedup_key, a webhook receiver's Idempotency-Key), or the
    connector finds what the first attempt created and creates nothing (a ticket marker).
    Either way the vendor holds one thing, and both answers name the same reference."""
    first = rig.notification("trigger")
    retry = dataclasses.replace(first, attempt=2)
    one, two = await rig.send(first), await rig.send(retry)
    assert one.kind == two.kind == "ok", (one, two)
    assert one.external_ref == two.external_ref
    keys = [a.keys for a in rig.state.accepted]
    assert len(keys) in (1, 2) and all(k == keys[0] for k in keys) and all(keys[0])


@pytest.mark.parametrize(("status", "kind"), STATUS_TABLE)
async def test_status_table(rig: Rig, status: int, kind: str) -> None:
    rig.state.script(Reply(status))
    outcome = await rig.send(rig.notification())
    # A non-HTTP fake answers in its own protocol's code for the scripted HTTP status.
    expected = getattr(rig.fake, "status_for", lambda s: s)(status)
    assert (outcome.kind, outcome.status) == (kind, expected), outcome


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_in_seconds(rig: Rig, status: int) -> None:
    rig.state.script(Reply(status, {"Retry-After": "7"}))
    outcome = await rig.send(rig.notification())
    assert outcome.kind == "retryable" and outcome.retry_after == retry_after(rig, 7.0)


async def test_retry_after_as_http_date(rig: Rig) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    rig.state.script(Reply(429, {"Retry-After": when}))
    outcome = await rig.send(rig.notification())
    assert outcome.kind == "retryable"
    if retry_after(rig, 0.0) is None:
        assert outcome.retry_after is None
        return
    assert outcome.retry_after is not None
    assert 27.0 <= outcome.retry_after <= 31.0  # the header has whole-second precision


async def test_hanging_vendor_times_out(rig: Rig) -> None:
    rig.state.script(Reply(200, delay=30))
    connector = rig.connector()
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        async with asyncio.timeout(0.2):
            await connector.send(rig.notification(), rig.http)
    rig.texts.append(str(caught.value))
    assert time.monotonic() - started < 5


async def test_cancellation_is_not_swallowed(rig: Rig) -> None:
    rig.state.script(Reply(200, delay=30))
    task = asyncio.create_task(rig.connector().send(rig.notification(), rig.http))
    await asyncio.wait_for(rig.state.arrived.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_connection_refused_is_retryable(rig: Rig) -> None:
    outcome = await rig.send(rig.notification(), f"http://127.0.0.1:{closed_port()}")
    assert outcome.kind == "retryable" and outcome.detail, outcome



@pytest.mark.parametrize("shift", [0, 1, 2])
async def test_a_secret_straddling_the_cut_never_leaks(rig: Rig, shift: int,
                                                      caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    """A vendor echoing a secret in a long error: details are cut to a few hundred
    characters, and a secret straddling the cut must not leave its first characters behind
    (the Twilio token prefix of issue 10, finding 8). The answer repeats the secret so that
    one occurrence straddles whatever the cut position, and ``shift`` moves them all.
    The secrets are the config's: those a connector holds and a vendor may echo."""
    # The fake SMTP server's own debug log shows what it answers; that is the vendor's.
    caplog.set_level(logging.INFO, logger="mail.log")
    for secret in secrets_in(rig.fake.config(rig.base_url)):
        repeated = (secret + ".") * (900 // (len(secret) + 1) + 1)
        rig.state.script(Reply(400, message="." * shift + repeated))
        outcome = await rig.send(rig.notification())
        assert outcome.kind == "permanent", outcome
        if "://" in secret:  # a URL's prefix is the vendor's address; its token is listed
            continue
        prefix = secret[:max(4, min(8, len(secret) // 2))]
        leaks = [t.replace(prefix, "<PREFIX>") for t in rig.texts if prefix in t]
        assert not leaks, f"a secret prefix of {rig.name} leaked into: {leaks}"
