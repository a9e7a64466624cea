"""Amazon SNS message signatures, checked the way AWS documents it.

https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html: the
string to sign is ``key\\nvalue\\n`` for a fixed list of envelope keys in byte order; the
signature is RSA PKCS#1 v1.5 over it with SHA1 (``SignatureVersion`` "1") or SHA256 ("2"),
by the key of the X.509 certificate at ``SigningCertURL``. That URL comes from the body
itself, so it is only fetched when it names an SNS host (a certificate from anywhere else
would let anyone sign) and has the path SNS serves its certificates at,
``/SimpleNotificationService-<hex>.pem`` (AWS documents only the host; every certificate
SNS has published has that path, and the AWS SDK validators require ``.pem``), so an
unsigned body cannot make Baton request any other resource of the SNS host. Certificates
are cached by URL (SNS signs every message of a region with the same one for months),
failed fetches briefly too, and each URL is fetched under its own lock.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import aiohttp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from yarl import URL

from ..errors import AuthError, StorageUnavailable

CHALLENGE = 'SNS realm="baton"'
DEFAULT_HOST_PATTERN = r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$"
# The path of every SigningCertURL SNS sends, e.g.
# /SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem (matched against the raw,
# still percent-encoded path: no escapes, no dot segments, no query, no fragment).
CERT_PATH_PATTERN = re.compile(r"/SimpleNotificationService-[0-9a-f]{1,64}\.pem")

# The keys signed, in the order AWS concatenates them (alphabetical, as documented).
_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                      "TopicArn", "Type")
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

MAX_CERT_BYTES = 64 * 1024  # an SNS certificate is about 2 kB; anything huge is not one
FETCH_TIMEOUT = 10.0
CACHE_SIZE = 32  # one certificate per region and rotation; a few dozen is plenty
# A URL whose fetch failed is answered from memory for a while: 404 and not-a-certificate
# (a forged URL: it will not turn into a certificate) for a minute; network trouble and
# SNS 5xx only for a few seconds, which collapses a burst without outlasting SNS's retries
# (its default policy retries 20 s apart).
FAILED_TTL = 60.0
UNAVAILABLE_TTL = 5.0
FAILED_CACHE_SIZE = 256


def string_to_sign(envelope: Mapping[str, Any]) -> bytes:
    """The canonical text SNS signed. Subject is signed only when the message has one;
    every other key is required (its absence means the body was not signed by SNS)."""
    kind = envelope.get("Type")
    keys = _NOTIFICATION_KEYS if kind == "Notification" else _CONFIRMATION_KEYS
    parts = []
    for key in keys:
        value = envelope.get(key)
        if value is None and key == "Subject":
            continue
        if not isinstance(value, str):
            raise AuthError(f"payload.{key}: required for the SNS signature", CHALLENGE)
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode("utf-8")


def allowed_url(url: str, host_pattern: re.Pattern[str], allow_http: bool) -> URL | None:
    """The parsed URL when it may be visited (https, or http only where a test allows it;
    a host the pattern fully matches; no user info), else None."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    schemes = ("https", "http") if allow_http else ("https",)
    if (parsed.scheme not in schemes or parsed.user is not None or parsed.password is not None
            or not parsed.host or not host_pattern.fullmatch(parsed.host.lower())):
        return None
    return parsed


def allowed_cert_url(url: str, host_pattern: re.Pattern[str], allow_http: bool) -> URL | None:
    """The parsed SigningCertURL when it may be fetched: an allowed URL (see
    ``allowed_url``) whose path is SNS's certificate path, without query or fragment."""
    parsed = allowed_url(url, host_pattern, allow_http)
    if (parsed is None or parsed.raw_query_string or parsed.raw_fragment
            or not CERT_PATH_PATTERN.fullmatch(parsed.raw_path)):
        return None
    return parsed


class _Failure(NamedTuple):
    since: float
    until: float
    error: AuthError | StorageUnavailable


