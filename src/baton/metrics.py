"""Prometheus metrics, one registry per app so tests and embedded uses do not collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.ingested = Counter("baton_alerts_ingested", "Alerts accepted and stored.",
                                ["source"], registry=r)
        self.deduplicated = Counter("baton_alerts_deduplicated",
                                    "Alerts that updated an open incident.", ["source"],
                                    registry=r)
        self.rejected = Counter("baton_ingest_rejected",
                                "Ingest requests refused, by reason.", ["source", "reason"],
                                registry=r)
        self.incidents_opened = Counter("baton_incidents_opened", "Incidents opened.",
                                        ["source"], registry=r)
        self.ingest_latency = Histogram("baton_ingest_duration_seconds",
                                        "Time from request to committed answer.", ["source"],
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.deliveries = Counter("baton_deliveries",
                                  "Delivery attempts by outcome (ok, retryable, permanent) "
                                  "and deliveries given up (dead).", ["connector", "outcome"],
                                  registry=r)
        self.delivery_latency = Histogram("baton_delivery_duration_seconds",
                                          "Duration of one delivery attempt.", ["connector"],
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("baton_delivery_queue_depth",
                                 "Deliveries by state in storage.", ["state"], registry=r)
        self.circuit_open = Gauge("baton_connector_circuit_open",
                                  "1 while a connector's circuit breaker is open.",
                                  ["connector"], registry=r)

        self.callbacks = Counter("baton_callbacks",
                                 "Inbound vendor events by result: applied, unchanged (the "
                                 "incident was already in that state), replayed, unknown "
                                 "(no such incident), auth and payload (request refused).",
                                 ["connector", "result"], registry=r)
        self.syncs = Counter("baton_sync_rounds",
                             "Polling rounds of connectors without callbacks, by result.",
                             ["connector", "result"], registry=r)
        self.pruned = Counter("baton_pruned_rows",
                              "Rows deleted by retention (baton.retention), by table.",
                              ["table"], registry=r)
        self.database_size = Gauge("baton_database_size_bytes",
                                   "Size of the database after the last pruning round "
                                   "(SQLite: its pages; PostgreSQL: Baton's tables with "
                                   "their indexes).", registry=r)

        # Alertmanager's names, so existing alert rules on config reloads apply as they are.
        self.reload_successful = Gauge("baton_config_last_reload_successful",
                                       "Whether the last config reload succeeded (1) or "
                                       "not (0).", registry=r)
        self.reload_success_time = Gauge("baton_config_last_reload_success_timestamp_seconds",
                                         "When the config was last loaded successfully "
                                         "(at start or by a reload).", registry=r)
        self.connections = Gauge("baton_connections_open",
                                 "Client connections open (baton serve).", registry=r)
        self.connections_refused = Counter(
            "baton_connections_refused",
            "Client connections closed at once because server.max_connections were open.",
            registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
