"""Text fitted to a vendor's field: one line where the vendor shows one line, and cut to
the vendor's limit as the vendor counts it.

Vendors count differently: most in characters (code points), Jira (a Java platform) in
UTF-16 code units, where an emoji outside the Basic Multilingual Plane is two. A cut is
always made between code points, so a surrogate pair is never split, and an ellipsis marks
a text that was cut.
"""

from __future__ import annotations

from typing import Any

ELLIPSIS = "…"


def one_line(text: Any) -> str:
    """``text`` with every run of whitespace (newlines, tabs, repeated spaces) as one
    space, trimmed: for titles, subjects and summaries that vendors show on one line."""
    return " ".join(str(text).split())


def utf16_len(text: str) -> int:
    """The length of ``text`` in UTF-16 code units, as Java and JavaScript count it."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clip(text: str, limit: int, *, utf16: bool = False, mark: str = ELLIPSIS) -> str:
    """``text`` cut to at most ``limit`` characters (``utf16``: UTF-16 code units), ``mark``
    replacing its end when it was cut; never splits a code point. (SMS passes ``...``: an
    ellipsis character is outside GSM-7 and would make Twilio send the text as UCS-2.)"""
    size = utf16_len if utf16 else len
    if size(text) <= limit:
        return text
    budget = limit - size(mark)
    if budget < 0:
        return ""
    used = 0
    for index, ch in enumerate(text):
        used += 2 if utf16 and ord(ch) > 0xFFFF else 1
        if used > budget:
            return text[:index] + mark
    return text + mark  # unreachable: the text was longer than the limit
