"""A strict SMTP submission server, the vendor behind the ``email`` connector.

Written from RFC 5321 (SMTP), RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 6409 (message
submission) and RFC 5322 (the message format), as a submission server on port 587 behaves:
every command but EHLO/STARTTLS/QUIT before STARTTLS gets ``530 Must issue a STARTTLS
command first``; AUTH (PLAIN, LOGIN) is offered only over TLS, is required before MAIL
(``530 5.7.0 Authentication required``) and refuses wrong credentials with ``535 5.7.8``;
the envelope sender must be the authenticated user (``553 5.7.1``); recipients in the
reserved ``.invalid`` domain do not exist (``550 5.1.1``) and those at ``busy.example``
are temporarily unavailable (``450 4.2.1``); a message without exactly one From, Date and
Message-ID (RFC 5322 3.6) or whose From is not the sender is refused (``550 5.6.0`` /
``550 5.7.1``); one without Baton's ``X-Baton-Action`` header gets ``554`` (the fake needs
it to know the action). A reply code of 421 closes the connection, as RFC 5321 requires.

The certificate is self-signed for 127.0.0.1, made with ``openssl`` once per test run;
``config`` trusts it through ``ca_file``. The server runs in the test's own event loop
(aiosmtpd's protocol on ``loop.create_server``), so ``FakeState``'s events work as for
the HTTP fakes. Accepted actions are the ``X-Baton-Action`` header's value; the keys are
``(Message-ID,)``. SMTP has no Retry-After (``RETRY_AFTER = False``); scripted replies
become SMTP codes through ``status_for``.
"""

from __future__ import annotations

import asyncio
import atexit
import email
import email.policy
import functools
import shutil
import ssl
import subprocess
import tempfile
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from baton.secret import Secret

from . import FakeState, Seen

USERNAME = "baton@example.com"
PASSWORD = "s3cr3t-SMTP-password-do-not-leak"
RETRY_AFTER = False
ACTIONS = frozenset({"trigger", "update", "acknowledge", "resolve", "note"})
Mode = Literal["starttls", "tls", "none"]


def status_for(http_status: int) -> int:
    """The SMTP code this fake answers for the suite's scripted HTTP status."""
    if 200 <= http_status < 300:
        return 250
    if http_status in (408, 425, 429) or http_status >= 500:
        return 421 if http_status in (502, 503) else 451
    return 554 if http_status in (400, 409, 422) else 550


@dataclass(frozen=True)
class CertFiles:
    cert: str
    key: str


@functools.cache
def cert_files() -> CertFiles:
    """A self-signed certificate for 127.0.0.1, made once per run and removed at exit."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the email fake needs the openssl command to make its certificate")
    folder = Path(tempfile.mkdtemp(prefix="baton-fake-smtp-"))
    atexit.register(shutil.rmtree, folder, True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(  # a fixed argument list, no shell
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return CertFiles(str(cert), str(key))


def config(base_url: str) -> dict[str, Any]:
    where = urlsplit(base_url)
    return {
        "host": where.hostname or "127.0.0.1",
        "port": where.port or 587,
        "security": "starttls",
        "username": USERNAME,
        "password": Secret(PASSWORD, "env:SMTP_PASSWORD"),
        "ca_file": cert_files().cert,
        "from": f"Baton <{USERNAME}>",
        "to": ["oncall@example.com"],
        "subject_prefix": "[Baton]",
        "helo_name": "baton.test",
    }


async def serve(state: FakeState) -> tuple[str, Callable[[], Awaitable[None]]]:
    server = FakeSMTP(state)
    port = await server.start()
    return f"smtp://127.0.0.1:{port}", server.stop


@dataclass(frozen=True)
class Delivered:
    """One message the fake accepted, with what the session looked like."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    tls: bool
    login: str | None
    helo: str | None