class CertificateCache:
    """Public keys by certificate URL, least recently used evicted first, and recent
    failures by URL. Fetches of one URL are serialised (two messages arriving together
    must not fetch the same certificate twice, nor retry a URL that just failed), fetches
    of different URLs are not: a slow or failing URL never delays another one. A lock
    lives only while a fetch of its URL is running or awaited, so there are never more
    locks than requests in flight."""

    def __init__(self, size: int = CACHE_SIZE, failed_size: int = FAILED_CACHE_SIZE) -> None:
        self.size = size
        self.failed_size = failed_size
        self._keys: OrderedDict[str, tuple[rsa.RSAPublicKey, datetime, datetime]] = \
            OrderedDict()
        self._failed: OrderedDict[str, _Failure] = OrderedDict()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def get(self, url: URL, http: aiohttp.ClientSession, now: float
                  ) -> tuple[rsa.RSAPublicKey, datetime, datetime]:
        """The certificate's key and validity; ``now`` (seconds) ages the failures."""
        key = str(url)
        found = self._cached(key, now)
        if found is not None:
            return found
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                found = self._cached(key, now)
                if found is not None:
                    return found
                try:
                    loaded = _load(await _fetch(url, http))
                except (AuthError, StorageUnavailable) as exc:
                    ttl = FAILED_TTL if isinstance(exc, AuthError) else UNAVAILABLE_TTL
                    self._failed[key] = _Failure(now, now + ttl, exc)
                    self._failed.move_to_end(key)
                    while len(self._failed) > self.failed_size:
                        self._failed.popitem(last=False)
                    raise
                self._keys[key] = loaded
                while len(self._keys) > self.size:
                    self._keys.popitem(last=False)
                return loaded
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def _cached(self, key: str, now: float
                ) -> tuple[rsa.RSAPublicKey, datetime, datetime] | None:
        """The cached key, or None to fetch; raises the failure of a recent fetch."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return self._keys[key]
        failure = self._failed.get(key)
        if failure is not None:
            if failure.since <= now < failure.until:  # a clock set back ends it too
                raise failure.error.with_traceback(None)
            del self._failed[key]
        return None


async def _fetch(url: URL, http: aiohttp.ClientSession) -> bytes:
    try:
        async with http.get(url, allow_redirects=False,
                            timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT)) as resp:
            if resp.status != 200:
                # The host is SNS's own: a 4xx means the URL names no certificate (a forged
                # message), a 5xx that SNS is having trouble (worth a retry).
                if resp.status >= 500:
                    raise StorageUnavailable(f"SNS certificate host answered {resp.status}")
                raise AuthError(f"SigningCertURL answered HTTP {resp.status}", CHALLENGE)
            body = await resp.content.read(MAX_CERT_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Not the sender's fault: 503 makes SNS deliver again later.
        raise StorageUnavailable(f"cannot fetch the SNS signing certificate: "
                                 f"{type(exc).__name__}") from None
    if len(body) > MAX_CERT_BYTES:
        raise AuthError("SigningCertURL is not a certificate (too large)", CHALLENGE)
    return body


def _load(pem: bytes) -> tuple[rsa.RSAPublicKey, datetime, datetime]:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise AuthError("SigningCertURL is not a PEM certificate", CHALLENGE) from None
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AuthError("the SNS signing certificate has no RSA key", CHALLENGE)
    return key, cert.not_valid_before_utc, cert.not_valid_after_utc


async def verify(envelope: Mapping[str, Any], now: float, http: aiohttp.ClientSession,
                 cache: CertificateCache, host_pattern: re.Pattern[str],
                 allow_http: bool) -> None:
    """Raise ``AuthError`` unless SNS signed ``envelope`` with a certificate it serves."""
    version = envelope.get("SignatureVersion")
    algorithm = _HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise AuthError("payload.SignatureVersion: must be \"1\" or \"2\"", CHALLENGE)
    signature_text = envelope.get("Signature")
    if not isinstance(signature_text, str) or not signature_text:
        raise AuthError("payload.Signature: required", CHALLENGE)
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except (binascii.Error, ValueError):
        raise AuthError("payload.Signature: not base64", CHALLENGE) from None
    cert_url = envelope.get("SigningCertURL")
    url = allowed_cert_url(cert_url, host_pattern, allow_http) \
        if isinstance(cert_url, str) else None
    if url is None:
        raise AuthError("payload.SigningCertURL: not an SNS certificate URL (https://<SNS "
                        "host>/SimpleNotificationService-<hex>.pem)", CHALLENGE)
    message = string_to_sign(envelope)
    key, not_before, not_after = await cache.get(url, http, now)
    moment = datetime.fromtimestamp(now, UTC)
    if not not_before <= moment <= not_after:
        raise AuthError("the SNS signing certificate is not valid now", CHALLENGE)
    try:
        key.verify(signature, message, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise AuthError("the SNS signature does not match the message", CHALLENGE) from None


async def confirm(url: URL, http: aiohttp.ClientSession) -> None:
    """Visit a SubscribeURL (SNS then starts delivering); a failure is a 503, so SNS
    sends the confirmation again."""
    try:
        async with http.get(url, allow_redirects=False,
                            timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT)) as resp:
            await resp.content.read(MAX_CERT_BYTES)  # the answer is a small XML document
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StorageUnavailable(f"cannot confirm the SNS subscription: "
                                 f"{type(exc).__name__}") from None
    if status != 200:
        raise StorageUnavailable(f"SNS answered {status} to the subscription confirmation")
