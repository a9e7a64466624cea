"""Importers: another tool's setup turned into a Baton config and a report of what mapped.

``baton import KIND ...`` loads ``baton.importers.<kind>`` (``alertmanager``, ``oncall``,
``opsgenie``). Each such module provides:

``HELP: str``
    One line for ``baton import --help``.
``add_arguments(parser: argparse.ArgumentParser) -> None``
    Its own arguments (a file, ``--url``, the name of an environment variable holding a
    token, ...). ``--output``, ``--dry-run`` and ``--force`` are added by the CLI.
``run(args: argparse.Namespace) -> Result``
    Reads the other tool's config, export or API and returns the Baton config (a plain
    dict as it would be written in YAML) and a ``Report``. Raises ``ImportFailed`` with a
    one-line reason when the input cannot be read at all (no traceback reaches the user).

Rules every importer follows: secrets never appear as literal text in the output — they
become ``{env: NAME}`` references (``secret_ref``) and the report lists the variables to
set; every part of the input that has no Baton equivalent is reported with its path in
the input and why; the output must pass ``baton check-config`` once those variables are
set (the CLI checks it and says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

KINDS = ("alertmanager", "oncall", "opsgenie")


class ImportFailed(Exception):
    """The input cannot be imported at all (unreadable file, API refused the token)."""


@dataclass(frozen=True)
class Finding:
    """One line of the report: where in the input, and what happened to it."""

    path: str
    message: str


@dataclass
class Report:
    mapped: list[Finding] = field(default_factory=list)  # decisions worth knowing
    unmapped: list[Finding] = field(default_factory=list)  # no equivalent: left out
    env: dict[str, str] = field(default_factory=dict)  # variable -> what to put in it

    def decided(self, path: str, message: str) -> None:
        self.mapped.append(Finding(path, message))

    def skipped(self, path: str, why: str) -> None:
        self.unmapped.append(Finding(path, why))

    def lines(self) -> list[str]:
        out = [f"mapped   {f.path}: {f.message}" for f in self.mapped]
        out += [f"UNMAPPED {f.path}: {f.message}" for f in self.unmapped]
        out += [f"set      ${name}: {what}" for name, what in sorted(self.env.items())]
        return out


@dataclass
class Result:
    config: dict[str, Any]
    report: Report


def env_name(*parts: str) -> str:
    """An environment variable name from parts: ``("pager", "routing key")`` ->
    ``BATON_PAGER_ROUTING_KEY``."""
    text = "_".join(p for p in parts if p)
    return "BATON_" + re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()


def secret_ref(report: Report, what: str, *parts: str) -> dict[str, str]:
    """``{env: NAME}`` for a secret the input held, recording NAME in the report."""
    name = env_name(*parts)
    report.env[name] = what
    return {"env": name}