class FakeSMTP:
    """The server; ``mode`` is how clients must connect, ``auth`` whether AUTH is required."""

    def __init__(self, state: FakeState, mode: Mode = "starttls", auth: bool = True,
                 username: str = USERNAME, password: str = PASSWORD) -> None:
        self.state, self.mode, self.auth = state, mode, auth
        self._credentials = (username.encode(), password.encode())
        self.messages: list[Delivered] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._sessions: list[SMTP] = []

    def _tls(self) -> ssl.SSLContext:
        files = cert_files()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(files.cert, files.key)
        return ctx

    def _protocol(self) -> SMTP:
        with warnings.catch_warnings():
            # Implicit TLS is invisible to aiosmtpd's own check (the socket is TLS
            # already), and clear-text AUTH in mode "none" is what that test is about.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            smtp = SMTP(
                self, hostname="fake-smtp.test", ident="Baton fake ESMTP",
                tls_context=self._tls() if self.mode == "starttls" else None,
                require_starttls=self.mode == "starttls",
                authenticator=self._authenticate if self.auth else None,
                auth_required=self.auth, auth_require_tls=self.mode == "starttls",
                loop=asyncio.get_running_loop())
        self._sessions.append(smtp)
        return smtp

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, "127.0.0.1", 0, ssl=self._tls() if self.mode == "tls" else None)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = []
        for smtp in self._sessions:
            if smtp.transport is not None:
                smtp.transport.close()
            task = smtp._handler_coroutine  # a session blocked in a scripted delay
            if task is not None and not task.done():
                task.cancel()
                tasks.append(task)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _refuse(self, reply: str) -> str:
        self.state.rejected.append((int(reply[:3]), reply[4:]))
        return reply

    # --- aiosmtpd hooks ------------------------------------------------------------

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and (auth_data.login, auth_data.password) == self._credentials)
        if not ok:
            self.state.rejected.append((535, f"{mechanism}: credentials invalid"))
            return AuthResult(success=False, handled=False)
        # Only the login, so aiosmtpd's debug log of the result shows no password.
        return AuthResult(success=True, auth_data=auth_data.login.decode())

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if self.auth and address != session.auth_data:
            return self._refuse("553 5.7.1 Sender address rejected: not owned by user")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        domain = address.rpartition("@")[2].lower()
        if domain.endswith(".invalid"):
            return self._refuse("550 5.1.1 Recipient address rejected: user unknown")
        if domain == "busy.example":
            return self._refuse("450 4.2.1 Mailbox busy, try again later")
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or b"")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        transport = server.transport
        tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None)
        seen = Seen("DATA", f"smtp://127.0.0.1:{self.port}",
                    {"mail_from": str(envelope.mail_from),
                     "rcpt_to": ",".join(envelope.rcpt_tos), "tls": str(tls)},
                    {k: str(v) for k, v in message.items()}, raw)
        self.state.requests.append(seen)
        self.state.arrived.set()
        if problem := self._problem(message, str(envelope.mail_from)):
            return self._refuse(problem)
        reply = await self.state.next_reply()
        code = status_for(reply.status) if reply else 250
        if code == 421:  # RFC 5321 3.8: the server closes the channel after a 421
            if transport is not None:
                asyncio.get_running_loop().call_soon(transport.close)
            return "421 4.3.2 Service not available, closing transmission channel"
        if code != 250:
            kind = "Requested action aborted" if code < 500 else "Message rejected"
            text = kind if reply is None or reply.message == "scripted failure" else reply.message
            return f"{code} {'4.3.0' if code < 500 else '5.7.1'} {text} (scripted)"
        action = str(message["X-Baton-Action"])
        self.messages.append(Delivered(
            str(envelope.mail_from), tuple(envelope.rcpt_tos), message, raw, tls,
            session.auth_data if isinstance(session.auth_data, str) else None,
            session.host_name))
        self.state.accept(action, (str(message["Message-ID"]),), seen)
        return f"250 2.0.0 Ok: queued as FAKE{len(self.messages):04d}"

    def _problem(self, message: EmailMessage, mail_from: str) -> str | None:
        for name in ("From", "Date", "Message-ID"):
            if len(message.get_all(name) or ()) != 1:
                return f"550 5.6.0 Message must have exactly one {name} header"
        if self.auth and parseaddr(str(message["From"]))[1] != mail_from:
            return "550 5.7.1 From header does not match the authenticated sender"
        if str(message.get("X-Baton-Action", "")) not in ACTIONS:
            return "554 5.6.0 X-Baton-Action header missing or unknown (fake)"
        return None
