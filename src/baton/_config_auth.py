"""Config loading for a source's ``auth`` block, and the checks across sources that
depend on it: how long replay ids must be kept, and which routing key selects which
PagerDuty Events source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import signing
from ._config_check import Checker, as_dict, as_list, opt
from ._config_keys import AUTH, default
from .config import AuthConfig, SourceConfig
from .duration import format_duration
from .secret import Secret

# The source type whose ``routing_key`` can select it on ``POST /v2/enqueue``.
PAGERDUTY_EVENTS = "pagerduty-events"


def build_auth(ctx: Checker, raw: Any, path: str) -> AuthConfig:
    """A source's ``auth`` block at ``path``; secrets resolved, problems recorded."""
    auth = ctx.secrets(raw, path)
    kind = as_dict(auth).get("type")
    if kind not in ("none", "bearer", "basic", "hmac", "standard-webhooks"):
        # Never fall back to an open source silently: make sure the refusal is on record.
        ctx.ensure(path, "a valid auth block is required (use {type: none} for no auth)")
        return AuthConfig("none")

    def many(one: str, several: str) -> tuple[Secret, ...]:
        values = [auth.get(one)] if one in auth else as_list(auth, several)
        return tuple(v for v in values if isinstance(v, Secret))

    if kind == "none":
        return AuthConfig("none")
    if kind in ("hmac", "standard-webhooks"):
        secrets = many("secret", "secrets")
        if not secrets:
            ctx.ensure(path, f"{kind} auth without a secret")
        if kind == "standard-webhooks":
            for i, secret in enumerate(secrets):
                try:
                    signing.sender_key(secret.reveal())
                except ValueError as exc:  # the message never quotes the value
                    ctx.add(f"{path}.secret" if "secret" in auth else f"{path}.secrets[{i}]",
                            f"not a Standard Webhooks secret: {exc}")
        return AuthConfig(
            kind, secrets=secrets, header=opt(auth, "header", str, default(f"{AUTH}.header")),
            encoding=opt(auth, "encoding", str, default(f"{AUTH}.encoding")),
            prefix=opt(auth, "prefix", str, default(f"{AUTH}.prefix")),
            timestamp_header=opt(auth, "timestamp_header", str,
                                  default(f"{AUTH}.timestamp_header")),
            tolerance=ctx.duration(auth, "tolerance", path, default(f"{AUTH}.tolerance"),
                                   positive=True))
    config = AuthConfig(kind, tokens=many("token", "tokens"),
                        username=opt(auth, "username", str, None),
                        passwords=many("password", "passwords"))
    if not (config.tokens or (config.username and config.passwords)):
        ctx.ensure(path, f"{kind} auth without credentials")
    return config


def check_replay_window(ctx: Checker, sources: Mapping[str, SourceConfig],
                        replay_ids: float) -> None:
    """``retention.replay_ids`` must cover twice every signed source's ``tolerance``.

    A signed timestamp is taken within ``tolerance`` either way of now, so one message
    is acceptable for 2 x tolerance: first seen up to ``tolerance`` early (a sender's
    clock ahead), replayed up to ``tolerance`` late. Only the remembered id refuses it
    meanwhile, so the id must be kept at least that long. Both schemes with an id:
    standard-webhooks, and hmac with a signed timestamp.
    """
    for name, src in sorted(sources.items()):
        signed_time = src.auth.type == "standard-webhooks" or (
            src.auth.type == "hmac" and bool(src.auth.timestamp_header))
        if signed_time and 2 * src.auth.tolerance > replay_ids:
            ctx.add("retention.replay_ids",
                    f"{format_duration(replay_ids)} is shorter than twice sources.{name}."
                    f"auth.tolerance (2 x {format_duration(src.auth.tolerance)}): a replay "
                    "could be taken again")


def check_routing_keys(ctx: Checker, sources: Mapping[str, SourceConfig]) -> None:
    """Two ``pagerduty-events`` sources with one routing key: ``POST /v2/enqueue`` could
    not tell which one an event is for. Named by path; the key is never quoted."""
    seen: dict[str, str] = {}
    for name, src in sorted(sources.items()):
        key = src.options.get("routing_key") if src.type == PAGERDUTY_EVENTS else None
        text = key.reveal() if isinstance(key, Secret) else key
        if not isinstance(text, str):
            continue
        if text in seen:
            ctx.add(f"sources.{name}.routing_key", f"the same routing key as sources."
                    f"{seen[text]}: an event sent to /v2/enqueue could be for either")
        else:
            seen[text] = name
