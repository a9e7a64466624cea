"""generic: the optional alert name of Baton's own format (the fixtures show the rest)."""

from __future__ import annotations

import pytest

from baton.errors import PayloadError
from baton.model import Alert
from baton.sources.generic import GenericSource


def parse(body: object) -> Alert:
    (alert,) = GenericSource("app", {}).parse(body, {})
    return alert


def test_name_leads_the_title_and_is_optional() -> None:
    alert = parse({"dedup_key": "k", "name": "nightly-backup", "summary": "db-1 failed"})
    assert alert.title == "nightly-backup: db-1 failed"
    assert parse({"dedup_key": "k", "summary": "db-1 failed"}).name is None
    assert parse({"dedup_key": "k", "name": None, "summary": "s"}).name is None
    assert parse({"dedup_key": "k", "name": "", "summary": "s"}).name is None


def test_an_alert_document_baton_sent_comes_back_with_its_name() -> None:
    # What the webhook connector sends is the alert document, name included.
    sent = Alert(dedup_key="k", status="firing", severity="error", summary="5xx above 5%",
                 source_type="alertmanager", source_name="prom", name="HighErrorRate")
    back = parse(sent.to_dict())
    assert (back.name, back.summary, back.source_type) == ("HighErrorRate", "5xx above 5%",
                                                           "generic")


def test_a_name_that_is_not_text_is_named_in_the_error() -> None:
    with pytest.raises(PayloadError) as caught:
        parse({"dedup_key": "k", "name": ["x"], "summary": "s"})
    assert "payload.name" in str(caught.value)
