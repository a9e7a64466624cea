"""The cloudwatch source's tables and corners the fixtures do not show: the severity
convention, states, the string SNS signs, which URLs may be fetched, certificate caching
(failures too, per-URL locking) and expiry, console links per partition."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from baton.errors import AuthError, PayloadError, StorageUnavailable
from baton.model import Alert
from baton.sources import _sns
from baton.sources.cloudwatch import CloudWatchSource

ARN = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:disk"


def envelope(**alarm: Any) -> dict[str, Any]:
    body = {"AlarmName": "disk", "NewStateValue": "ALARM", "AlarmArn": ARN, **alarm}
    return {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:eu-west-1:1:t",
            "Message": json.dumps(body), "Timestamp": "2026-01-01T00:00:00.000Z"}


def parse(config: dict[str, Any] | None = None, **alarm: Any) -> Alert:
    alerts = CloudWatchSource("aws", config or {}).parse(envelope(**alarm), {})
    assert len(alerts) == 1
    return alerts[0]


@pytest.mark.parametrize(("text", "severity", "label"), [
    ("Disk full. severity: critical", "critical", "critical"),
    ("severity=P1 page the DBA", "critical", "P1"),
    ("SEVERITY : High", "error", "High"),
    ("severity: warn", "warning", "warn"),
    ("severity: minor", "warning", "minor"),
    ("severity=low", "info", "low"),
    ("severity: sev9", "error", "sev9"),  # unknown word: the default, word kept
    ("no convention here", "error", None),
    (None, "error", None),
])
def test_severity_from_the_description(text: str | None, severity: str,
                                       label: str | None) -> None:
    alert = parse(AlarmDescription=text)
    assert alert.severity == severity
    assert alert.labels.get("severity") == label
    assert CloudWatchSource.severity_label == "severity", "severity_map reads this label"


def test_configured_default_severity() -> None:
    assert parse({"severity": "warning"}).severity == "warning"
    assert parse({"severity": "info"}, AlarmDescription="severity: critical").severity \
        == "critical"


@pytest.mark.parametrize(("state", "status", "condition"), [
    ("ALARM", "firing", "normal"), ("OK", "resolved", "normal"),
    ("INSUFFICIENT_DATA", "firing", "no_data"),
])
def test_states(state: str, status: str, condition: str) -> None:
    alert = parse(NewStateValue=state, StateChangeTime="2026-01-01T10:00:00.5+0000")
    assert (alert.status, alert.condition) == (status, condition)
    assert alert.dedup_key == ARN
    changed = alert.ended_at if state == "OK" else alert.started_at
    assert changed is not None and changed.isoformat() == "2026-01-01T10:00:00.500000+00:00"


def test_a_bad_state_change_time_names_the_field() -> None:
    with pytest.raises(PayloadError, match="StateChangeTime"):
        parse(StateChangeTime="yesterday")


@pytest.mark.parametrize(("arn", "href"), [
    ("arn:aws:cloudwatch:eu-west-1:1:alarm:a b/c",
     "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
     "#alarmsV2:alarm/a%20b%2Fc"),
    ("arn:aws-cn:cloudwatch:cn-north-1:1:alarm:x",
     "https://cn-north-1.console.amazonaws.cn/cloudwatch/home?region=cn-north-1"
     "#alarmsV2:alarm/x"),
    ("arn:aws-us-gov:cloudwatch:us-gov-west-1:1:alarm:x",
     "https://us-gov-west-1.console.amazonaws-us-gov.com/cloudwatch/home"
     "?region=us-gov-west-1#alarmsV2:alarm/x"),
])
def test_console_link_per_partition(arn: str, href: str) -> None:
    assert [link.href for link in parse(AlarmArn=arn).links] == [href]


def test_messages_that_are_not_alarms() -> None:
    src = CloudWatchSource("aws", {})
    for message in ("Hello world!", "[1, 2]", '{"AlarmName": 5}', "[" * 5000,
                    '{"AlarmName": "\\ud800", "NewStateValue": "OK"}'):
        with pytest.raises(PayloadError) as caught:
            src.parse(dict(envelope(), Message=message), {})
        assert "payload.Message" in str(caught.value)


def test_confirmations_make_no_alerts_and_text_plain_is_accepted() -> None:
    src = CloudWatchSource("aws", {})
    for kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        assert src.parse(dict(envelope(), Type=kind, Message="x"), {}) == []
    assert "text/plain" in CloudWatchSource.content_types


def test_string_to_sign_follows_the_documented_key_order() -> None:
    note = {"Type": "Notification", "MessageId": "id", "TopicArn": "t", "Subject": "s",
            "Message": "m\nline", "Timestamp": "ts", "Signature": "ignored"}
    assert _sns.string_to_sign(note) == (b"Message\nm\nline\nMessageId\nid\nSubject\ns\n"
                                         b"Timestamp\nts\nTopicArn\nt\nType\nNotification\n")
    no_subject = {k: v for k, v in note.items() if k != "Subject"}
    assert b"Subject" not in _sns.string_to_sign(no_subject)
    assert b"Subject" not in _sns.string_to_sign(dict(note, Subject=None))
    confirm = {"Type": "SubscriptionConfirmation", "MessageId": "id", "TopicArn": "t",
               "Message": "m", "Timestamp": "ts", "Token": "k", "SubscribeURL": "u",
               "Subject": "not signed"}
    assert _sns.string_to_sign(confirm) == (b"Message\nm\nMessageId\nid\nSubscribeURL\nu\n"
                                            b"Timestamp\nts\nToken\nk\nTopicArn\nt\n"
                                            b"Type\nSubscriptionConfirmation\n")
    with pytest.raises(AuthError, match="Token"):
        _sns.string_to_sign({k: v for k, v in confirm.items() if k != "Token"})


DEFAULT = re.compile(_sns.DEFAULT_HOST_PATTERN)


@pytest.mark.parametrize(("url", "ok"), [
    ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
    ("https://SNS.EU-WEST-1.AMAZONAWS.COM/x.pem", True),
    ("https://sns.cn-north-1.amazonaws.com.cn/x.pem", True),
    ("http://sns.us-east-1.amazonaws.com/x.pem", False),  # never over plain http
    ("https://sns.us-east-1.amazonaws.com.evil.example/x.pem", False),
    ("https://evil.example/sns.us-east-1.amazonaws.com/x.pem", False),
    ("https://sns.us-east-1.amazonaws.com@evil.example/x.pem", False),
    ("https://user:pw@sns.us-east-1.amazonaws.com/x.pem", False),
    ("https://s3.amazonaws.com/x.pem", False),
    ("file:///etc/passwd", False),
    ("not a url", False),
    ("", False),
])
def test_which_urls_may_be_fetched(url: str, ok: bool) -> None:
    assert (_sns.allowed_url(url, DEFAULT, allow_http=False) is not None) is ok


@pytest.mark.parametrize(("url", "ok"), [
    ("https://sns.us-west-2.amazonaws.com/"
     "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem", True),
    ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-0a1b.pem", True),
    ("https://sns.us-west-2.amazonaws.com/x/../SimpleNotificationService-0a.pem", True),
    ("https://sns.us-west-2.amazonaws.com/", False),
    ("https://sns.us-west-2.amazonaws.com/x.pem", False),
    ("https://sns.us-west-2.amazonaws.com/?Action=ListTopics", False),
    ("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0a.pem?Action=x", False),
    ("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0a.pem#x", False),
    ("https://sns.us-west-2.amazonaws.com/a/SimpleNotificationService-0a.pem", False),
    ("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0A.pem", False),
    ("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-.pem", False),
    ("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0g.pem", False),
    ("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0a.pem.txt", False),
    ("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0a%2Fx.pem", False),
    ("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-" + "a" * 65 + ".pem",
     False),
    ("http://sns.us-west-2.amazonaws.com/SimpleNotificationService-0a.pem", False),
    ("https://evil.example/SimpleNotificationService-0a.pem", False),
])
def test_which_certificate_urls_may_be_fetched(url: str, ok: bool) -> None:
    assert (_sns.allowed_cert_url(url, DEFAULT, allow_http=False) is not None) is ok


async def test_a_forged_certificate_path_is_refused_before_any_fetch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def fetch(url: Any, http: Any) -> bytes:
        raise AssertionError(f"fetched {url}")

    monkeypatch.setattr(_sns, "_fetch", fetch)
    signed = {"Type": "Notification", "MessageId": "i", "TopicArn": "t", "Message": "m",
              "Timestamp": "x", "SignatureVersion": "2", "Signature": "AAAA",
              "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/?Action=ListTopics"}
    with pytest.raises(AuthError, match="SigningCertURL"):
        await _sns.verify(signed, 0.0, None, _sns.CertificateCache(), DEFAULT,  # type: ignore[arg-type]
                          allow_http=False)


def test_allow_http_is_needed_for_http() -> None:
    local = re.compile(r"^127\.0\.0\.1$")
    assert _sns.allowed_url("http://127.0.0.1:8/c.pem", local, allow_http=False) is None
    assert _sns.allowed_url("http://127.0.0.1:8/c.pem", local, allow_http=True) is not None


def _pem(not_after_year: int) -> bytes:
    from datetime import UTC, datetime
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(not_after_year, 1, 1, tzinfo=UTC))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_certificate_loading_refuses_what_is_not_an_rsa_certificate() -> None:
    key, not_before, not_after = _sns._load(_pem(2030))
    assert isinstance(key, rsa.RSAPublicKey)
    assert (not_before.year, not_after.year) == (2020, 2030)
    for junk in (b"", b"<html>", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"):
        with pytest.raises(AuthError):
            _sns._load(junk)


async def test_expired_certificate_and_bad_base64_are_refused() -> None:
    class Cache(_sns.CertificateCache):
        async def get(self, url: Any, http: Any, now: float) -> Any:
            return _sns._load(_pem(2021))

    signed = {"Type": "Notification", "MessageId": "i", "TopicArn": "t", "Message": "m",
              "Timestamp": "x", "SignatureVersion": "2", "Signature": "AAAA",
              "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/"
                                "SimpleNotificationService-0123abc.pem"}
    with pytest.raises(AuthError, match="not valid now"):
        await _sns.verify(signed, 1_767_225_600.0, None, Cache(), DEFAULT,  # type: ignore[arg-type]
                          allow_http=False)
    with pytest.raises(AuthError, match="base64"):
        await _sns.verify(dict(signed, Signature="not base64!"), 0.0, None,  # type: ignore[arg-type]
                          Cache(), DEFAULT, allow_http=False)


async def test_certificate_cache_is_bounded_and_keeps_recently_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from yarl import URL

    pem = _pem(2030)
    fetched: list[str] = []

    async def fetch(url: URL, http: Any) -> bytes:
        fetched.append(url.path)
        return pem

    monkeypatch.setattr(_sns, "_fetch", fetch)
    cache = _sns.CertificateCache(size=2)
    for path in ("/a", "/b", "/a", "/c", "/a", "/b"):
        await cache.get(URL("https://sns.eu-west-1.amazonaws.com" + path), None, 0.0)  # type: ignore[arg-type]
    # /a stays (used again before /c came), /b was evicted by /c and is fetched again.
    assert fetched == ["/a", "/b", "/c", "/b"]


def test_fast_alarm_check_never_passes_what_jsonschema_refuses() -> None:
    """parse trusts the fast check on the alarm inside Message; it must agree with
    jsonschema on every fixture's alarm and on each one-field break of it."""
    from pathlib import Path

    from baton import schema

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "cloudwatch"
    odd: list[Any] = [None, True, 0, 1.5, "", "x", [], ["x"], {}, [{}], [{"name": 1}]]
    checked = 0
    for path in sorted(folder.glob("*.json")):
        message = json.loads(path.read_text("utf-8"))["payload"].get("Message", "")
        try:
            alarm = json.loads(message)
        except ValueError:
            continue
        if not isinstance(alarm, dict):
            continue
        variants = [alarm]
        for key in alarm:
            variants += [dict(alarm, **{key: value}) for value in odd]
        trigger = alarm.get("Trigger")
        if isinstance(trigger, dict):
            for key in trigger:
                variants += [dict(alarm, Trigger=dict(trigger, **{key: value})) for value in odd]
        for variant in variants:
            fast = schema.certainly_valid("sources/cloudwatch.schema.json", variant, "alarm")
            slow = schema.problems("sources/cloudwatch.schema.json", variant, "alarm") == []
            assert not fast or slow, variant
            checked += 1
    assert checked > 500


