"""The configuration: frozen values, and loading that reports every problem at once.

Loading goes YAML -> ``config.schema.json`` -> each source/connector block against its
type's schema -> secrets resolved -> cross references -> dataclasses. Every step keeps
going after a problem, so ``baton check-config`` shows the whole list (as Alertmanager's
``amtool check-config`` does) instead of one error per run. The steps live in
``baton._config_load`` and ``baton._config_check``; this module holds the values and the
entry points.

Mappings inside these values are plain dicts for cheap copying; treat them as read-only.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from .errors import ConfigError
from .inhibit import InhibitRule
from .matcher import Matcher
from .schedule import Person, Schedule
from .secret import Secret
from .suppression import ConfigSilence
from .timeinterval import TimeInterval

CONFIG_ENV = "BATON_CONFIG"
DEMO_CONFIG = "demo.yaml"
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:8080"
    max_body_bytes: int = 1_048_576
    shutdown_grace: float = 10.0
    # Slow or idle clients (README: Connections): a connection must deliver a request's
    # head within read_timeout of opening or of its last answer, and a body within
    # read_timeout of its head. max_connections 0: the open-file limit less a reserve.
    read_timeout: float = 15.0
    max_connections: int = 0


@dataclass(frozen=True)
class StorageConfig:
    # ``sqlite:///x.db`` is relative to the process's working directory, not to the config.
    url: str = "sqlite:///./baton-data/baton.db"
    busy_timeout: float = 5.0
    max_pending_writes: int = 10000
    # Overload and a hung database (README: Overload): no caller waits past
    # operation_timeout; request writes are shed once the oldest has waited max_queue_age
    # or waiting bodies pass max_pending_bytes, well under a sender's own timeout.
    operation_timeout: float = 10.0
    max_queue_age: float = 2.0
    max_pending_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class ApiToken:
    name: str
    token: Secret


@dataclass(frozen=True)
class AuthConfig:
    """How a source's senders authenticate. YAML ``token``/``password`` become one-element
    ``tokens``/``passwords``, so checking code handles rotation and the simple case alike."""

    type: Literal["none", "bearer", "basic", "hmac", "standard-webhooks"]
    tokens: tuple[Secret, ...] = ()
    username: str | None = None
    passwords: tuple[Secret, ...] = ()
    secrets: tuple[Secret, ...] = ()  # hmac, standard-webhooks
    header: str = "X-Signature"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    timestamp_header: str | None = None
    tolerance: float = 300.0


@dataclass(frozen=True)
class SourceConfig:
    name: str
    type: str
    auth: AuthConfig
    options: Mapping[str, Any]  # the type-specific keys, secrets as ``Secret``
    labels: Mapping[str, str] = field(default_factory=dict)
    max_body_bytes: int | None = None
    defaults: Mapping[str, str] = field(default_factory=dict)  # service, environment, ...
    severity_map: Mapping[str, str] = field(default_factory=dict)  # sender's value -> ours
    no_data: str = "info"  # ignore | info | firing
    test: str = "info"


@dataclass(frozen=True)
class ConnectorConfig:
    name: str
    type: str
    options: Mapping[str, Any]  # the type-specific keys, secrets as ``Secret``
    timeout: float = 10.0
    max_attempts: int = 12
    max_age: float = 86400.0
    # Bounds requests in flight to the receiver, per replica. Per-incident order does not
    # depend on it (claims hold back a later delivery of an incident and connector until
    # the earlier one is done), and at 4 a lane sent at most 4 per receiver round trip.
    concurrency: int = 16
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    max_retry_after: float = 600.0
    # At most ``count`` attempts per ``per`` seconds (per replica), or no limit.
    rate_limit: tuple[int, float] | None = None
    rate_limit_per: ClassVar[float] = 60.0  # the default of rate_limit's ``per``
    sync_interval: float = 60.0  # how often a polling connector looks at its tickets


@dataclass(frozen=True)
class Target:
    """One recipient of a level: a connector, optionally a ``to`` (``person:alice``) and
    parameters the connector reads (every other key of the YAML object)."""

    connector: str
    to: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Level:
    notify: tuple[Target, ...]
    escalate_after: float | None = None  # None: only a manual escalate moves on
    remind_every: float | None = None  # re-notify this level's targets while it is current


@dataclass(frozen=True)
class Policy:
    name: str
    levels: tuple[Level, ...]
    repeat: int = 0
    ack_timeout: float | None = None  # an acknowledgement lapses after this long


@dataclass(frozen=True)
class Route:
    """A node as written. ``policy`` None and ``group_by`` empty mean "inherit from the
    parent"; ``baton.routing.Router`` resolves that. ``group_by == ("...",)`` means one
    incident per alert (group by all labels)."""

    name: str
    matchers: tuple[Matcher, ...] = ()
    policy: str | None = None
    continue_: bool = False
    group_by: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()


@dataclass(frozen=True)
class DispatchConfig:
    poll_interval: float = 1.0
    lease: float = 60.0
    batch_size: int = 100


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    format: Literal["json", "console"] = "json"


@dataclass(frozen=True)
class RetentionConfig:
    """How long stored data is kept, in seconds; these defaults are the defaults.

    Every horizon is > 0 (the loader refuses 0): "keep forever" is a long horizon, not a
    special value that a typo could produce."""

    raw_events: float = 7 * 86400.0  # request bodies
    resolved_incidents: float = 180 * 86400.0  # with everything that belongs to them
    # Replay ids (webhook-id of signed requests, vendor callback event ids): far past any
    # sender's retry window (hours to a few days), so a late redelivery is still refused.
    replay_ids: float = 30 * 86400.0
    interval: float = 60.0  # between pruning rounds in the gateway
    # Rows per write transaction: the longest a request's write can wait behind pruning
    # (SQLite runs pruning alone, between requests' writes). 50 hold the writer ~2 ms, 200
    # ~7 ms, which showed as +5-7 ms at the ingest p99 (bench/README.md).
    batch_size: int = 50


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    api_tokens: tuple[ApiToken, ...] = ()
    # With no api_tokens, serve the management API and console off loopback anyway.
    api_open: bool = False
    sources: Mapping[str, SourceConfig] = field(default_factory=dict)
    connectors: Mapping[str, ConnectorConfig] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    policies: Mapping[str, Policy] = field(default_factory=dict)
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    people: Mapping[str, Person] = field(default_factory=dict)
    teams: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # member keys, in order
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    path: Path | None = None  # None: the built-in demo, or built from a dict
    time_intervals: Mapping[str, TimeInterval] = field(default_factory=dict)  # by name
    inhibit_rules: tuple[InhibitRule, ...] = ()  # in config order; indices name them
    silences: tuple[ConfigSilence, ...] = ()  # maintenance as code, beside the API's
    retention: RetentionConfig = field(default_factory=RetentionConfig)


def resolve_config_path(cli_value: str | Path | None,
                        environ: Mapping[str, str] | None = None) -> Path | None:
    """The ``--config`` value, else ``$BATON_CONFIG``, else None (the built-in demo)."""
    if cli_value:
        return Path(cli_value)
    env = (os.environ if environ is None else environ).get(CONFIG_ENV, "").strip()
    return Path(env) if env else None


def demo_text() -> str:
    """The packaged demo config, as YAML text."""
    return resources.files("baton").joinpath(DEMO_CONFIG).read_text("utf-8")


def _read(path: str | Path | None) -> tuple[str | None, Path | None, list[str]]:
    if path is None:
        return demo_text(), None, []
    p = Path(path)
    try:
        return p.read_text("utf-8"), p, []
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, p, [f"{p}: cannot read config file: {reason}"]


def _load(path: str | Path | None, environ: Mapping[str, str] | None
          ) -> tuple[Config | None, list[str]]:
    # Imported here: the loader builds the dataclasses above, so it imports this module.
    from ._config_load import build, parse_yaml

    text, p, problems = _read(path)
    if text is None:
        return None, problems
    data, problems = parse_yaml(text)
    if problems:
        return None, problems
    base_dir = p.resolve().parent if p is not None else Path.cwd()
    config, problems = build(data, base_dir, os.environ if environ is None else environ)
    if config is not None and p is not None:
        config = replace(config, path=p)
    return config, problems


def load_config(path: str | Path | None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate ``path`` (None: the packaged demo). Raises ``ConfigError`` whose
    ``problems`` lists every problem found, each as ``path: message``."""
    config, problems = _load(path, environ)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def check_config(path: str | Path | None,
                 environ: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of the config at ``path``; empty when it loads. Never raises for bad
    content (a YAML syntax error is one problem with its line and column)."""
    return _load(path, environ)[1]


def config_from_dict(data: Any, base_dir: Path,
                     environ: Mapping[str, str] | None = None) -> Config:
    """A config from already-parsed YAML; ``{file: ...}`` secrets are read relative to
    ``base_dir``. Raises ``ConfigError`` like ``load_config``."""
    from ._config_load import build  # see _load

    config, problems = build(data, base_dir, os.environ if environ is None else environ)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as ``server.listen`` and ``--listen`` take it:
    the host as the socket wants it (no brackets) and the port. Raises ValueError saying
    what is wrong, without a traceback's worth of detail."""
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
    if not (port.isascii() and port.isdigit()) or len(port) > 5:
        raise ValueError(f"port {port!r} is not a number")
    if int(port) > 65535:
        raise ValueError(f"port {port} is out of range (0-65535)")
    if not host:
        raise ValueError("no host: write 127.0.0.1:PORT for this machine only, or "
                         "0.0.0.0:PORT for every address")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host} is not an IPv6 address") from None
        return host[1:-1], int(port)
    if ":" in host:
        raise ValueError(f"write an IPv6 address in brackets: [{host}]:{port}")
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{host} is not an IPv4 address") from None
    elif not _HOSTNAME.fullmatch(host):
        raise ValueError(f"{host!r} is not a host name or address")
    return host, int(port)


