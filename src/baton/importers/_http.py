"""What the API importers share: reading a token from the environment, fetching JSON pages,
a saved export, and the small conversions from vendor names to Baton's.

The fetch is synchronous (``urllib``): an import is a one-off command that reads a few
hundred objects, and it keeps ``run()`` callable from anywhere, a test's thread included.
Errors are one line and never carry the token: the request is rebuilt in our own words
rather than quoting the library's exception, whose text could include headers.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from . import ImportFailed

TIMEOUT = 30.0
MAX_PAGES = 1000  # a server whose `next` never ends must not hold the command forever


def token_from_env(var: str, vendor: str) -> str:
    value = os.environ.get(var, "").strip()
    if not value:
        raise ImportFailed(f"no {vendor} token: set the environment variable {var} "
                           f"(or use --from-file)")
    return value


def get_json(url: str, headers: dict[str, str], vendor: str, env_var: str) -> Any:
    """GET ``url`` and parse JSON; ``ImportFailed`` with a one-line reason otherwise."""
    where = _where(url)
    # Only http(s): check_base_url vetted the base and follow() keeps to it.
    req = urllib.request.Request(url, headers={**headers,  # noqa: S310
                                               "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310
            body = resp.read()
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise ImportFailed(f"{vendor} refused the token in ${env_var} (HTTP {e.code} "
                               f"from {where})") from None
        raise ImportFailed(f"{vendor} answered HTTP {e.code} for {where}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ImportFailed(f"cannot reach {vendor} at {where}: {reason}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise ImportFailed(f"{vendor} sent something that is not JSON for {where}") from None


def _where(url: str) -> str:
    """``url`` without query string or userinfo, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (
        f":{parts.port}" if parts.port else "") + parts.path


def check_base_url(url: str, vendor: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImportFailed(f"--url must be an http(s) URL of {vendor}, got {url!r}")
    return url.rstrip("/")


def follow(url: str, base: str) -> str:
    """A ``next`` link, made absolute and kept on ``base``'s scheme and port. The token goes
    with every request, so a link to another host is refused; one to the same host with
    another scheme or port (an API behind a TLS proxy that builds ``http://`` links) is
    followed on ``base``'s own, never downgraded to plain HTTP."""
    absolute = urlsplit(urljoin(base + "/", url))
    home = urlsplit(base)
    if (absolute.hostname or "").lower() != (home.hostname or "").lower():
        raise ImportFailed(f"refusing to follow a paging link to another server: "
                           f"{_where(absolute.geturl())}")
    return absolute._replace(scheme=home.scheme, netloc=home.netloc).geturl()


def read_export(path: str, keys: tuple[str, ...], vendor: str) -> dict[str, Any]:
    """A saved export: a JSON object with a list per resource (missing ones are empty)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ImportFailed(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ImportFailed(f"{path} is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ImportFailed(f"{path}: expected a JSON object with {', '.join(keys)}")
    for key in keys:
        value = data.setdefault(key, [])
        if not isinstance(value, list):
            raise ImportFailed(f"{path}: {key} must be a list of {vendor} objects")
    return data


def key(text: str, taken: set[str], fallback: str = "x") -> str:
    """A Baton name (letters, digits, ``_``, ``-``; 64 at most) from ``text``, unique among
    ``taken`` (which it joins)."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_").lower()[:58] or fallback
    if not base[0].isalnum():
        base = fallback + base
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def duration(seconds: int) -> str:
    """Seconds as the shortest exact Baton duration: ``600`` -> ``10m``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def hhmm(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


def items(node: Any) -> list[dict[str, Any]]:
    """The dicts of a list (anything else: none), so one odd entry cannot stop an import."""
    return [x for x in node if isinstance(x, dict)] if isinstance(node, list) else []


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PAGE_CONNECTOR = "page"


def page_connector(report: Any) -> dict[str, Any]:
    """The one connector every imported target is sent through. Neither tool's personal
    notification rules (SMS, call, app push per user) have a Baton equivalent, so the import
    routes everything to one webhook whose URL the operator sets; swapping it for a paging
    connector (pagerduty, sms, slack ...) is one edit."""
    from . import secret_ref

    report.decided(f"connectors.{PAGE_CONNECTOR}", "every notification goes through one "
                   "webhook connector; replace it with your paging/chat connector")
    return {"type": "webhook",
            "url": secret_ref(report, "URL that receives notifications (webhook connector "
                              f"'{PAGE_CONNECTOR}')", PAGE_CONNECTOR, "url")}


def rotation(kind: str, length: int, local: Any) -> dict[str, Any] | None:
    """``rotation``, ``handoff`` and ``start`` of a layer whose shifts last ``length``
    ``kind`` units (``hourly``, ``daily``, ``weekly``) from the local datetime ``local``;
    None for another kind."""
    length = max(int(length), 1)
    clock = hhmm(local.hour, local.minute)
    out: dict[str, Any] = {"start": local.date().isoformat()}
    if kind == "daily" and length == 1:
        out.update(rotation="daily", handoff=clock)
    elif kind == "weekly" and length == 1:
        out.update(rotation="weekly", handoff=f"{DAYS[local.weekday()]} {clock}")
    elif kind in ("daily", "weekly"):
        out.update(rotation={"every": f"{length * (7 if kind == 'weekly' else 1)}d"},
                   handoff=clock)
    elif kind == "hourly":
        out.update(rotation={"every": f"{length}h"}, handoff=clock)
    else:
        return None
    return out


def span(day: int, start_min: int, length_min: int) -> list[dict[str, Any]]:
    """Restrictions for one window of ``length_min`` minutes opening on weekday ``day`` at
    minute ``start_min``: one window when it closes within a day, else one per day it
    touches (Baton's windows end by the next day; ``00:00``-``00:00`` is a whole day)."""
    if length_min <= 0:
        return []
    end = start_min + length_min
    if end <= start_min + 1440:
        close = end % 1440
        return [{"days": [DAYS[day]], "start": hhmm(*divmod(start_min, 60)),
                 "end": hhmm(*divmod(close, 60))}]
    out = [{"days": [DAYS[day]], "start": hhmm(*divmod(start_min, 60)), "end": "00:00"}]
    edge, d = 1440, day
    while edge < end:
        d = (d + 1) % 7
        if end - edge >= 1440:
            out.append({"days": [DAYS[d]], "start": "00:00", "end": "00:00"})
        else:
            out.append({"days": [DAYS[d]], "start": "00:00",
                        "end": hhmm(*divmod(end - edge, 60))})
        edge += 1440
    return out


def merge(restrictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Windows with the same times on several days as one restriction."""
    merged: dict[tuple[str, str], list[str]] = {}
    for r in restrictions:
        merged.setdefault((r["start"], r["end"]), []).extend(r["days"])
    return [{"days": sorted(set(days), key=DAYS.index), "start": s, "end": e}
            for (s, e), days in merged.items()]


def obj(node: dict[str, Any], field: str) -> dict[str, Any]:
    """``node[field]`` when it is an object, else an empty one."""
    value = node.get(field)
    return value if isinstance(value, dict) else {}


def zone(name: Any) -> ZoneInfo | None:
    """The IANA zone ``name``, or None when it is no zone this system knows."""
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else None
    except (ValueError, KeyError):
        return None
