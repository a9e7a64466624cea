"""Email, checked against RFC 5322 (Internet Message Format) and RFC 2047/2045.

SMTP has no machine-readable description; the nearest authoritative texts are the RFCs
themselves, applied to the raw message the fake server received in DATA:

* parsed with ``email.policy.strict`` (Python's parser raising on every defect it finds);
* RFC 5322 2.1.1: each line at most 998 octets, excluding CRLF;
* RFC 5322 3.6: ``Date`` and ``From`` present; ``Date``, ``From``, ``Sender``,
  ``Reply-To``, ``To``, ``Cc``, ``Message-ID``, ``In-Reply-To``, ``References`` and
  ``Subject`` at most once each;
* RFC 5322 2.2 / 3.2.2: a header field is ASCII, and unfolded it is one line (folding
  whitespace only), so ``Subject`` is one line; non-ASCII travels RFC 2047-encoded;
* RFC 5322 3.6.4: ``Message-ID`` is ``<id-left@id-right>``;
* RFC 2045 6.1 / 2046 5.1: ``Content-Transfer-Encoding`` of text parts is one of the five
  defined, and multipart bodies carry their boundary.
"""

from __future__ import annotations

import email
import email.errors
import email.policy
import re

from fakes import Seen

ONCE = ("date", "from", "sender", "reply-to", "to", "cc", "message-id", "in-reply-to",
        "references", "subject")
_MSG_ID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")
_CTE = {"7bit", "8bit", "binary", "quoted-printable", "base64"}


def check(seen: Seen) -> list[str]:
    raw = seen.body
    out = []
    lines = raw.split(b"\r\n") if b"\r\n" in raw else raw.split(b"\n")
    out += [f"line {n + 1} is {len(line)} octets; RFC 5322 2.1.1 allows 998"
            for n, line in enumerate(lines) if len(line) > 998]
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    if not head.isascii():
        out.append("header section is not ASCII (RFC 5322 2.2; use RFC 2047 encoded-words)")
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.strict)
        for part in msg.walk():
            for key in part.keys():
                part[key]  # header values are parsed lazily: strict raises here
    except (email.errors.MessageError, ValueError) as exc:
        return [*out, f"email.policy.strict: {exc}"]
    for name in ("date", "from"):
        if msg[name] is None:
            out.append(f"no {name.title()} header (RFC 5322 3.6)")
    names = [k.lower() for k in msg.keys()]
    out += [f"{name} appears {names.count(name)} times (RFC 5322 3.6: at most once)"
            for name in ONCE if names.count(name) > 1]
    unfolded = re.sub(rb"\r?\n[ \t]", b" ", head)
    for line in unfolded.splitlines():
        if line[:1] in (b" ", b"\t"):
            out.append("a header line starts with whitespace after unfolding")
    subject = msg.get("subject")
    if subject is not None and ("\n" in str(subject) or "\r" in str(subject)):
        out.append("Subject is more than one line")
    if (mid := msg.get("message-id")) is not None and not _MSG_ID.match(str(mid).strip()):
        out.append(f"Message-ID {str(mid)!r} is not <left@right> (RFC 5322 3.6.4)")
    for part in msg.walk():
        cte = part.get("content-transfer-encoding")
        if cte is not None and str(cte).lower() not in _CTE:
            out.append(f"Content-Transfer-Encoding {cte!r} (RFC 2045 6.1)")
        if part.is_multipart() and not part.get_boundary():
            out.append("multipart part without a boundary (RFC 2046 5.1)")
    return out