def _counting_fetch(monkeypatch: pytest.MonkeyPatch, outcome: dict[str, Any]
                    ) -> list[str]:
    """Replace the network fetch: each path maps to bytes or an exception to raise (or
    an asyncio.Event to wait for, then a 404)."""
    fetched: list[str] = []

    async def fetch(url: Any, http: Any) -> bytes:
        fetched.append(url.path)
        result = outcome[url.path]
        if isinstance(result, asyncio.Event):
            await result.wait()
            raise AuthError("SigningCertURL answered HTTP 404")
        if isinstance(result, Exception):
            raise result
        return result  # type: ignore[no-any-return]

    monkeypatch.setattr(_sns, "_fetch", fetch)
    return fetched


async def test_a_failed_certificate_url_is_remembered_briefly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from yarl import URL

    missing, down = "/SimpleNotificationService-404.pem", "/SimpleNotificationService-503.pem"
    fetched = _counting_fetch(monkeypatch, {
        missing: AuthError("SigningCertURL answered HTTP 404"),
        down: StorageUnavailable("SNS certificate host answered 503")})
    cache = _sns.CertificateCache()

    async def get(path: str, now: float) -> None:
        await cache.get(URL("https://sns.eu-west-1.amazonaws.com" + path), None, now)  # type: ignore[arg-type]

    for now in (1000.0, 1001.0, 1059.0):
        with pytest.raises(AuthError, match="404"):
            await get(missing, now)
    assert fetched == [missing], "a forged URL is fetched once a minute at most"
    with pytest.raises(AuthError):
        await get(missing, 1060.0)
    assert fetched == [missing] * 2
    with pytest.raises(AuthError):
        await get(missing, 900.0)  # the clock was set back: the memory is not trusted
    assert fetched == [missing] * 3

    for now in (2000.0, 2004.0):
        with pytest.raises(StorageUnavailable):
            await get(down, now)
    assert fetched.count(down) == 1
    with pytest.raises(StorageUnavailable):
        await get(down, 2005.0)  # SNS's own trouble is retried within seconds
    assert fetched.count(down) == 2


