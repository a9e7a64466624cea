"""Generic outbound webhook: the incident document as JSON, signed per Standard Webhooks.

The escape hatch for any receiver without a dedicated connector (as Alertmanager's
``webhook_config``). Each attempt POSTs the incident plus a ``notification`` object saying
what happened (trigger, update, acknowledge, resolve, note) and under which idempotency key.

Receivers dedupe on that key: it is sent as ``Idempotency-Key`` and, when a signing secret
is configured, as ``webhook-id``, which the Standard Webhooks spec defines as the id that
stays the same across retries (percent-encoded where the key holds ``.``, ``%``, spaces or
non-ASCII, which a webhook-id may not). ``webhook-timestamp`` is the attempt's time, so a retry is
signed afresh and passes the receiver's replay window.

Redirects are not followed (the spec counts 3xx as failure: fix the URL instead), so a 3xx
ends up permanent. No external reference: a plain webhook creates nothing we could address.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from baton import __version__, signing
from baton.errors import ConfigError
from baton.model import Notification, Outcome
from baton.plugin import Connector, classify_status
from baton.secret import Secret

USER_AGENT = f"baton/{__version__}"
_DETAIL_CHARS = 200
_READ_BYTES = 1024  # enough for a short reason; never buffer a large error page


def _reveal(value: str | Secret) -> str:
    return value.reveal() if isinstance(value, Secret) else value


class WebhookConnector(Connector):
    """POSTs the incident to ``url``; see ``schemas/connectors/webhook.schema.json``."""

    type: ClassVar[str] = "webhook"
    idempotent: ClassVar[bool] = True

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self._url: str | Secret = config["url"]
        self._headers: dict[str, str | Secret] = dict(config.get("headers") or {})
        secret: str | Secret | None = config.get("secret")
        self._key: bytes | None = None
        if secret is not None:
            try:
                self._key = signing.decode_secret(_reveal(secret))
            except ValueError as exc:  # the message never quotes the value
                raise ConfigError([f"connectors.{name}.secret: {exc}"]) from None
        self._shown, self._hidden = self._redactions(secret)

    def _redactions(self, secret: str | Secret | None) -> tuple[str, list[str]]:
        """The URL as messages may show it, and every string messages must never show.

        URLs often carry credentials: userinfo, a ``?token=`` query, or (when configured as
        a secret, as Slack-style hook URLs are) the path itself. Library errors quote the
        URL they failed on, so those parts are scrubbed from any text we return.
        """
        raw = _reveal(self._url)
        try:
            url = URL(raw)
        except ValueError:
            url = URL()
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError([f"connectors.{self.name}.url: not an absolute http(s) URL"])
        hidden = [raw, str(url), url.raw_query_string, url.query_string, url.raw_fragment]
        hidden += [url.raw_password or "", url.password or ""]
        if isinstance(self._url, Secret):
            shown = f"{url.origin()}/***"
            hidden += [url.raw_path_qs, url.path_qs]
        else:
            shown = str(url.with_user(None).with_query(None).with_fragment(None))
            shown += "?***" if url.raw_query_string else ""
        hidden += [v.reveal() for v in self._headers.values() if isinstance(v, Secret)]
        if secret is not None:
            hidden.append(_reveal(secret))
            if self._key is not None:
                hidden.append(self._key.decode("utf-8", "replace"))
        # A plain URL without credentials may be shown as it is: hiding it would only make
        # "cannot connect to ***" useless to the operator.
        hidden = [h for h in hidden if h != shown]
        # Longest first, so a whole URL is replaced before a part of it could be.
        return shown, sorted({h for h in hidden if h not in ("", "/")}, key=len, reverse=True)

    def _scrub(self, text: str, limit: int = _DETAIL_CHARS * 2) -> str:
        return self.scrub(text, limit, also=self._hidden)


    def _body(self, notification: Notification) -> bytes:
        document = dict(notification.incident)
        document["notification"] = {
            "action": notification.action,
            "idempotency_key": notification.idempotency_key,
            "delivery_id": notification.delivery_id,
            "connector": notification.connector,
            "attempt": notification.attempt,
        }
        if notification.target:
            # Who to reach: the policy's target as resolved when notified (on-call person,
            # contacts), so a receiver can page the right human.
            document["notification"]["target"] = dict(notification.target)
        # Compact and serialised once: the signature covers these exact bytes.
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

    def _request_headers(self, idempotency_key: str, body: bytes) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in self._headers.items():
            headers[name] = _reveal(value)  # revealed only now, for the wire
        # Set after the configured ones: the protocol headers must match what is signed.
        headers["Content-Type"] = "application/json"
        headers["User-Agent"] = USER_AGENT
        # One header-safe form for both: equal to the key unless it holds characters a
        # header or a webhook-id cannot (see signing.message_id); the body has it verbatim.
        msg_id = signing.message_id(idempotency_key)
        headers["Idempotency-Key"] = msg_id
        if self._key is not None:
            headers.update(signing.headers(self._key, msg_id, int(time.time()), body))
        return headers

    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        body = self._body(notification)
        headers = self._request_headers(notification.idempotency_key, body)
        # Only connection-level failures are caught: CancelledError (the dispatcher's
        # timeout or shutdown) must propagate, or a hung receiver would wedge the worker.
        try:
            async with http.post(
                _reveal(self._url), data=body, headers=headers, allow_redirects=False
            ) as resp:
                text = (await resp.content.read(_READ_BYTES)).decode("utf-8", "replace")
                detail = f"HTTP {resp.status}"
                if reason := self._scrub(text, _DETAIL_CHARS):
                    detail += f": {reason}"
                return classify_status(
                    resp.status, self._scrub(detail), resp.headers.get("Retry-After")
                )
        except aiohttp.InvalidURL:
            return Outcome.permanent(f"invalid URL {self._shown}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            # OSError covers refused/unreachable; TimeoutError a session-level timeout.
            message = f"{type(exc).__name__} posting to {self._shown}: {exc}"
            return Outcome.retryable(self._scrub(message))
