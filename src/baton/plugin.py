"""The two plugin ports and their discovery through entry points.

Built-ins register exactly as a third-party package would (``baton.sources`` and
``baton.connectors`` in pyproject.toml); only the types named in config are loaded.
One name everywhere: entry-point name == config ``type`` == schema file name.
"""

from __future__ import annotations

import email.utils
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal

import aiohttp

from .model import Alert, ExternalRef, Notification, Outcome
from .redact import DETAIL_CHARS, redact, secret_forms, secret_values

SOURCE_GROUP = "baton.sources"
CONNECTOR_GROUP = "baton.connectors"


class Source(ABC):
    """An inbound adapter: a pure function of (payload, headers) to alerts.

    No I/O, no clock: the same input always gives the same alerts. Bad input raises
    ``baton.errors.PayloadError`` (a 400). ``config`` holds the type-specific keys of the
    source block, already validated against ``schemas/sources/<type>.schema.json``.
    """

    type: ClassVar[str]
    # Name of the schema ``$defs`` entry that the raw payload must satisfy, if any.
    payload_def: ClassVar[str | None] = None
    # The label in which the adapter keeps the sender's own severity (``priority`` for
    # Datadog's P1-P5, ``severity`` for Zabbix's names): the source's ``severity_map``
    # setting maps that value, overriding the adapter's documented table.
    severity_label: ClassVar[str | None] = None
    # Media types accepted besides JSON, for senders that label a JSON body otherwise
    # (Amazon SNS posts JSON as ``text/plain``). The body must still parse as JSON.
    content_types: ClassVar[tuple[str, ...]] = ()
    # The HTTP methods its senders use on ``/v1/ingest/{source}``. POST alone unless the
    # vendor documents another: any other is answered 405, so a misconfigured sender is
    # told at once instead of being taken for one that works.
    methods: ClassVar[tuple[str, ...]] = ("POST",)

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        self.name = name
        self.config = config

    @abstractmethod
    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        """Turn one request body into alerts (possibly none, e.g. a test notification)."""

    def response(self, alerts: list[Alert]) -> dict[str, Any]:
        """Extra keys for the 202 body, for senders that read their vendor's reply."""
        return {}

    async def prepare(self, raw: bytes, payload: Any, headers: Mapping[str, str],
                      now: float, http: aiohttp.ClientSession) -> str | None:
        """The I/O a source needs before ``parse``, kept out of it so parsing stays pure:
        e.g. fetching (and caching) the certificate that signed an SNS message, or
        confirming an SNS subscription. Raises ``AuthError`` (401) or ``PayloadError``
        (400). May return the sender's id of a verified message: the core then takes each
        id once (a redelivery or replay is answered 202 and changes nothing). Most
        sources need nothing."""
        return None


CallbackAction = Literal["acknowledge", "resolve", "note"]


@dataclass(frozen=True)
class CallbackEvent:
    """Something a human did on the vendor's side, as a connector understood it.

    The incident is found by ``incident_id`` when the vendor echoes Baton's own id (an
    alias, a dedup key, a button value), else by ``external_id`` among the external
    references this connector recorded. ``event_id`` is the vendor's id for this event
    (a webhook id, a journal id): the core applies each (connector, event_id) once, so a
    replayed request changes nothing twice.
    """

    action: CallbackAction
    event_id: str
    actor: str
    incident_id: str | None = None
    external_id: str | None = None
    text: str | None = None  # the note's text, for ``note``


class Connector(ABC):
    """An outbound adapter: one vendor call per attempt, classified.

    It never sleeps, retries or deduplicates: the dispatcher does. It answers
    ``Outcome.ok`` (with the external reference it created or touched),
    ``Outcome.retryable`` (with the vendor's Retry-After) or ``Outcome.permanent``.
    ``config`` holds the type-specific keys, secrets as ``baton.secret.Secret``.
    """

    type: ClassVar[str]
    # Whether the vendor honours an idempotency key we send (documentation and contract).
    idempotent: ClassVar[bool] = False

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        self.name = name
        self.config = config

    def scrub(self, text: str, limit: int = DETAIL_CHARS, also: Iterable[str | None] = ()
              ) -> str:
        """``text`` (a vendor's answer, an exception) fit for a detail, the timeline or a
        log: every secret of the config (and ``also``: derived values such as a Basic
        header or a URL's path) hidden in its raw, base64 and percent-encoded forms first,
        then cut to ``limit`` characters, so a secret straddling the cut leaves nothing."""
        forms = secret_forms([*secret_values(getattr(self, "config", {})), *also])
        return redact(text, forms, limit)

    @abstractmethod
    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        """Perform ``notification.action`` at the vendor, once."""

    # Whether ``callback`` is implemented: ``POST /v1/callbacks/{name}`` answers 404 else.
    accepts_callbacks: ClassVar[bool] = False
    # Whether ``sync`` is implemented: the core polls it for vendors without webhooks.
    polls: ClassVar[bool] = False

    def callback(self, body: bytes, headers: Mapping[str, str],
                 now: float) -> list[CallbackEvent]:
        """Verify an inbound request the vendor's way and say what it means.

        Pure: no I/O. ``now`` (epoch seconds, the gateway's clock) is for signature time
        windows. A bad, missing or stale signature raises ``baton.errors.AuthError``
        (401); a body of the wrong shape raises ``baton.errors.PayloadError`` (400).
        Events Baton itself caused (its own comment echoed back, a change made by its
        own integration user) are left out here: this is the first half of loop
        prevention; the core's idempotent state changes are the second.
        """
        raise NotImplementedError

    async def sync(self, refs: Sequence[ExternalRef],
                   http: aiohttp.ClientSession) -> list[CallbackEvent]:
        """Poll the vendor for the given references (tickets of open incidents) and say
        what changed there, for vendors that cannot call back. One bounded batch per
        call; errors raise (the core logs them and tries again next round)."""
        raise NotImplementedError


def discover(group: str) -> dict[str, Any]:
    """Entry-point name -> the (not yet loaded) entry point."""
    return {ep.name: ep for ep in entry_points(group=group)}


def load(group: str, name: str) -> Any:
    eps = discover(group)
    if name not in eps:
        raise LookupError(name)
    return eps[name].load()


RETRYABLE_STATUSES = frozenset({408, 425, 429})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²", which float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify_status(status: int, detail: str = "", retry_after: str | None = None) -> Outcome:
    """The status-code table shared by every HTTP connector (as in Alertmanager's notify):
    2xx ok; 408, 425, 429 and 5xx retryable (honouring Retry-After); other 4xx permanent."""
    if 200 <= status < 300:
        return Outcome.ok(detail or f"HTTP {status}", status)
    if status in RETRYABLE_STATUSES or status >= 500:
        return Outcome.retryable(detail or f"HTTP {status}", status,
                                 parse_retry_after(retry_after))
    return Outcome.permanent(detail or f"HTTP {status}", status)
