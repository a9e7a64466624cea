"""CloudWatch alarms through the real gateway, signed as SNS signs them.

A certificate is generated per test module and served, like SNS's, at a
``/SimpleNotificationService-<hex>.pem`` path of a local server that also plays SNS's
SubscribeURL; messages are signed with its key (SignatureVersion 1 and 2). The source is
configured to trust only 127.0.0.1 (``allow_http`` is its test-only switch).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from helpers import ClientFactory, Gateway, ServerFactory, config_dict, start_gateway, table_counts
from structlog.testing import CapturingLogger

from baton.clock import FakeClock
from baton.sources import cloudwatch
from baton.sources._sns import string_to_sign

TOPIC = "arn:aws:sns:eu-west-1:123456789012:baton-alarms"
ARN = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:api-5xx"
HASHES = {"1": hashes.SHA1(), "2": hashes.SHA256()}
CERT_PATH = "/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"


@dataclass
class FakeSns:
    """Serves the signing certificate and answers SubscribeURL, counting both."""

    pem: bytes
    key: rsa.RSAPrivateKey
    base: str = ""
    cert_gets: int = 0
    confirms: list[str] = field(default_factory=list)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    slow_release: asyncio.Event = field(default_factory=asyncio.Event)

    async def cert(self, request: web.Request) -> web.Response:
        self.cert_gets += 1
        return web.Response(body=self.pem, content_type="application/x-x509-ca-cert")

    async def broken(self, request: web.Request) -> web.Response:
        self.cert_gets += 1
        return web.Response(status=int(request.match_info["status"]))

    async def slow(self, request: web.Request) -> web.Response:
        """A certificate URL that hangs until the test releases it, then is not found."""
        self.cert_gets += 1
        self.slow_started.set()
        await self.slow_release.wait()
        return web.Response(status=404)

    async def confirm(self, request: web.Request) -> web.Response:
        self.confirms.append(request.query.get("Token", ""))
        return web.Response(text="<ConfirmSubscriptionResponse/>", content_type="text/xml")

    def sign(self, envelope: dict[str, Any], version: str = "1",
             cert_url: str | None = None) -> dict[str, Any]:
        signed = dict(envelope, SignatureVersion=version,
                      SigningCertURL=cert_url or self.base + CERT_PATH)
        signature = self.key.sign(string_to_sign(signed), padding.PKCS1v15(), HASHES[version])
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed


@pytest.fixture(scope="module")
def keypair() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2027, 1, 1, tzinfo=UTC))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
async def sns(aiohttp_server: ServerFactory,
              keypair: tuple[rsa.RSAPrivateKey, bytes]) -> AsyncIterator[FakeSns]:
    fake = FakeSns(pem=keypair[1], key=keypair[0])
    app = web.Application()
    app.router.add_get(CERT_PATH, fake.cert)
    app.router.add_get("/SimpleNotificationService-5105.pem", fake.slow)
    app.router.add_get("/", fake.confirm)
    app.router.add_get(r"/SimpleNotificationService-{status:\d{3}}.pem", fake.broken)
    # The same certificate at every other path: whatever a forged SigningCertURL names, only
    # the source's own checks can refuse it.
    app.router.add_get("/{anything:.*}", fake.cert)
    server = await aiohttp_server(app)
    fake.base = str(server.make_url("")).rstrip("/")
    yield fake
    fake.slow_release.set()


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, clock: FakeClock, tmp_path: Path) -> Gateway:
    return await gateway(aiohttp_client, clock, tmp_path)


async def gateway(aiohttp_client: ClientFactory, clock: FakeClock, tmp_path: Path,
                  topic_arns: list[str] | None = None, **extra: Any) -> Gateway:
    """The source trusting 127.0.0.1, configured with ``topic_arns`` (default: [TOPIC];
    [] leaves the key out)."""
    data = config_dict(tmp_path)
    topics = [TOPIC] if topic_arns is None else topic_arns
    data["sources"]["aws"] = {"type": "cloudwatch", "auth": {"type": "none"},
                              "signing_host_pattern": r"^127\.0\.0\.1$", "allow_http": True,
                              **({"topic_arns": topics} if topics else {}), **extra}
    return await start_gateway(aiohttp_client, data, tmp_path, clock=clock,
                               environ={"BATON_ALLOW_TEST_SETTINGS": "1"})  # allow_http


def stamp(clock: FakeClock) -> str:
    return datetime.fromtimestamp(clock.now(), UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def notification(clock: FakeClock, state: str = "ALARM", message_id: str = "m-1") -> dict[str, Any]:
    alarm = {"AlarmName": "api-5xx", "AlarmDescription": "5xx on the API. severity: critical",
             "AWSAccountId": "123456789012", "NewStateValue": state,
             "NewStateReason": "Threshold Crossed: 1 datapoint [12.0] was greater than the "
                               "threshold (5.0).",
             "StateChangeTime": "2025-12-31T23:59:00.000+0000", "Region": "EU (Ireland)",
             "AlarmArn": ARN, "OldStateValue": "OK",
             "Trigger": {"MetricName": "HTTPCode_Target_5XX_Count",
                         "Namespace": "AWS/ApplicationELB", "Statistic": "SUM",
                         "Dimensions": [{"value": "app/api/50dc6c495c0c9188",
                                         "name": "LoadBalancer"}],
                         "Period": 60, "EvaluationPeriods": 1,
                         "ComparisonOperator": "GreaterThanThreshold", "Threshold": 5.0}}
    return {"Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC,
            "Subject": f'{state}: "api-5xx" in EU (Ireland)', "Message": json.dumps(alarm),
            "Timestamp": stamp(clock)}


async def post(gw: Gateway, body: dict[str, Any], status: int) -> dict[str, Any]:
    resp = await gw.client.post("/v1/ingest/aws", data=json.dumps(body), headers={
        "Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": body["Type"],
        "x-amz-sns-message-id": body["MessageId"], "x-amz-sns-topic-arn": body["TopicArn"]})
    text = await resp.text()
    assert resp.status == status, text
    return json.loads(text)  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", ["1", "2"])
async def test_signed_alarm_opens_and_ok_resolves_with_one_certificate_fetch(
        gw: Gateway, sns: FakeSns, clock: FakeClock, version: str) -> None:
    opened = await post(gw, sns.sign(notification(clock), version), 202)
    assert opened["accepted"] == 1 and len(opened["incidents"]) == 1
    incident = await gw.incident(opened["incidents"][0])
    assert incident["status"] == "triggered" and incident["severity"] == "critical"
    assert incident["alerts"][0]["resource"] == "LoadBalancer=app/api/50dc6c495c0c9188"
    clock.advance(60)
    resolved = await post(gw, sns.sign(notification(clock, "OK", "m-2"), version), 202)
    assert resolved["incidents"] == opened["incidents"]
    assert (await gw.incident(opened["incidents"][0]))["status"] == "resolved"
    assert sns.cert_gets == 1, "the certificate is cached by URL"


async def test_tampered_message_is_refused_and_nothing_is_stored(
        gw: Gateway, sns: FakeSns, clock: FakeClock, tmp_path: Path) -> None:
    body = sns.sign(notification(clock))
    body["Message"] = body["Message"].replace("api-5xx", "api-ok")
    problem = await post(gw, body, 401)
    assert "signature" in problem["detail"]
    assert table_counts(tmp_path)["events"] == 0


async def test_certificate_on_another_host_is_never_fetched(
        gw: Gateway, sns: FakeSns, clock: FakeClock, tmp_path: Path) -> None:
    # The same server under another name: reachable, but not a host the source trusts.
    elsewhere = sns.base.replace("127.0.0.1", "localhost") + CERT_PATH
    await post(gw, sns.sign(notification(clock), cert_url=elsewhere), 401)
    await post(gw, sns.sign(notification(clock), cert_url="ftp://127.0.0.1" + CERT_PATH), 401)
    assert sns.cert_gets == 0
    assert table_counts(tmp_path)["events"] == 0


@pytest.mark.parametrize("claimed", ["1", "2", "3", ""])
async def test_wrong_signature_version_is_refused(gw: Gateway, sns: FakeSns, clock: FakeClock,
                                                  claimed: str) -> None:
    signed_with = "2" if claimed == "1" else "1"
    body = dict(sns.sign(notification(clock), signed_with), SignatureVersion=claimed)
    await post(gw, body, 401)


async def test_missing_signature_stale_message_and_foreign_topic_are_refused(
        gw: Gateway, sns: FakeSns, clock: FakeClock, tmp_path: Path) -> None:
    body = sns.sign(notification(clock))
    await post(gw, {k: v for k, v in body.items() if k != "Signature"}, 401)
    await post(gw, sns.sign(dict(notification(clock), TopicArn=TOPIC + "-other")), 401)
    assert sns.cert_gets == 0, "cheap checks come before any fetch"
    old = sns.sign(notification(clock))
    clock.advance(3601)  # default max_age is 1h: a captured message cannot be replayed later
    await post(gw, old, 401)
    assert table_counts(tmp_path)["events"] == 0


async def test_redelivered_message_id_is_taken_once(gw: Gateway, sns: FakeSns,
                                                    clock: FakeClock) -> None:
    body = sns.sign(notification(clock))
    first = await post(gw, body, 202)
    again = await post(gw, body, 202)
    assert again == {"accepted": 0, "incidents": [], "replayed": True}
    assert (await gw.incident(first["incidents"][0]))["event_count"] == 1


async def test_subscription_confirmation_visits_subscribe_url_once(
        gw: Gateway, sns: FakeSns, clock: FakeClock) -> None:
    body = {"Type": "SubscriptionConfirmation", "MessageId": "c-1", "Token": "tok-1",
            "TopicArn": TOPIC, "Timestamp": stamp(clock),
            "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
            "SubscribeURL": f"{sns.base}/?Action=ConfirmSubscription&TopicArn={TOPIC}"
                            "&Token=tok-1"}
    answer = await post(gw, sns.sign(body), 202)
    assert answer == {"accepted": 0, "incidents": []}
    assert sns.confirms == ["tok-1"]
    # A SubscribeURL elsewhere is never visited, even in a validly signed message.
    other = dict(body, MessageId="c-2",
                 SubscribeURL=sns.base.replace("127.0.0.1", "localhost") + "/?Token=x")
    await post(gw, sns.sign(other), 401)
    assert sns.confirms == ["tok-1"]


async def test_unsubscribe_confirmation_makes_no_alert(gw: Gateway, sns: FakeSns,
                                                       clock: FakeClock) -> None:
    body = {"Type": "UnsubscribeConfirmation", "MessageId": "u-1", "Token": "tok-2",
            "TopicArn": TOPIC, "Timestamp": stamp(clock), "Message": "You have chosen to "
            "deactivate subscription.", "SubscribeURL": f"{sns.base}/?Token=tok-2"}
    assert await post(gw, sns.sign(body), 202) == {"accepted": 0, "incidents": []}
    assert sns.confirms == []


async def test_concurrent_messages_fetch_the_certificate_once(gw: Gateway, sns: FakeSns,
                                                              clock: FakeClock) -> None:
    bodies = [sns.sign(notification(clock, message_id=f"m-{i}")) for i in range(3)]
    await asyncio.gather(*(post(gw, body, 202) for body in bodies))
    assert sns.cert_gets == 1


async def test_certificate_host_errors(gw: Gateway, sns: FakeSns, clock: FakeClock,
                                       tmp_path: Path) -> None:
    # SNS in trouble: 503 so that SNS delivers again; no such certificate: forged, 401.
    resp = await gw.client.post("/v1/ingest/aws", data=json.dumps(sns.sign(
        notification(clock), cert_url=f"{sns.base}/SimpleNotificationService-500.pem")),
        headers={"Content-Type": "text/plain; charset=UTF-8"})
    assert resp.status == 503 and resp.headers["Retry-After"]
    await post(gw, sns.sign(notification(clock),
                            cert_url=f"{sns.base}/SimpleNotificationService-404.pem"), 401)
    assert table_counts(tmp_path)["events"] == 0


async def test_confirmation_left_to_a_human(aiohttp_client: ClientFactory, sns: FakeSns,
                                            clock: FakeClock, tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, clock, tmp_path, confirm_subscriptions=False)
    body = {"Type": "SubscriptionConfirmation", "MessageId": "c-1", "Token": "tok-1",
            "TopicArn": TOPIC, "Timestamp": stamp(clock), "Message": "subscribe?",
            "SubscribeURL": f"{sns.base}/?Token=tok-1"}
    assert await post(gw, sns.sign(body), 202) == {"accepted": 0, "incidents": []}
    assert sns.confirms == []


# --- SigningCertURL: only SNS's certificate path is ever fetched ---------------------------

@pytest.mark.parametrize("path", [
    "/certs/SimpleNotificationService-f3.pem",  # another folder
    "/SimpleNotificationService-f3.pem.txt",
    "/SimpleNotificationService-f3.pem?Action=Publish",  # a query: an API call, not a file
    CERT_PATH + "?x=1",
    "/?Action=ConfirmSubscription&Token=x",  # SNS's own API, on its own host
    "/SimpleNotificationService-.pem",
    "/SimpleNotificationService-zz.pem",  # not hex
])
async def test_certificate_url_must_have_the_sns_certificate_path(
        gw: Gateway, sns: FakeSns, clock: FakeClock, tmp_path: Path, path: str) -> None:
    # The fake serves the certificate at each of these (the SNS API path "/" answers like
    # SNS): only the path check refuses them.
    problem = await post(gw, sns.sign(notification(clock), cert_url=sns.base + path), 401)
    assert "SigningCertURL" in problem["detail"]
    assert sns.cert_gets == 0 and sns.confirms == []
    assert table_counts(tmp_path)["events"] == 0


# --- failed certificate fetches: remembered, and never in the way of other URLs ---------

async def test_a_certificate_url_that_failed_is_not_fetched_again_for_a_while(
        gw: Gateway, sns: FakeSns, clock: FakeClock) -> None:
    missing = f"{sns.base}/SimpleNotificationService-404.pem"
    for i in range(3):
        await post(gw, sns.sign(notification(clock, message_id=f"m-{i}"), cert_url=missing),
                   401)
    assert sns.cert_gets == 1
    await asyncio.gather(*(post(gw, sns.sign(notification(clock, message_id=f"c-{i}"),
                                             cert_url=missing), 401) for i in range(5)))
    assert sns.cert_gets == 1, "concurrent messages wait for the one fetch, then share its failure"
    clock.advance(61)
    await post(gw, sns.sign(notification(clock, message_id="m-late"), cert_url=missing), 401)
    assert sns.cert_gets == 2, "a minute later the URL is tried again"
    # The real certificate is unaffected.
    await post(gw, sns.sign(notification(clock, message_id="m-ok")), 202)


async def test_sns_trouble_is_remembered_only_for_seconds(gw: Gateway, sns: FakeSns,
                                                          clock: FakeClock) -> None:
    broken = f"{sns.base}/SimpleNotificationService-500.pem"
    for i in range(3):
        resp = await gw.client.post("/v1/ingest/aws", data=json.dumps(sns.sign(
            notification(clock, message_id=f"m-{i}"), cert_url=broken)),
            headers={"Content-Type": "text/plain; charset=UTF-8"})
        assert resp.status == 503
    assert sns.cert_gets == 1
    clock.advance(6)  # SNS retries 20 s apart: its next retry fetches again
    resp = await gw.client.post("/v1/ingest/aws", data=json.dumps(sns.sign(
        notification(clock, message_id="m-9"), cert_url=broken)),
        headers={"Content-Type": "text/plain; charset=UTF-8"})
    assert resp.status == 503 and sns.cert_gets == 2


async def test_a_hanging_certificate_url_does_not_delay_another(
        gw: Gateway, sns: FakeSns, clock: FakeClock) -> None:
    hanging = f"{sns.base}/SimpleNotificationService-5105.pem"
    stuck = asyncio.create_task(post(gw, sns.sign(notification(clock, message_id="m-slow"),
                                                  cert_url=hanging), 401))
    await asyncio.wait_for(sns.slow_started.wait(), 5)
    # The real certificate is fetched while the other fetch still hangs (it would wait up
    # to FETCH_TIMEOUT behind one global lock).
    opened = await asyncio.wait_for(post(gw, sns.sign(notification(clock)), 202), 3)
    assert opened["accepted"] == 1 and not stuck.done()
    sns.slow_release.set()
    await asyncio.wait_for(stuck, 5)
    assert sns.cert_gets == 2


# --- subscriptions: confirmed only for the configured topics ------------------------------

def confirmation(sns: FakeSns, clock: FakeClock, topic: str = TOPIC,
                 message_id: str = "c-1", token: str = "tok-1") -> dict[str, Any]:
    return sns.sign({"Type": "SubscriptionConfirmation", "MessageId": message_id,
                     "Token": token, "TopicArn": topic, "Timestamp": stamp(clock),
                     "Message": f"You have chosen to subscribe to the topic {topic}.",
                     "SubscribeURL": f"{sns.base}/?Action=ConfirmSubscription&TopicArn="
                                     f"{topic}&Token={token}"})


async def test_without_topic_arns_a_subscription_is_logged_not_confirmed(
        aiohttp_client: ClientFactory, sns: FakeSns, clock: FakeClock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    gw = await gateway(aiohttp_client, clock, tmp_path, topic_arns=[])
    logged = CapturingLogger()
    monkeypatch.setattr(cloudwatch, "log", logged)
    body = confirmation(sns, clock, topic=TOPIC + "-anyone")
    assert await post(gw, body, 202) == {"accepted": 0, "incidents": []}
    assert sns.confirms == [], "any AWS account could have subscribed its own topic"
    [call] = [c for c in logged.calls if "subscribe_url" in c.kwargs]
    assert call.method_name == "info"
    assert call.kwargs == {"topic_arn": TOPIC + "-anyone", "subscribe_url": body["SubscribeURL"]}
    assert "topic_arns" in call.args[0]


async def test_without_topic_arns_notifications_from_any_topic_are_taken(
        aiohttp_client: ClientFactory, sns: FakeSns, clock: FakeClock, tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, clock, tmp_path, topic_arns=[])
    body = sns.sign(dict(notification(clock), TopicArn=TOPIC + "-anyone"))
    assert (await post(gw, body, 202))["accepted"] == 1


async def test_a_configured_topic_is_confirmed_once(gw: Gateway, sns: FakeSns,
                                                    clock: FakeClock) -> None:
    assert await post(gw, confirmation(sns, clock), 202) == {"accepted": 0, "incidents": []}
    assert sns.confirms == ["tok-1"]


async def test_a_foreign_topic_is_refused_when_topic_arns_is_set(
        gw: Gateway, sns: FakeSns, clock: FakeClock) -> None:
    problem = await post(gw, confirmation(sns, clock, topic=TOPIC + "-other"), 401)
    assert "topic_arns" in problem["detail"]
    assert sns.confirms == [] and sns.cert_gets == 0
