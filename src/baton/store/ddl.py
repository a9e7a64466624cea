"""Table definitions, portable between SQLite and PostgreSQL.

Times are epoch seconds in a float column (``{float}``: REAL on SQLite, DOUBLE PRECISION on
PostgreSQL) so comparisons and ordering need no dialect-specific date functions. Ids are
ULIDs minted by the application, so no sequences or AUTOINCREMENT are needed either.
"""

from __future__ import annotations

import hashlib
import json
import time

from ..errors import ConfigError
from ..ids import new_id
from ..model import Alert
from .tx import Tx

SCHEMA_VERSION = 2

TABLES = """
CREATE TABLE IF NOT EXISTS baton_meta (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  id TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  received_at {float} NOT NULL,
  alert_count INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS incidents (
  id TEXT PRIMARY KEY,
  incident_key TEXT NOT NULL,
  -- equals incident_key while the incident is open, NULL once resolved: the UNIQUE index
  -- makes "one open incident per key" a storage guarantee, not a hope, across replicas.
  open_key TEXT UNIQUE,
  status TEXT NOT NULL,
  severity TEXT NOT NULL,
  title TEXT NOT NULL,
  service TEXT,
  labels TEXT NOT NULL,
  route TEXT,
  created_at {float} NOT NULL,
  updated_at {float} NOT NULL,
  last_seen_at {float} NOT NULL,
  acknowledged_at {float},
  acknowledged_by TEXT,
  resolved_at {float},
  resolved_by TEXT,
  policy TEXT,
  policy_snapshot TEXT,
  level INTEGER NOT NULL,
  next_at {float},
  loops INTEGER NOT NULL,
  event_count INTEGER NOT NULL,
  recurrence_of TEXT,
  -- why nobody is notified now (silence, muted route, inhibition) as JSON, or NULL
  suppressed TEXT
);
CREATE INDEX IF NOT EXISTS incidents_key ON incidents (incident_key, created_at);
CREATE INDEX IF NOT EXISTS incidents_status ON incidents (status, id);
CREATE INDEX IF NOT EXISTS incidents_created ON incidents (created_at);
CREATE TABLE IF NOT EXISTS alerts (
  incident_id TEXT NOT NULL,
  -- an alert is identified by the source instance that sent it and its dedup key
  source TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
  status TEXT NOT NULL,
  severity TEXT NOT NULL,
  doc TEXT NOT NULL,
  first_seen_at {float} NOT NULL,
  last_seen_at {float} NOT NULL,
  event_count INTEGER NOT NULL,
  PRIMARY KEY (incident_id, source, dedup_key)
);
-- every event finds the open incidents holding its alert by (dedup key, source)
CREATE INDEX IF NOT EXISTS alerts_dedup ON alerts (dedup_key, source);
-- The match labels of every firing alert of an open incident, one row per label: an
-- inhibition check looks up the few alerts with a rule's source labels and the target's
-- ``equal`` values through (name, value) instead of decoding every open alert.
-- Indexed through nkey/vkey, the name and value themselves up to 128 characters and a
-- digest of longer ones: a B-tree entry has a size limit (about 2.7 kB on PostgreSQL),
-- and a label value can be far longer than that.
CREATE TABLE IF NOT EXISTS alert_labels (
  incident_id TEXT NOT NULL,
  source TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  nkey TEXT NOT NULL,
  vkey TEXT NOT NULL,
  PRIMARY KEY (incident_id, source, dedup_key, nkey)
);
CREATE INDEX IF NOT EXISTS alert_labels_value ON alert_labels (nkey, vkey);
-- What holds a suppressed incident (silence:<id>, inhibit:<incident id>, mute:<route>):
-- when a silence is expired or an inhibiting incident resolves, the incidents it held are
-- found here and re-evaluated at once instead of at their next time boundary.
CREATE TABLE IF NOT EXISTS holds (
  incident_id TEXT NOT NULL,
  holder TEXT NOT NULL,
  PRIMARY KEY (incident_id, holder)
);
CREATE INDEX IF NOT EXISTS holds_holder ON holds (holder);
CREATE TABLE IF NOT EXISTS timeline (
  id TEXT PRIMARY KEY,
  incident_id TEXT NOT NULL,
  at {float} NOT NULL,
  type TEXT NOT NULL,
  actor TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_incident ON timeline (incident_id, id);
CREATE TABLE IF NOT EXISTS deliveries (
  id TEXT PRIMARY KEY,
  incident_id TEXT NOT NULL,
  connector TEXT NOT NULL,
  action TEXT NOT NULL,
  seq INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  target TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  created_at {float} NOT NULL,
  next_attempt_at {float},
  lease_until {float},
  claimed_by TEXT,
  delivered_at {float},
  last_error TEXT,
  last_status INTEGER,
  external_ref TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (connector, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_order ON deliveries (incident_id, connector, seq);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state, id);
-- Escalation timers: rows with a due time, fired inside a transaction that also applies
-- their effect, so each fires once. Pending ones cost an index entry, no memory or CPU.
CREATE TABLE IF NOT EXISTS timers (
  id TEXT PRIMARY KEY,
  incident_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  due_at {float} NOT NULL,
  state TEXT NOT NULL,
  level INTEGER NOT NULL,
  loop_no INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  created_at {float} NOT NULL,
  fired_at {float}
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (state, due_at);
CREATE INDEX IF NOT EXISTS timers_incident ON timers (incident_id, state);
CREATE TABLE IF NOT EXISTS silences (
  id TEXT PRIMARY KEY,
  matchers TEXT NOT NULL,
  starts_at {float} NOT NULL,
  ends_at {float} NOT NULL,
  created_by TEXT NOT NULL,
  comment TEXT NOT NULL,
  created_at {float} NOT NULL,
  expired_by TEXT
);
CREATE INDEX IF NOT EXISTS silences_active ON silences (ends_at, starts_at);
CREATE TABLE IF NOT EXISTS external_refs (
  incident_id TEXT NOT NULL,
  connector TEXT NOT NULL,
  ref_id TEXT NOT NULL,
  url TEXT,
  PRIMARY KEY (incident_id, connector)
);
CREATE INDEX IF NOT EXISTS external_refs_by_ref ON external_refs (connector, ref_id);
-- Inbound callback events already applied, by the vendor's event id: a replayed or
-- redelivered callback finds its row and changes nothing a second time.
CREATE TABLE IF NOT EXISTS callback_events (
  connector TEXT NOT NULL,
  event_id TEXT NOT NULL,
  received_at {float} NOT NULL,
  incident_id TEXT,
  result TEXT NOT NULL,
  PRIMARY KEY (connector, event_id)
);
-- Message ids of signed inbound requests (Standard Webhooks webhook-id) already taken.
CREATE TABLE IF NOT EXISTS inbound_messages (
  source TEXT NOT NULL,
  message_id TEXT NOT NULL,
  received_at {float} NOT NULL,
  PRIMARY KEY (source, message_id)
);
-- Retention (store/retention.py) deletes by age, and takes a pruned incident's callback
-- ledger rows with it: without these each batch would scan its whole table.
CREATE INDEX IF NOT EXISTS events_received ON events (received_at);
CREATE INDEX IF NOT EXISTS incidents_resolved ON incidents (status, resolved_at);
CREATE INDEX IF NOT EXISTS callback_events_received ON callback_events (received_at);
CREATE INDEX IF NOT EXISTS callback_events_incident ON callback_events (incident_id);
CREATE INDEX IF NOT EXISTS inbound_messages_received ON inbound_messages (received_at);
"""


