"""What every ``baton`` command shares: which config it runs on, and one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

from .config import Config, load_config, resolve_config_path
from .errors import ConfigError


def config_path(value: str | None) -> Path | None:
    return resolve_config_path(value)


def config_name(config: Config) -> str:
    return f"config {config.path}" if config.path is not None else "the built-in demo config"


def load(value: str | None) -> Config:
    try:
        return load_config(config_path(value))
    except ConfigError as e:
        for p in e.problems:
            print(f"config error: {p}", file=sys.stderr)
        raise SystemExit(1) from None
