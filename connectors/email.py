"""Email over SMTP: one message per action, threaded per incident.

Every action sends one ``multipart/alternative`` message (plain text and HTML; everything
that came from an alert is escaped). The Message-ID is derived from the idempotency key,
so a retried delivery carries the same Message-ID as the first attempt and mail clients
fold the duplicate. SMTP has no idempotency key and no search, so a retry after a lost
reply may deliver the message twice: that, not a lost page, is the trade-off.

Threading: the first message that is accepted becomes the incident's external reference
(its Message-ID); every later message (update, acknowledge, note, resolve, a trigger of a
later escalation level) names it in ``In-Reply-To``/``References`` and answers the same
reference, so the dispatcher keeps the thread's root.

Recipients: a person target's ``contacts.email``; else the addresses of a target
``to: mailto:a@example.com,b@example.com``; else the connector's ``to`` list (a person
without an email contact, a plain ``notify: [mail]``). None at all is a permanent failure.

Replies: 2xx ok; 4xx (421, 450, 451, 452, 454...) retryable; 5xx (550, 553, 554, and 535
for refused credentials) permanent; connection refused, resets and timeouts retryable.
``Outcome.status`` is the SMTP reply code. SMTP has no Retry-After.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, ClassVar
from urllib.parse import unquote

import aiohttp
import aiosmtplib

from baton import __version__
from baton.errors import ConfigError
from baton.model import ExternalRef, Notification, Outcome
from baton.plugin import Connector
from baton.secret import Secret

from ._text import clip, one_line

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
STATES = {"trigger": "triggered", "update": "updated", "acknowledge": "acknowledged",
          "resolve": "resolved", "note": "note"}
GENERIC_NOTE = "Incident updated in Baton."
SUBJECT_CHARS = 200
QUIT_SECONDS = 5.0
_DETAIL_CHARS = 300
_SAFE_LINK_SCHEMES = ("http://", "https://")


def _one_line(text: Any, limit: int = 1000) -> str:
    """Header-safe: CR/LF in a header would end it early (header injection)."""
    return clip(one_line(text), limit)


def _address(text: str) -> str | None:
    """The bare address in ``text`` (``a@b`` or ``Name <a@b>``), or None if it is none."""
    if any(c in text for c in "\r\n"):
        return None
    addr = parseaddr(text)[1]
    local, at, domain = addr.rpartition("@")
    return addr if at and local and domain and " " not in addr else None


def message_id(idempotency_key: str) -> str:
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@baton>"


class EmailConnector(Connector):
    """Mail through an SMTP submission server; see ``schemas/connectors/email.schema.json``."""

    type: ClassVar[str] = "email"
    idempotent: ClassVar[bool] = False  # SMTP takes no key; the Message-ID only helps clients

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        where = f"connectors.{name}"
        self.host: str = config["host"]
        self.security: str = config.get("security", "starttls")
        self.port: int = int(config.get("port") or DEFAULT_PORTS[self.security])
        self._user: str | None = config.get("username")
        password: str | Secret | None = config.get("password")
        self._password = password.reveal() if isinstance(password, Secret) else password
        problems = []
        if (self._user is None) != (self._password is None):
            problems.append(f"{where}: username and password go together")
        if (self._user is not None and self.security == "none"
                and not config.get("allow_insecure_auth", False)):
            problems.append(f"{where}.security: none would send the password in clear text; "
                            "use starttls or tls, or set allow_insecure_auth")
        sender = _address(str(config["from"]))
        if sender is None:
            problems.append(f"{where}.from: not an email address")
        self._from_header = _one_line(config["from"])
        self.sender = sender or ""
        self.default_to = [str(a) for a in config.get("to") or ()]
        problems += [f"{where}.to: {a!r} is not an email address"
                     for a in self.default_to if _address(a) is None]
        self.prefix: str = config.get("subject_prefix", "[Baton]")
        self.helo_name: str | None = config.get("helo_name")
        self._tls: ssl.SSLContext | None = None
        if self.security != "none":
            try:
                # ca_file replaces the system's trust store: a private relay's own CA.
                self._tls = ssl.create_default_context(cafile=config.get("ca_file"))
            except (OSError, ssl.SSLError) as exc:
                problems.append(f"{where}.ca_file: cannot load: {exc.__class__.__name__}")
        if problems:
            raise ConfigError(problems)

    # --- the message -------------------------------------------------------------------

    def recipients(self, target: Mapping[str, Any]) -> tuple[list[str], str]:
        """(addresses, where they came from) for this target."""
        contacts = target.get("contacts") or {}
        if target.get("person") and contacts.get("email"):
            addr = _address(str(contacts["email"]))
            who = f"person {target['person']}"
            return ([addr], who) if addr else ([], f"{who} (email contact is not valid)")
        to = str(target.get("to") or "")
        if to.startswith("mailto:"):  # RFC 6068: mailto:a@x,b@y?subject=ignored
            listed = unquote(to.removeprefix("mailto:").partition("?")[0])
            found = [_address(part.strip()) for part in listed.split(",")]
            return [a for a in found if a], f"the target's {to}"
        return [a for a in (_address(x) for x in self.default_to) if a], "the connector's to"

    def subject(self, notification: Notification) -> str:
        inc = notification.incident
        severity = str(inc.get("severity") or "info").upper()
        title = inc.get("title") or inc.get("key") or inc["id"]
        state = STATES[notification.action]
        return _one_line(f"{self.prefix}[{severity}] {title} ({state})", SUBJECT_CHARS)

    def headline(self, notification: Notification) -> str:
        inc = notification.incident
        action = notification.action
        if action == "acknowledge":
            return f"Acknowledged by {inc.get('acknowledged_by') or 'someone in Baton'}."
        if action == "resolve":
            return f"Resolved by {inc.get('resolved_by') or 'Baton'}."
        if action == "note":
            notes = [e for e in inc.get("timeline") or () if e.get("type") == "note"]
            last = notes[-1] if notes else None
            text = (last.get("detail") or {}).get("text") if last else None
            return f"Note from {last.get('actor') or 'baton'}:\n{text}" if (
                last and text) else GENERIC_NOTE
        if action == "update":
            return "The incident was updated (escalated, or a new alert joined it)."
        return "A new incident needs attention."

    def facts(self, inc: Mapping[str, Any]) -> list[tuple[str, str]]:
        escalation = inc.get("escalation") or {}
        rows = [("Incident", inc["id"]), ("Status", inc.get("status")),
                ("Severity", inc.get("severity")), ("Service", inc.get("service")),
                ("Key", inc.get("key")), ("Escalation level", escalation.get("level")),
                ("Created", inc.get("created_at"))]
        return [(k, str(v)) for k, v in rows if v is not None]

    def bodies(self, notification: Notification) -> tuple[str, str]:
        """(plain text, HTML); the HTML escapes every value, alert text included."""
        inc = notification.incident
        alerts = list(inc.get("alerts") or ())
        head, facts = self.headline(notification), self.facts(inc)
        title = _one_line(inc.get("title") or inc.get("key") or inc["id"])
        text = [title, "", head, ""] + [f"{k}: {v}" for k, v in facts]
        esc = html.escape
        page = [f"<h2>{esc(title)}</h2>", f"<p>{esc(head).replace(chr(10), '<br>')}</p>",
                "<table>"]
        page += [f"<tr><th align=\"left\">{esc(k)}</th><td>{esc(v)}</td></tr>"
                 for k, v in facts]
        page.append("</table>")
        if alerts:
            text += ["", "Alerts:"]
            page.append("<h3>Alerts</h3><ul>")
        for alert in alerts:
            summary, description = str(alert.get("summary", "")), alert.get("description")
            text.append(f"- [{alert.get('status', '')}] {summary}")
            item = f"<li>[{esc(str(alert.get('status', '')))}] <b>{esc(summary)}</b>"
            if description:
                text.append(f"  {description}")
                item += f"<br>{esc(str(description))}"
            for link in alert.get("links") or ():
                href, label = str(link.get("href", "")), str(link.get("text") or "")
                text.append(f"  {label or 'link'}: {href}")
                if href.lower().startswith(_SAFE_LINK_SCHEMES):  # no javascript: links
                    item += f"<br><a href=\"{esc(href)}\">{esc(label or href)}</a>"
            page.append(item + "</li>")
        if alerts:
            page.append("</ul>")
        footer = f"Sent by Baton {__version__} for incident {inc['id']}."
        text += ["", "-- ", footer]
        page.append(f"<p><small>{esc(footer)}</small></p>")
        body = "<!DOCTYPE html><html><body>" + "\n".join(page) + "</body></html>"
        return "\n".join(text) + "\n", body

    def build(self, notification: Notification, recipients: Sequence[str],
              root: str | None) -> EmailMessage:
        inc = notification.incident
        msg = EmailMessage()
        msg["From"] = self._from_header
        msg["To"] = ", ".join(recipients)
        msg["Subject"] = self.subject(notification)
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = message_id(notification.idempotency_key)
        if root is not None and root != msg["Message-ID"]:
            msg["In-Reply-To"] = root
            msg["References"] = root
        msg["X-Baton-Incident"] = _one_line(inc["id"], 100)
        msg["X-Baton-Action"] = notification.action
        # RFC 3834: tells vacation responders and ticket systems not to answer a robot.
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        plain, page = self.bodies(notification)
        # Quoted-printable is 7-bit clean: no dependence on the relay offering 8BITMIME.
        msg.set_content(plain, cte="quoted-printable")
        msg.add_alternative(page, subtype="html", cte="quoted-printable")
        return msg

    def root(self, incident: Mapping[str, Any]) -> str | None:
        """The Message-ID this connector recorded for the incident, if any."""
        refs = [r for r in incident.get("external_refs") or () if r.get("connector") == self.name]
        return str(refs[-1]["id"]) if refs and refs[-1].get("id") else None

    # --- the wire ----------------------------------------------------------------------

    def _scrub(self, text: str, limit: int = _DETAIL_CHARS * 2) -> str:
        """Servers may quote what they were sent: neither the password nor its base64
        forms (AUTH LOGIN, AUTH PLAIN) may reach a detail or a log."""
        return self.scrub(text, min(limit, _DETAIL_CHARS),
                          also=self._secret_forms() if self._password else ())


    def _secret_forms(self) -> list[str]:
        assert self._password is not None
        plain = f"\0{self._user}\0{self._password}".encode()
        return [self._password, base64.b64encode(self._password.encode()).decode(),
                base64.b64encode(plain).decode()]

    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        recipients, origin = self.recipients(notification.target or {})
        if not recipients:
            return Outcome.permanent(f"no recipient: {origin} gives no email address")
        root = self.root(notification.incident)
        msg = self.build(notification, recipients, root)
        ref = ExternalRef(self.name, root or str(msg["Message-ID"]))
        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, local_hostname=self.helo_name,
            use_tls=self.security == "tls", start_tls=self.security == "starttls",
            tls_context=self._tls)
        # CancelledError (the dispatcher's timeout, shutdown) is never caught: it must
        # propagate. The finally closes the socket whatever happened.
        try:
            await client.connect()
            if self._user is not None and self._password is not None:
                await client.login(self._user, self._password)  # revealed only for the wire
            refused, reply = await client.send_message(
                msg, sender=self.sender, recipients=recipients)
            # The message is accepted: a slow or failed QUIT must not turn that into a
            # retry (a second copy), so it is bounded and its failure ignored.
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                async with asyncio.timeout(QUIT_SECONDS):
                    await client.quit()
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return self._refused(exc.recipients)
        except aiosmtplib.SMTPResponseException as exc:
            detail = self._scrub(f"SMTP {exc.code} from {self.host}: {exc.message}")
            if 400 <= exc.code < 500:
                return Outcome.retryable(detail, exc.code)
            return Outcome.permanent(detail, exc.code)
        except (OSError, TimeoutError) as exc:  # refused, reset, TLS, SMTPTimeoutError
            return Outcome.retryable(self._scrub(
                f"{type(exc).__name__} talking to SMTP {self.host}:{self.port}: {exc}"))
        except aiosmtplib.SMTPException as exc:  # no STARTTLS or AUTH offered: config
            return Outcome.permanent(self._scrub(
                f"{type(exc).__name__} from SMTP {self.host}:{self.port}: {exc}"))
        finally:
            client.close()
        detail = f"SMTP 250 from {self.host}: {reply}"
        if refused:  # the message is out; a retry would send it to the others again
            detail += "; refused: " + ", ".join(
                f"{addr} ({r.code} {r.message})" for addr, r in refused.items())
        return Outcome.ok(self._scrub(detail), 250, ref)

    def _refused(self, refusals: Sequence[aiosmtplib.SMTPRecipientRefused]) -> Outcome:
        """Every recipient refused: retry if any refusal was transient."""
        detail = self._scrub("SMTP refused every recipient: " + ", ".join(
            f"{r.recipient} ({r.code} {r.message})" for r in refusals))
        transient = [r.code for r in refusals if 400 <= r.code < 500]
        if transient:
            return Outcome.retryable(detail, transient[0])
        return Outcome.permanent(detail, refusals[0].code if refusals else None)
