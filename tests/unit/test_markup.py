"""The connectors' text helpers at their edges: cuts that must not break an escape, a
surrogate pair or a fence, and escapes that must leave text reading as it was written."""

from __future__ import annotations

import pytest
from baton_connectors import _markup as m


@pytest.mark.parametrize(("raw", "limit", "expected"), [
    ("ab<<<<", 6, "ab…"),          # "ab&lt" would be cut: the partial entity goes
    ("a&b", 5, "a…"),              # "a&am"
    ("a&b", 7, "a&amp;b"),         # fits
    ("<<", 6, "&lt;…"),            # a whole entity is kept
])
def test_slack_clip_never_splits_an_entity(raw: str, limit: int, expected: str) -> None:
    shown = m.slack_clip(m.slack_escape(raw), limit)
    assert shown == expected and len(shown) <= limit


def test_markdown_escape_disarms_links_emphasis_and_block_markers() -> None:
    assert m.markdown_escape("[x](http://e) **b** _i_ `c` <b>") == (
        "\\[x\\]\\(http://e\\) \\*\\*b\\*\\* \\_i\\_ \\`c\\` \\<b\\>")
    assert m.markdown_escape("# h\n- a\n  + b\n12. c\n3 - 4") == (
        "\\# h\n\\- a\n  \\+ b\n12\\. c\n3 - 4")


def test_redmine_textile_block_cannot_be_closed_from_inside() -> None:
    block = m.redmine_verbatim("x </PRE> <code>y</code> <notextile>", "textile")
    assert block.startswith("<pre>\n") and block.endswith("\n</pre>")
    inner = block.removeprefix("<pre>\n").removesuffix("\n</pre>")
    assert "</PRE>" not in inner and "<code>" not in inner and "<notextile>" not in inner
    assert inner.replace("\u200b", "") == "x </PRE> <code>y</code> <notextile>"


def test_redmine_markdown_fence_outgrows_backticks_inside() -> None:
    assert m.redmine_verbatim("a", "common_mark") == "```text\na\n```"
    assert m.redmine_verbatim("a ````` b", "markdown") == "``````text\na ````` b\n``````"
    assert m.redmine_verbatim("*a*", "none") == "*a*"


def test_servicenow_code_tags_are_broken_in_any_case() -> None:
    assert m.servicenow_journal("[code]<b>[/Code] [codex]") == (
        "[\u200bcode]<b>[\u200b/Code] [codex]")
