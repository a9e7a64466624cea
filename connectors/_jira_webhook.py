"""Jira webhooks as callback events, for the ``jira`` connector. Pure: no I/O, no clock.

Jira signs a webhook registered with a secret (admin webhooks, from the Jira settings page
or ``/rest/webhooks/1.0/webhook``) as ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the
raw body>``. Without a configured ``webhook_secret`` nothing is accepted: an unsigned
request could close any incident. The signature covers only the body and Jira sends no
signed time, so there is no freshness window; the core applies each event id once, and
the event id is built from signed body fields only (``webhookEvent``, ``timestamp``, the
issue id, ``changelog.id`` or ``comment.id``), never from the unsigned
``X-Atlassian-Webhook-Identifier`` header: a replay of a captured body under a fresh
header value is still the same event.

Meaning: ``jira:issue_updated`` whose changelog moves ``status`` into the done category
(or one of ``done_statuses``) is a resolve; into the in-progress category (or one of
``acknowledge_statuses``) an acknowledge. ``comment_created`` is a note, unless its text
starts with Baton's marker (Baton's own comment echoed back). Events whose user is the
configured ``account_id`` (Baton's own integration account) are dropped whole, which also
covers Baton's own transitions. Other events are ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from baton.errors import AuthError, PayloadError
from baton.plugin import CallbackEvent
from baton.secret import Secret

from ._jira_adf import MARKER, plain_text

SIGNATURE_HEADER = "x-hub-signature"
CHALLENGE = 'HMAC-SHA256 realm="jira", header="X-Hub-Signature"'
NOTE_CHARS = 10000


def verify(body: bytes, headers: Mapping[str, str], secret: Secret | str | None) -> None:
    if secret is None:
        raise AuthError("this jira connector has no webhook_secret, so it accepts no "
                        "callbacks; register the Jira webhook with a secret", CHALLENGE)
    given = headers.get(SIGNATURE_HEADER, "").strip()
    if not given:
        raise AuthError("missing X-Hub-Signature", CHALLENGE)
    method, _, digest = given.partition("=")
    if method.strip().lower() != "sha256" or not digest:
        raise AuthError("X-Hub-Signature must be sha256=<hex digest>", CHALLENGE)
    key = secret.reveal() if isinstance(secret, Secret) else secret
    expected = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), digest.strip().lower().encode()):
        raise AuthError("X-Hub-Signature does not match the body", CHALLENGE)


def _dict(doc: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise PayloadError(f"Jira webhook without {path}", [path])
    return value


def _actor(user: Any) -> str:
    name = user.get("displayName") if isinstance(user, dict) else None
    return f"{name} (jira)" if name else "jira"


def _own(text: str) -> bool:
    # Jira may hand the comment back as wiki markup, where brackets arrive escaped.
    return text.lstrip().replace("\\[", "[").replace("\\]", "]").startswith(MARKER)


def _by(user: Any, account_id: str | None) -> bool:
    return bool(account_id) and isinstance(user, dict) and user.get("accountId") == account_id


def parse_webhook(body: bytes, headers: Mapping[str, str], *, secret: Secret | str | None,
                  done_statuses: set[str], acknowledge_statuses: set[str],
                  account_id: str | None = None) -> list[CallbackEvent]:
    lower = {k.lower(): v for k, v in headers.items()}
    verify(body, lower, secret)
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("Jira webhook body is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("webhookEvent"), str):
        raise PayloadError("not a Jira webhook: no webhookEvent", ["webhookEvent"])
    event = doc["webhookEvent"]
    if event not in ("jira:issue_updated", "comment_created"):
        return []
    issue = _dict(doc, "issue", "issue")
    if not isinstance(issue.get("key"), str) or not issue["key"]:
        raise PayloadError("Jira webhook without issue.key", ["issue.key"])
    key = issue["key"]
    # Only what the signature covers names the event (see the module docstring).
    signed_id = f"{event}:{doc.get('timestamp')}:{issue.get('id') or key}"
    if event == "comment_created":
        comment = _dict(doc, "comment", "comment")
        if "body" not in comment:
            raise PayloadError("Jira comment without body", ["comment.body"])
        text = plain_text(comment["body"]).strip()
        if not text or _own(text) or _by(comment.get("author"), account_id):
            return []
        event_id = f"{signed_id}:{comment.get('id')}"
        return [CallbackEvent("note", event_id, _actor(comment.get("author")),
                              external_id=key, text=text[:NOTE_CHARS])]
    changelog = doc.get("changelog") or {}
    items = changelog.get("items") if isinstance(changelog, dict) else None
    if not isinstance(items, list):
        if changelog:
            raise PayloadError("Jira changelog without items", ["changelog.items"])
        return []
    moves = [i for i in items if isinstance(i, dict) and i.get("field") == "status"]
    if not moves or _by(doc.get("user"), account_id):
        return []
    status_name = str(moves[-1].get("toString") or "").casefold()
    category = ""
    fields = issue.get("fields")
    status = fields.get("status") if isinstance(fields, dict) else None
    if isinstance(status, dict) and isinstance(status.get("statusCategory"), dict):
        category = str(status["statusCategory"].get("key") or "")
    if done_statuses:
        resolved = status_name in done_statuses
    else:
        resolved = category == "done"
    if acknowledge_statuses:
        acknowledged = status_name in acknowledge_statuses
    else:
        acknowledged = category == "indeterminate"
    if not (resolved or acknowledged):
        return []
    event_id = f"{signed_id}:{changelog.get('id')}"
    return [CallbackEvent("resolve" if resolved else "acknowledge", event_id,
                          _actor(doc.get("user")), external_id=key)]
