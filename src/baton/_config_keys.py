"""The config keys the loader reads, each with the dataclass field holding its default.

One table for the loader (defaults), the schema test (tests/unit/test_config_keys.py:
the same keys both ways, each schema ``default`` equal to its field) and the split of a
source's or connector's block into Baton's keys and the plugin's own.
"""

from __future__ import annotations

from typing import Any

from .config import (
    AuthConfig,
    Config,
    ConnectorConfig,
    DispatchConfig,
    Level,
    LoggingConfig,
    Policy,
    RetentionConfig,
    Route,
    ServerConfig,
    SourceConfig,
    StorageConfig,
)

# Every key of config.schema.json the loader reads, by path ("*" any name, "[]" any list
# item), with the dataclass field that holds its default: ``_default`` reads defaults only
# from there, so they live in one place. None: read, but no default of ours (required
# keys, sub-documents, lists). tests/unit/test_config_keys.py checks this table against
# the schema both ways, and each schema "default" against its field. A new key goes into
# the schema, this table and its builder.
AUTH, LEVEL = "sources.*.auth", "policies.*.levels[]"
Field = tuple[type, str] | None
KEYS: dict[str, Field] = {
    "server.listen": (ServerConfig, "listen"),
    "server.max_body_bytes": (ServerConfig, "max_body_bytes"),
    "server.shutdown_grace": (ServerConfig, "shutdown_grace"),
    "server.read_timeout": (ServerConfig, "read_timeout"),
    "server.max_connections": (ServerConfig, "max_connections"),
    "storage.url": (StorageConfig, "url"),
    "storage.busy_timeout": (StorageConfig, "busy_timeout"),
    "storage.max_pending_writes": (StorageConfig, "max_pending_writes"),
    "storage.operation_timeout": (StorageConfig, "operation_timeout"),
    "storage.max_queue_age": (StorageConfig, "max_queue_age"),
    "storage.max_pending_bytes": (StorageConfig, "max_pending_bytes"),
    "api.tokens": None, "api.tokens[].name": None, "api.tokens[].token": None,
    "api.open": (Config, "api_open"),
    "sources.*.type": None, "sources.*.labels": None, "sources.*.defaults": None,
    # The defaults mapping is taken whole; the schema names the keys it allows.
    "sources.*.defaults.service": None, "sources.*.defaults.component": None,
    "sources.*.defaults.environment": None, "sources.*.defaults.resource": None,
    "sources.*.severity_map": None,
    "sources.*.max_body_bytes": (SourceConfig, "max_body_bytes"),
    "sources.*.no_data": (SourceConfig, "no_data"),
    "sources.*.test": (SourceConfig, "test"),
    AUTH: None, f"{AUTH}.type": None, f"{AUTH}.token": None, f"{AUTH}.tokens": None,
    f"{AUTH}.username": None, f"{AUTH}.password": None, f"{AUTH}.passwords": None,
    f"{AUTH}.secret": None, f"{AUTH}.secrets": None,
    f"{AUTH}.header": (AuthConfig, "header"), f"{AUTH}.encoding": (AuthConfig, "encoding"),
    f"{AUTH}.prefix": (AuthConfig, "prefix"),
    f"{AUTH}.timestamp_header": (AuthConfig, "timestamp_header"),
    f"{AUTH}.tolerance": (AuthConfig, "tolerance"),
    "connectors.*.type": None,
    "connectors.*.timeout": (ConnectorConfig, "timeout"),
    "connectors.*.max_attempts": (ConnectorConfig, "max_attempts"),
    "connectors.*.max_age": (ConnectorConfig, "max_age"),
    "connectors.*.concurrency": (ConnectorConfig, "concurrency"),
    "connectors.*.backoff": None,
    "connectors.*.backoff.initial": (ConnectorConfig, "backoff_initial"),
    "connectors.*.backoff.max": (ConnectorConfig, "backoff_max"),
    "connectors.*.max_retry_after": (ConnectorConfig, "max_retry_after"),
    "connectors.*.rate_limit": None, "connectors.*.rate_limit.count": None,
    "connectors.*.rate_limit.per": (ConnectorConfig, "rate_limit_per"),
    "connectors.*.sync_interval": (ConnectorConfig, "sync_interval"),
    "routes[].name": None, "routes[].matchers": None, "routes[].policy": (Route, "policy"),
    "routes[].continue": (Route, "continue_"), "routes[].group_by": None,
    "routes[].routes": None, "routes[].mute_time_intervals": None,
    "routes[].active_time_intervals": None,
    "policies.*.levels": None, f"{LEVEL}.notify": None,
    f"{LEVEL}.notify[].connector": None, f"{LEVEL}.notify[].to": None,
    f"{LEVEL}.escalate_after": (Level, "escalate_after"),
    f"{LEVEL}.remind_every": (Level, "remind_every"),
    "policies.*.repeat": (Policy, "repeat"),
    "policies.*.ack_timeout": (Policy, "ack_timeout"),
    "dispatch.poll_interval": (DispatchConfig, "poll_interval"),
    "dispatch.lease": (DispatchConfig, "lease"),
    "dispatch.batch_size": (DispatchConfig, "batch_size"),
    "logging.level": (LoggingConfig, "level"),
    "logging.format": (LoggingConfig, "format"),
    "retention": None,
    "retention.raw_events": (RetentionConfig, "raw_events"),
    "retention.resolved_incidents": (RetentionConfig, "resolved_incidents"),
    "retention.replay_ids": (RetentionConfig, "replay_ids"),
    "retention.interval": (RetentionConfig, "interval"),
    "retention.batch_size": (RetentionConfig, "batch_size"),
}
# Keys for people reading the file, which the loader skips on purpose.
NOT_READ = frozenset({"policies.*.description"})
# Top-level sections another module builds from the raw document, with their keys.
BUILT_ELSEWHERE = {
    "people": "baton._config_schedule", "teams": "baton._config_schedule",
    "schedules": "baton._config_schedule", "time_intervals": "baton.timeinterval",
    "inhibit_rules": "baton.inhibit",
    "silences": "baton.silence",
}
SOURCE_KEYS = frozenset(k.split(".")[2] for k in KEYS if k.count(".") == 2
                        and k.startswith("sources.*."))
CONNECTOR_KEYS = frozenset(k.split(".")[2] for k in KEYS if k.count(".") == 2
                           and k.startswith("connectors.*."))


def default(key: str) -> Any:
    """The default of the config key at schema path ``key``: its dataclass field's."""
    owner = KEYS[key]
    if owner is None:
        raise KeyError(f"{key} has no default field in KEYS")
    return getattr(*owner)
