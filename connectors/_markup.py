"""Text from alerts made safe for where a connector puts it: one line, escaped, clipped.

Alert text is written by whoever configured the monitoring, and a title like
``<!channel>``, ``[x](http://...)`` or ``</pre>`` must reach people as the text it is, not
as a ping, a link or the end of a code block. Each function serves one target syntax and
names the vendor document it follows. Pure functions; no I/O.
"""

from __future__ import annotations

import re
from typing import Any

from ._text import ELLIPSIS


# --- Slack mrkdwn ----------------------------------------------------------------------
# "Formatting text for app surfaces" (docs.slack.dev/messaging/formatting-message-text):
# &, < and > are control characters and must be sent as &amp; &lt; &gt;. With < escaped
# no <!channel>, <!here>, <@U...> or <url|label> can form, so nothing pings or links.
def slack_escape(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_clip(escaped: str, limit: int) -> str:
    """``clip`` for already-escaped mrkdwn: a cut never leaves half an entity (``&am``),
    which Slack would show as the raw characters."""
    if len(escaped) <= limit:
        return escaped
    head = escaped[: limit - 1]
    amp = head.rfind("&", len(head) - 4)  # the longest entity, &amp;, is 5 characters
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + ELLIPSIS


# --- Markdown (Teams Adaptive Card TextBlocks) ------------------------------------------
# TextBlock text is Markdown in Teams ("Text formatting in cards": bold, italic, lists,
# links). CommonMark lets any ASCII punctuation be backslash-escaped (spec 2.4); these are
# the characters that open emphasis, code, links, images, headings, quotes and HTML.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#!|~])")
# Block markers that only count at a line's start: list items and ordered lists.
_MD_LINE_START = re.compile(r"(?m)^(\s*\d*)([-+.)])(?=\s)")


def markdown_escape(text: Any) -> str:
    escaped = _MD_SPECIAL.sub(r"\\\1", str(text))
    # "1." is escaped as "1\." (a backslash before a digit is a literal backslash).
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)


def markdown_clip(text: Any, limit: int) -> str:
    """``markdown_escape(text)`` within ``limit`` characters: the cut is made on the text
    before escaping, so it never separates a backslash from what it escapes, and sized on
    the text after escaping, so the escapes cannot carry it past ``limit``."""
    raw = str(text)
    whole = markdown_escape(raw)
    if len(whole) <= limit:
        return whole
    keep = limit - len(ELLIPSIS)
    while keep > 0 and (over := len(markdown_escape(raw[:keep])) + len(ELLIPSIS) - limit) > 0:
        keep -= max(1, over // 2)  # an escape at most doubles a character
    return markdown_escape(raw[:max(keep, 0)]) + ELLIPSIS


# --- Redmine text formatting --------------------------------------------------------------
# Redmine renders descriptions and journal notes with the instance's text formatting
# (Administration > Settings > General): Textile (``textile``) or Markdown (``markdown``,
# Redcarpet; ``common_mark``, Redmine 5.1+). Payload text is shown verbatim in a block
# those formatters do not parse: Textile's <pre> (its content is HTML-escaped by Redmine,
# "RedmineTextFormattingTextile": "<pre> ... </pre>" for preformatted text), a fenced code
# block in Markdown (CommonMark 4.5: the fence is longer than any backtick run inside).
REDMINE_FORMATS = ("textile", "markdown", "common_mark", "none")
# Redmine's Textile (redcloth3.rb, rip_offtags) escapes everything after <pre> up to the
# next <pre>, <code>, <kbd> or <notextile> tag, opening or closing (OFFTAG_MATCH).
_OFFTAG = re.compile(r"<(/?(?:pre|code|kbd|notextile)\b)", re.IGNORECASE)
_BACKTICKS = re.compile(r"`+")


def redmine_verbatim(text: str, formatting: str) -> str:
    """``text`` as a block the instance's formatter shows as it is."""
    if formatting == "none":
        return text
    if formatting == "textile":
        # Any of those tags inside would end the escaping early: a zero-width space
        # breaks the tag without changing what a reader sees.
        return "<pre>\n" + _OFFTAG.sub("<\u200b\\1", text) + "\n</pre>"
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


# --- ServiceNow journal fields ----------------------------------------------------------------
# Journal fields (work_notes, comments) are plain text, except that text between [code]
# and [/code] is rendered as HTML (property glide.ui.security.allow_codetag, true by
# default; "Enable HTML in journal fields", ServiceNow docs). A zero-width space defuses the
# tags in alert text; Baton itself never writes them.
_SN_CODE = re.compile(r"\[(/?code)\]", re.IGNORECASE)


def servicenow_journal(text: str) -> str:
    return _SN_CODE.sub("[\u200b\\1]", text)
