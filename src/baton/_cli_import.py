"""``baton import KIND``: write a Baton config from another tool's setup, with a report."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from .importers import KINDS, ImportFailed, Result


def _module(kind: str) -> ModuleType:
    return importlib.import_module(f".importers.{kind}", __package__)


def add_parser(sub: Any) -> None:
    imp = sub.add_parser("import", help="write a Baton config from Alertmanager, Grafana "
                         "OnCall or Opsgenie, with a report of what has no equivalent")
    kinds = imp.add_subparsers(dest="kind", required=True)
    for kind in KINDS:
        try:
            module = _module(kind)
        except ModuleNotFoundError as e:
            # Importers land one at a time: a kind whose module is not there yet is left
            # out; anything else missing (a broken import inside one) still fails loudly.
            if e.name != f"{__package__}.importers.{kind}":
                raise
            continue
        k = kinds.add_parser(kind, help=module.HELP)
        module.add_arguments(k)
        k.add_argument("-o", "--output", default="baton.yaml",
                       help="where to write the config (default baton.yaml)")
        k.add_argument("--dry-run", action="store_true",
                       help="print the config instead of writing it")
        k.add_argument("--force", action="store_true", help="overwrite --output")
        k.set_defaults(func=cmd_import)


def render(result: Result) -> str:
    head = "# Written by `baton import`; see the report it printed for what did not map.\n"
    return head + yaml.safe_dump(result.config, sort_keys=False, allow_unicode=True)


def check(text: str, result: Result) -> list[str]:
    """What ``baton check-config`` would say of ``text``, less "not set" for the variables
    the report asks for (the user sets them after the import)."""
    from .config import check_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baton.yaml"
        path.write_text(text, "utf-8")
        problems = check_config(path)
    return [p for p in problems if not any(
        p.endswith(f"environment variable {name} is not set") for name in result.report.env)]


def cmd_import(args: argparse.Namespace) -> int:
    try:
        result: Result = _module(args.kind).run(args)
    except ImportFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    text = render(result)
    for line in result.report.lines():
        print(line, file=sys.stderr)
    problems = check(text, result)
    for p in problems:
        print(f"CHECK    {p}", file=sys.stderr)
    print(f"check-config: {len(problems)} problem(s) besides the variables to set"
          if problems else "check-config: ok once the variables above are set",
          file=sys.stderr)
    if args.dry_run:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if out.exists() and not args.force:
        print(f"error: {out} exists (use --force to overwrite, or --output)", file=sys.stderr)
        return 1
    # Created private: the config names secrets only as {env: ...}, but what routes and
    # people look like is still nobody else's business.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode above only applies to a new file, not one --force replaces
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {out}; check it with: baton check-config {out}", file=sys.stderr)
    return 0