def _loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]") or "0.0.0.0"  # noqa: S104 - a reading
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def open_api_refusal(config: Config) -> str | None:
    """Why ``baton serve`` must not start with this config, or None: with no api.tokens
    the management API and console are open, which is only safe on loopback."""
    listen = config.server.listen
    if config.api_tokens or config.api_open or _loopback(listen):
        return None
    return (f"api: no api.tokens while listening on {listen}: anyone who can reach it "
            "could read, acknowledge and resolve every incident; add api.tokens, listen on "
            "a loopback address, or set api: {open: true} to allow it")


def config_warnings(config: Config) -> list[str]:
    """What loads but is probably a mistake, as ``path: message`` lines."""
    out = []
    refusal = open_api_refusal(config)
    if refusal is not None:
        out.append(f"{refusal} (baton serve refuses to start)")
    elif config.api_open and not config.api_tokens and not _loopback(config.server.listen):
        out.append(f"api.open: true without api.tokens while listening on "
                   f"{config.server.listen}: the management API and console are open to "
                   "anyone who can reach that address")
    if not _loopback(config.server.listen):
        for name, src in sorted(config.sources.items()):
            if src.auth.type == "none":
                out.append(f"sources.{name}.auth: type none while listening on "
                           f"{config.server.listen}: anyone who can reach that address can "
                           "open and resolve incidents; use bearer, basic, hmac or "
                           "standard-webhooks")
    return out
