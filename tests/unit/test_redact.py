"""Scrub first, then cut (issue 10, finding 8), in every form a secret is quoted in."""

from __future__ import annotations

import base64
from urllib.parse import quote

from baton.redact import redact, secret_forms, secret_values
from baton.secret import Secret

SECRET = "tw1l10/t0ken+with=odd&chars"


def test_a_secret_straddling_the_cut_leaves_no_prefix() -> None:
    for offset in range(180, 200):
        text = "x" * offset + SECRET + " tail"
        out = redact(text, secret_forms([SECRET]), 200)
        assert len(out) <= 200
        assert SECRET[:4] not in out, (offset, out)


def test_base64_and_percent_encoded_forms_are_hidden() -> None:
    encoded = [SECRET, base64.b64encode(SECRET.encode()).decode(),
               base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
               quote(SECRET, safe=""), quote(SECRET)]
    out = redact(" | ".join(encoded), secret_forms([SECRET]), 10_000)
    assert out == " | ".join(["***"] * len(encoded))


def test_empty_secrets_are_ignored_and_config_secrets_are_found() -> None:
    assert secret_forms(["", None]) == ()
    config = {"a": Secret("one"), "b": [{"c": Secret("two")}], "d": "plain"}
    assert sorted(secret_values(config)) == ["one", "two"]
    assert redact("one\n two  plain", secret_forms(secret_values(config))) == "*** *** plain"