async def test_failure_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from yarl import URL

    paths = [f"/SimpleNotificationService-{i:x}.pem" for i in range(5)]
    fetched = _counting_fetch(monkeypatch, {p: AuthError("404") for p in paths})
    cache = _sns.CertificateCache(failed_size=3)
    for path in paths + paths[:1]:
        with pytest.raises(AuthError):
            await cache.get(URL("https://sns.eu-west-1.amazonaws.com" + path), None, 0.0)  # type: ignore[arg-type]
    assert len(cache._failed) == 3
    assert fetched == paths + paths[:1], "the oldest failure was forgotten"


async def test_concurrent_fetches_of_a_failing_url_make_one_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from yarl import URL

    gate = asyncio.Event()
    path = "/SimpleNotificationService-bad.pem"
    fetched = _counting_fetch(monkeypatch, {path: gate})
    cache = _sns.CertificateCache()
    url = URL("https://sns.eu-west-1.amazonaws.com" + path)
    tasks = [asyncio.create_task(cache.get(url, None, 0.0)) for _ in range(10)]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, AuthError) for r in results)
    assert fetched == [path]
    assert cache._locks == {}, "no lock outlives its fetch"


async def test_a_hanging_url_does_not_hold_up_another(monkeypatch: pytest.MonkeyPatch) -> None:
    from yarl import URL

    gate = asyncio.Event()
    slow, good = "/SimpleNotificationService-5105.pem", "/SimpleNotificationService-900d.pem"
    fetched = _counting_fetch(monkeypatch, {slow: gate, good: _pem(2030)})
    cache = _sns.CertificateCache()
    stuck = asyncio.create_task(
        cache.get(URL("https://sns.eu-west-1.amazonaws.com" + slow), None, 0.0))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert fetched == [slow]
    key, _, _ = await asyncio.wait_for(
        cache.get(URL("https://sns.eu-west-1.amazonaws.com" + good), None, 0.0), 1)  # type: ignore[arg-type]
    assert isinstance(key, rsa.RSAPublicKey) and not stuck.done()
    assert len(cache._locks) == 1
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert cache._locks == {}, "a cancelled fetch releases its lock entry too"
