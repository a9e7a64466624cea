"""A claim carries each delivery's notification document, read in the claim's own
transaction: it must be exactly what the separate read gives, and a broken row must
still fail only its own delivery."""

from __future__ import annotations

from baton.model import Alert
from baton.store import DeliveryOutcome, RoutedAlert, Store, TargetSpec
from baton.store.tx import Tx

T0 = 1_767_225_600.0


def routed(key: str, *connectors: str, group: str | None = None) -> RoutedAlert:
    a = Alert(dedup_key=key, status="firing", severity="warning", summary=f"problem {key}",
              source_type="generic", source_name="app", labels={"k": key})
    return RoutedAlert(alert=a, key=f"r|{group or key}", route="r", policy="p",
                       policy_snapshot={"name": "p", "repeat": 0, "levels": [
                           {"notify": [TargetSpec(c).to_dict() for c in connectors]}]})


async def test_a_claim_carries_the_document_a_separate_read_gives(store: Store) -> None:
    result = await store.ingest("app", "{}", [routed("a1", "x", "y", group="g"),
                                              routed("a2", "x", "y", group="g"),
                                              routed("b", "x", "y")], T0)
    g, _ = result.incident_ids
    (x_of_g,) = [c for c in await store.claim("x", 10, T0, 60, "w") if c.incident_id == g]
    # A delivered notification with an external reference shows up in later documents.
    await store.finish(DeliveryOutcome(x_of_g.id, "delivered", T0 + 1, status=200,
                                       external_ref={"id": "T-1", "url": "https://t/1"}), "w")
    claimed = await store.claim("y", 10, T0 + 2, 60, "w")
    assert len(claimed) == 2
    for c in claimed:
        expected = await store.notification_incident(c)
        assert c.incident == expected
        assert c.incident is not None and list(c.incident) == list(expected)  # key order
    grouped = next(c.incident for c in claimed if c.incident_id == g)
    assert grouped is not None
    assert [a["dedup_key"] for a in grouped["alerts"]] == ["a1", "a2"]
    assert grouped["external_refs"] == [{"connector": "x", "id": "T-1", "url": "https://t/1"}]


async def test_a_broken_document_leaves_only_its_own_delivery_without_one(
        store: Store) -> None:
    result = await store.ingest("app", "{}", [routed("good", "x"), routed("bad", "x")], T0)
    good, bad = result.incident_ids

    def corrupt(tx: Tx) -> None:
        tx.run("UPDATE incidents SET labels = '{broken' WHERE id = ?", (bad,))

    await store.engine.write(corrupt)
    claimed = {c.incident_id: c for c in await store.claim("x", 10, T0, 60, "w")}
    assert claimed[bad].incident is None  # the dispatcher reads it itself, and fails alone
    assert claimed[good].incident == await store.notification_incident(claimed[good])