def statements(float_type: str) -> list[str]:
    # Statements are split on ";": one inside a comment would cut a statement in two.
    assert not any(";" in line for line in TABLES.splitlines()
                   if line.strip().startswith("--")), "no ';' in DDL comments"
    sql = TABLES.replace("{float}", float_type)
    return [s.strip() for s in sql.split(";") if s.strip()]


def prepare(tx: Tx) -> None:
    """Create the tables of an empty database, or check that an existing one has this
    version's layout, upgrading layout 1 in place. A database of another layout is refused
    with a clear error instead of failing later on a missing column."""
    tables = {r["name"] for r in tx.all(
        "SELECT name FROM sqlite_master WHERE type = 'table'" if tx.dialect == "sqlite"
        else "SELECT table_name AS name FROM information_schema.tables "
             "WHERE table_schema = current_schema()")}
    if "incidents" in tables:
        row = tx.one("SELECT value FROM baton_meta WHERE name = 'schema_version'") \
            if "baton_meta" in tables else None
        found = row["value"] if row else "none"
        if found == "1":
            _upgrade_from_1(tx)
            found = str(SCHEMA_VERSION)
        if found != str(SCHEMA_VERSION):
            raise ConfigError([
                f"storage.url: the database has storage layout {found}, this Baton needs "
                f"{SCHEMA_VERSION}; point storage.url at a new database (layout 1 is "
                f"upgraded in place; there are no migrations from pre-release layouts)"])
    for stmt in statements(tx.float_type):
        tx.run(stmt)
    tx.run("INSERT INTO baton_meta (name, value) VALUES ('schema_version', ?) "
           "ON CONFLICT DO NOTHING", (str(SCHEMA_VERSION),))


def index_key(text: str) -> str:
    """What the label index stores for a name or value: itself up to 128 characters, a
    digest of a longer one (that cannot be mistaken for a short one: it is 71 long)."""
    if len(text) <= 128:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _upgrade_from_1(tx: Tx) -> None:
    """Layout 1 had neither the label index nor the holds of suppressed incidents: the new
    tables come from the CREATE statements; the index is filled from the firing alerts of
    open incidents, and suppressed incidents get a recheck timer due now, so the next poll
    re-evaluates them and writes their holds."""
    for stmt in statements(tx.float_type):
        tx.run(stmt)
    rows = tx.all("SELECT a.incident_id, a.source, a.dedup_key, a.doc FROM alerts a "
                  "JOIN incidents i ON i.id = a.incident_id "
                  "WHERE a.status = 'firing' AND i.open_key IS NOT NULL")
    for row in rows:
        labels = Alert.from_dict(json.loads(row["doc"])).match_labels()
        for name, value in labels.items():
            tx.insert("alert_labels", {"incident_id": row["incident_id"],
                                       "source": row["source"], "dedup_key": row["dedup_key"],
                                       "name": name, "value": value, "nkey": index_key(name),
                                       "vkey": index_key(value)},
                      on_conflict_nothing=True)
    now = time.time()
    for row in tx.all("SELECT id FROM incidents WHERE suppressed IS NOT NULL "
                      "AND open_key IS NOT NULL"):
        tx.insert("timers", {"id": new_id(now), "incident_id": row["id"],
                             "kind": "unsuppress", "due_at": now, "state": "pending",
                             "level": 0, "loop_no": 0, "seq": 0, "created_at": now})
    tx.run("UPDATE baton_meta SET value = ? WHERE name = 'schema_version'",
           (str(SCHEMA_VERSION),))
