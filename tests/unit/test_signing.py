"""Standard Webhooks signing, checked against the spec project's own test vector.

The vector (secret, id, timestamp, payload, expected signature) is the one the reference
Python library's ``test_sign_function`` uses (standard-webhooks/standard-webhooks,
libraries/python/tests/test_webhooks.py); it was recomputed independently with ``hmac``
before being written here. Matching it is what makes us interoperable with their verifiers.
"""

from __future__ import annotations

import base64
import urllib.parse

import pytest
from standardwebhooks import Webhook

from baton import signing

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
KEY = signing.decode_secret(VECTOR_SECRET)


def test_decode_whsec_secret() -> None:
    assert KEY == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert len(KEY) == 24  # the spec's minimum key size


@pytest.mark.parametrize("secret", [VECTOR_SECRET, "whsec_" + base64.b64encode(bytes(range(32))
                                    ).decode().rstrip("="), "whsec_s3cr3t"])
def test_whsec_secret_decodes_as_the_reference_library(secret: str) -> None:
    # Padding is optional there (the library appends "=="): the same secret, the same key.
    assert signing.decode_secret(secret) == Webhook(secret)._whsecret


def test_unprefixed_secret_is_its_utf8_bytes() -> None:
    assert signing.decode_secret("plain-Käse") == "plain-Käse".encode()


@pytest.mark.parametrize("bad", ["", "whsec_", "whsec_s3cr3t not base64!",
                                 "whsec_s3cr3tAAA",  # 4n+1 characters: no base64
                                 "whsec_s3cr3t_-",  # URL-safe alphabet
                                 "whsec_s3cr3=="])  # padding that does not fit
def test_bad_secrets_raise_without_the_value(bad: str) -> None:
    with pytest.raises(ValueError) as caught:
        signing.decode_secret(bad)
    assert "s3cr3t" not in str(caught.value)
    # Raised "from None": a traceback must not chain to the decoder's error either.
    assert caught.value.__suppress_context__ or caught.value.__context__ is None


LONG_KEY = bytes(range(40))


@pytest.mark.parametrize("secret", [
    VECTOR_SECRET,
    VECTOR_SECRET.removeprefix("whsec_"),  # bare base64: the library decodes it the same
    "whsec_" + base64.b64encode(LONG_KEY).decode(),
    base64.b64encode(LONG_KEY).decode().rstrip("="),  # unpadded: the library pads it
])
def test_sender_key_decodes_as_the_reference_library(secret: str) -> None:
    assert signing.sender_key(secret) == Webhook(secret)._whsecret


@pytest.mark.parametrize("bad", [
    "", "whsec_",
    "s3cr3t-password",  # not base64 at all: the library would skip "-" and decode the rest
    "whsec_s3cr3tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_-",  # URL-safe alphabet
    "whsec_s3cr3tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # 4n+1 characters: no base64
    "s3cr3tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" + "=",  # padding where none belongs
    "s3cr3tPassword",  # valid base64, but 10 bytes: a password, not a sender's key
    "whsec_" + base64.b64encode(b"s3cr3t" * 3).decode(),  # 18 bytes
])
def test_sender_key_refuses_what_no_sender_signs_with(bad: str) -> None:
    with pytest.raises(ValueError) as caught:
        signing.sender_key(bad)
    assert "s3cr3t" not in str(caught.value)


def test_sign_matches_the_spec_vector() -> None:
    assert signing.sign(KEY, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG


def test_headers() -> None:
    assert signing.headers(KEY, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == {
        "webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": VECTOR_SIG,
    }


@pytest.mark.parametrize("msg_id", ["", "a.b", "a b", "a\nb"])
def test_sign_refuses_ambiguous_ids(msg_id: str) -> None:
    with pytest.raises(ValueError):
        signing.sign(KEY, msg_id, VECTOR_TS, VECTOR_BODY)


def verify(signature: str, *, now: float = VECTOR_TS, timestamp: int | str = VECTOR_TS,
           body: bytes = VECTOR_BODY, key: bytes = KEY, tolerance: float = 300) -> bool:
    return signing.verify(key, VECTOR_ID, timestamp, body, signature, now, tolerance)


def test_verify_the_spec_vector() -> None:
    assert verify(VECTOR_SIG)
    assert verify(VECTOR_SIG, timestamp=str(VECTOR_TS))  # header text as received


def test_verify_rejects_tampering() -> None:
    assert not verify(VECTOR_SIG, body=VECTOR_BODY + b" ")
    assert not verify(VECTOR_SIG, key=b"another key of twenty-four bytes")
    # The reference library's own "invalid signature": the vector with one character off.
    assert not verify("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=")
    assert not verify(VECTOR_SIG.replace("v1,", "v1a,"))
    assert not verify(VECTOR_SIG.removeprefix("v1,"))
    assert not verify("")


def test_verify_accepts_any_of_several_signatures() -> None:
    """Rotation: the sender signs with the old and the new key, space separated."""
    others = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/W"
    assert verify(f"{others} {VECTOR_SIG} v1a,AAAA")
    assert not verify(others)


@pytest.mark.parametrize(("offset", "ok"), [(0, True), (300, True), (-300, True),
                                             (301, False), (-301, False)])
def test_verify_timestamp_tolerance(offset: int, ok: bool) -> None:
    assert verify(VECTOR_SIG, now=VECTOR_TS + offset) is ok


@pytest.mark.parametrize("timestamp", ["hello", "", "1614265330.0", "-1614265330", "١٢٣"])
def test_verify_rejects_malformed_timestamps(timestamp: str) -> None:
    assert not verify(VECTOR_SIG, timestamp=timestamp)


def test_round_trip_with_a_fresh_key() -> None:
    key = signing.decode_secret("whsec_" + base64.b64encode(bytes(range(32))).decode())
    sig = signing.sign(key, "01JD:hook:trigger", 1700000000, b"{}")
    assert signing.verify(key, "01JD:hook:trigger", 1700000000, b"{}", sig, now=1700000100)


@pytest.mark.parametrize(("key", "expected"), [
    ("01JD5Z8K3QF0Y6N8W2M4R7T9VB/pager/trigger", "01JD5Z8K3QF0Y6N8W2M4R7T9VB/pager/trigger"),
    ("x/pager/trigger/person:a.smith", "x/pager/trigger/person:a%2Esmith"),
    ("team:on call", "team:on%20call"),
    ("50%", "50%25"),
    ("Jürgen", "J%C3%BCrgen"),
])
def test_message_id(key: str, expected: str) -> None:
    assert signing.message_id(key) == expected
    assert urllib.parse.unquote(expected) == key  # reversible, hence never two keys, one id
    signing.sign(KEY, expected, VECTOR_TS, b"")  # and always signable
