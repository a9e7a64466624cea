"""``connectors/_text.py``: one-line fields and cuts counted as each vendor counts."""

from __future__ import annotations

import pytest
from baton_connectors._text import clip, one_line, utf16_len


def test_one_line_collapses_every_kind_of_whitespace() -> None:
    assert one_line(" a\nb\r\n\tc   d\u00a0e\u2028f ") == "a b c d e f"


def test_utf16_counts_astral_characters_twice() -> None:
    assert utf16_len("a✓日") == 3 and utf16_len("🔥") == 2 and utf16_len("") == 0


@pytest.mark.parametrize(("text", "limit", "utf16", "expected"), [
    ("abc", 3, False, "abc"),
    ("abcd", 3, False, "ab…"),
    ("🔥🔥🔥", 3, False, "🔥🔥🔥"),
    ("🔥🔥🔥", 6, True, "🔥🔥🔥"),
    ("🔥🔥🔥", 5, True, "🔥🔥…"),  # 2 + 2 + 1
    ("🔥🔥🔥", 4, True, "🔥…"),  # the second emoji would need units 3-4: left out whole
    ("x🔥🔥", 4, True, "x🔥…"),
    ("xx🔥🔥", 4, True, "xx…"),  # the emoji would end at unit 4, the ellipsis at 5
    ("abc", 0, False, ""),
])
def test_clip(text: str, limit: int, utf16: bool, expected: str) -> None:
    cut = clip(text, limit, utf16=utf16)
    assert cut == expected
    assert (utf16_len(cut) if utf16 else len(cut)) <= limit
    cut.encode("utf-8")  # never a lone surrogate


def test_clip_with_an_ascii_mark_counts_the_mark_too() -> None:
    text = "ab" + "🔥" * 5
    assert clip(text, 12, utf16=True, mark="...") == text  # 2 + 5 x 2 units
    assert clip(text, 11, utf16=True, mark="...") == "ab🔥🔥🔥..."  # 2 + 6 + 3
    assert clip("abc🔥", 4, utf16=True) == "abc…"
    assert clip("abcdef", 2, mark="...") == ""
