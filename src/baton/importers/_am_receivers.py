"""Alertmanager receivers -> Baton connectors, for ``baton import alertmanager``.

Each ``*_configs`` entry of a receiver becomes one connector. Secrets (keys, passwords,
URLs that carry a token) become ``{env: ...}`` references, ``*_file`` forms Baton's
``{file: ...}``; message templates are reported, since Baton writes its own messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import Report, env_name

Conn = dict[str, Any]

# Integrations Baton has no connector for, and what to say about them.
_NO_CONNECTOR = ("Baton has no {kind} connector; a webhook connector to a bridge that "
                 "speaks {kind} can stand in")
_TEMPLATE = "Baton writes its own messages; Alertmanager templates are not carried over"
_PD_DEFAULT_URLS = ("https://events.pagerduty.com/v2/enqueue",
                    "https://events.pagerduty.com/generic/2010-04-15/create_event.json")
_OPSGENIE_DEFAULT = "https://api.opsgenie.com/"
_EMAIL = re.compile(r"^[^\s@<>,;]+@[^\s@<>,;]+$")
_TOKENISH = re.compile(r"(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_\-]{16,}")


def slug(name: str, limit: int = 48) -> str:
    """``name`` as a Baton name (letters, digits, ``_`` and ``-``, starting with one of the
    first two)."""
    text = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")[:limit].strip("-_")
    return text or "receiver"


@dataclass
class Receivers:
    """Builds connectors; ``connectors`` is the ``connectors`` section being written."""

    report: Report
    glob: Mapping[str, Any]
    base: Path  # the Alertmanager file's directory: its *_file paths are relative to it
    connectors: dict[str, Conn] = field(default_factory=dict)
    _shared: set[str] = field(default_factory=set)

    def connectors_for(self, receiver: Mapping[str, Any], where: str) -> list[str]:
        """The names of the connectors made from ``receiver`` (at ``where``)."""
        name = str(receiver.get("name", ""))
        made: list[str] = []
        for key, value in receiver.items():
            if key == "name":
                continue
            path = f"{where}.{key}"
            build = _BUILDERS.get(key)
            if build is None:
                kind = key.removesuffix("_configs")
                why = (_NO_CONNECTOR.format(kind=kind) if key.endswith("_configs")
                       else "not an Alertmanager receiver setting Baton knows")
                self.report.skipped(path, why)
                continue
            items = value if isinstance(value, list) else []
            for i, item in enumerate(items):
                kind = _KINDS[key]
                conn_name = self._name(name, kind, len(items) > 1, i)
                conn = build(self, item if isinstance(item, dict) else {}, f"{path}[{i}]",
                             conn_name)
                if conn is not None:
                    self.connectors[conn_name] = conn
                    made.append(conn_name)
        return made

    # --- helpers -----------------------------------------------------------------------

    def _name(self, receiver: str, kind: str, several: bool, i: int) -> str:
        base = f"{slug(receiver)}-{kind}" + (f"-{i + 1}" if several else "")
        name, n = base, 2
        while name in self.connectors:
            name, n = f"{base}-{n}", n + 1
        return name

    def secret(self, item: Mapping[str, Any], key: str, path: str, what: str,
               env_parts: tuple[str, ...], glob_key: str | None = None
               ) -> dict[str, str] | None:
        """``{file: ...}`` for ``key_file``, ``{env: ...}`` for ``key`` (the value itself is
        never copied); falls back to the global ``glob_key`` / ``glob_key_file``."""
        if item.get(f"{key}_file"):
            return self._file(str(item[f"{key}_file"]), f"{path}.{key}_file")
        if item.get(key):
            return self._env(what, env_parts)
        if glob_key and self.glob.get(f"{glob_key}_file"):
            return self._file(str(self.glob[f"{glob_key}_file"]), f"global.{glob_key}_file")
        if glob_key and self.glob.get(glob_key):
            return self._env(f"{what} (global.{glob_key})", (glob_key,), shared=True)
        return None

    def _file(self, value: str, path: str) -> dict[str, str]:
        full = (self.base / value).resolve()
        self.report.decided(path, f"read from the file {full} ({{file: ...}}); the path is "
                            "absolute because Baton reads it relative to its own config")
        return {"file": str(full)}

    def _env(self, what: str, parts: tuple[str, ...], shared: bool = False) -> dict[str, str]:
        name = env_name(*parts)
        if shared:
            self._shared.add(name)
        elif name in self.report.env:  # two secrets whose names slug alike
            n = 2
            while f"{name}_{n}" in self.report.env:
                n += 1
            name = f"{name}_{n}"
        self.report.env[name] = what
        return {"env": name}

    def rest(self, item: Mapping[str, Any], path: str, handled: Collection[str],
             templates: Collection[str] = ()) -> None:
        """Report every key of ``item`` not in ``handled``."""
        for key in item:
            if key in handled:
                continue
            if key == "send_resolved":
                if item[key] is False:
                    self.report.skipped(f"{path}.send_resolved", "Baton always tells a "
                                        "connector when an incident resolves")
                continue
            why = _TEMPLATE if key in templates else "no equivalent in Baton's connector"
            self.report.skipped(f"{path}.{key}", why)


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _webhook(r: Receivers, item: Mapping[str, Any], path: str, name: str) -> Conn | None:
    conn: Conn = {"type": "webhook"}
    url = item.get("url")
    if item.get("url_file"):
        conn["url"] = r.secret(item, "url", path, "", ())
    elif isinstance(url, str) and url:
        parts = urlsplit(url)
        if parts.query or parts.username or parts.password or any(
                _TOKENISH.fullmatch(seg) for seg in parts.path.split("/")):
            conn["url"] = r.secret(item, "url", path, f"the URL of {path} (it carries a "
                                   "token)", (name, "url"))
        else:
            conn["url"] = url
    else:
        r.report.skipped(path, "no url: nothing to send to")
        return None
    headers = _http_auth(r, item.get("http_config"), f"{path}.http_config", name)
    if headers:
        conn["headers"] = headers
    r.report.decided(path, f"connector {name}: the receiver gets Baton's incident document "
                     "(schemas/incident.schema.json), not Alertmanager's webhook payload")
    r.rest(item, path, {"url", "url_file", "http_config"})
    return conn


def _http_auth(r: Receivers, http: Any, path: str, name: str) -> dict[str, Any]:
    """An ``Authorization`` header from ``http_config``; every other setting reported."""
    if not isinstance(http, dict):
        return {}
    headers: dict[str, Any] = {}
    for key, value in http.items():
        if key == "authorization" and isinstance(value, dict):
            scheme = value.get("type", "Bearer")
            if value.get("credentials"):
                headers["Authorization"] = r._env(
                    f'"{scheme} <credentials>" (the whole Authorization header)',
                    (name, "authorization"))
            else:
                r.report.skipped(f"{path}.authorization", "credentials read from a file "
                                 "would lack the scheme in a header; give the header "
                                 "through the environment")
        elif key in ("bearer_token", "bearer_token_file"):
            if key == "bearer_token":
                headers["Authorization"] = r._env('"Bearer <token>"', (name, "authorization"))
            else:
                r.report.skipped(f"{path}.{key}", "a header read from a file would lack "
                                 "its scheme; set it through the environment")
        elif key == "basic_auth" and isinstance(value, dict):
            headers["Authorization"] = r._env(
                '"Basic " + base64 of "user:password" (the whole Authorization header)',
                (name, "authorization"))
        elif key == "follow_redirects":
            continue
        else:
            r.report.skipped(f"{path}.{key}", "no equivalent in Baton's connectors (they "
                             "use the system's trust store and proxy settings)")
    return headers


def _pagerduty(r: Receivers, item: Mapping[str, Any], path: str, name: str) -> Conn | None:
    conn: Conn = {"type": "pagerduty"}
    if item.get("routing_key") or item.get("routing_key_file"):
        key = r.secret(item, "routing_key", path, f"the Events API v2 routing key of {path}",
                       (name, "routing_key"))
    elif item.get("service_key") or item.get("service_key_file"):
        key = r.secret(item, "service_key", path, f"an Events API v2 integration key for "
                       f"the service of {path}", (name, "routing_key"))
        r.report.decided(f"{path}.service_key", "an Events API v1 service key: Baton sends "
                         "Events API v2, so give an Events API v2 integration key of that "
                         "service (they are often the same key; check the integration)")
    else:
        r.report.skipped(path, "no routing_key or service_key")
        return None
    conn["routing_key"] = key
    url = item.get("url") or r.glob.get("pagerduty_url")
    if isinstance(url, str) and url and url.rstrip("/") not in _PD_DEFAULT_URLS:
        conn["url"] = url
    r.rest(item, path, {"routing_key", "routing_key_file", "service_key", "service_key_file",
                        "url"}, {"description", "details", "client", "client_url", "links",
                                 "images", "severity", "class", "component", "group",
                                 "source"})
    return conn


def _opsgenie(r: Receivers, item: Mapping[str, Any], path: str, name: str) -> Conn | None:
    key = r.secret(item, "api_key", path, f"the Opsgenie API key of {path}",
                   (name, "api_key"), "opsgenie_api_key")
    if key is None:
        r.report.skipped(path, "no api_key (here or in global)")
        return None
    conn: Conn = {"type": "opsgenie", "api_key": key}
    url = item.get("api_url") or r.glob.get("opsgenie_api_url")
    if isinstance(url, str) and url:
        if "api.eu.opsgenie.com" in url:
            conn["region"] = "eu"
        elif url.rstrip("/") != _OPSGENIE_DEFAULT.rstrip("/"):
            conn["url"] = url.rstrip("/")
    handled = {"api_key", "api_key_file", "api_url"}
    responders = item.get("responders")
    if isinstance(responders, list) and responders:
        kept = [{k: v for k, v in x.items() if k in ("id", "name", "username", "type")}
                for x in responders if isinstance(x, dict)]
        if any(_templated(v) for x in kept for v in x.values()) or any(
                x.get("type") not in ("team", "user", "escalation", "schedule") for x in kept):
            r.report.skipped(f"{path}.responders", "templated responders, or a type other "
                             "than team, user, escalation or schedule")
        else:
            conn["responders"] = kept
        handled.add("responders")
    tags = item.get("tags")
    if isinstance(tags, str) and tags and not _templated(tags):
        conn["tags"] = [t.strip() for t in tags.split(",") if t.strip()][:19]
        handled.add("tags")
    r.rest(item, path, handled, {"message", "description", "source", "details", "entity",
                                 "actions", "note", "priority", "tags"})
    return conn


def _slack(r: Receivers, item: Mapping[str, Any], path: str, name: str) -> Conn | None:
    url = r.secret(item, "api_url", path, f"the Slack incoming webhook URL of {path}",
                   (name, "webhook_url"), "slack_api_url")
    if url is None:
        r.report.skipped(path, "no api_url (here or in global): Baton needs an incoming "
                         "webhook URL or a bot token")
        return None
    if item.get("channel"):
        r.report.skipped(f"{path}.channel", "in webhook mode Slack posts to the channel the "
                         "incoming webhook was made for; for another, make a webhook there "
                         "or use a bot token (bot_token and channel)")
    r.rest(item, path, {"api_url", "api_url_file", "channel"},
           {"title", "title_link", "text", "pretext", "fallback", "footer", "color",
            "icon_url", "icon_emoji", "username", "fields", "actions", "callback_id",
            "image_url", "thumb_url", "short_fields", "mrkdwn_in", "link_names"})
    return {"type": "slack", "webhook_url": url}


def _teams(r: Receivers, item: Mapping[str, Any], path: str, name: str) -> Conn | None:
    url = r.secret(item, "webhook_url", path, f"the Teams workflow URL for {path}",
                   (name, "webhook_url"))
    if url is None:
        r.report.skipped(path, "no webhook_url")
        return None
    if ".msteams_configs[" in path:
        r.report.decided(path, "Baton posts to a Teams workflow (Power Automate) URL; an "
                         "Office 365 connector URL (webhook.office.com) must be replaced "
                         "by one")
    r.rest(item, path, {"webhook_url", "webhook_url_file"}, {"title", "summary", "text"})
    return {"type": "teams", "webhook_url": url}


def _email(r: Receivers, item: Mapping[str, Any], path: str, name: str) -> Conn | None:
    to = item.get("to")
    if not isinstance(to, str) or _templated(to):
        r.report.skipped(path, "no literal 'to' address (templated or missing)")
        return None
    addresses = [a for _, a in getaddresses([to]) if a]
    bad = [a for a in addresses if not _EMAIL.match(a)]
    if not addresses or bad:
        r.report.skipped(path, f"'to' holds no usable address: {to!r}")
        return None
    smarthost = item.get("smarthost") or r.glob.get("smtp_smarthost")
    sender = item.get("from") or r.glob.get("smtp_from")
    if not isinstance(smarthost, str) or ":" not in smarthost or not isinstance(sender, str):
        r.report.skipped(path, "no smarthost (host:port) or from, here or in global")
        return None
    host, _, port_text = smarthost.rpartition(":")
    port = int(port_text) if port_text.isdigit() else 25
    conn: Conn = {"type": "email", "host": host.strip("[]"), "port": port, "from": sender,
                  "to": addresses}
    require_tls = item.get("require_tls", r.glob.get("smtp_require_tls", True))
    conn["security"] = "tls" if port == 465 else ("starttls" if require_tls else "none")
    user = item.get("auth_username") or r.glob.get("smtp_auth_username")
    if user and conn["security"] == "none":
        r.report.skipped(f"{path}.auth_username", "require_tls is false: Baton sends no "
                         "password over clear text, so the connector is written without "
                         "username and password; add them with allow_insecure_auth: true "
                         "only for a relay on a trusted link")
    elif user:
        password = r.secret(item, "auth_password", path, f"the SMTP password for {path}",
                            (name, "password"), "smtp_auth_password")
        if password is not None:
            conn["username"] = str(user)
            conn["password"] = password
        else:
            r.report.skipped(f"{path}.auth_username", "a user without auth_password "
                             "(Baton supports PLAIN, LOGIN and CRAM-MD5 with a password)")
    hello = item.get("hello") or r.glob.get("smtp_hello")
    if isinstance(hello, str) and hello and hello != "localhost":
        conn["helo_name"] = hello
    tls = item.get("tls_config")
    if isinstance(tls, dict) and tls.get("ca_file"):
        conn["ca_file"] = str((r.base / str(tls["ca_file"])).resolve())
    r.rest(item, path, {"to", "smarthost", "from", "require_tls", "auth_username",
                        "auth_password", "auth_password_file", "hello"} |
           ({"tls_config"} if isinstance(tls, dict) and set(tls) <= {"ca_file"} else set()),
           {"headers", "html", "text"})
    return conn


_Builder = Callable[[Receivers, Mapping[str, Any], str, str], "Conn | None"]
_BUILDERS: dict[str, _Builder] = {
    "webhook_configs": _webhook,
    "pagerduty_configs": _pagerduty,
    "opsgenie_configs": _opsgenie,
    "slack_configs": _slack,
    "email_configs": _email,
    "msteams_configs": _teams,
    "msteamsv2_configs": _teams,
}
_KINDS = {"webhook_configs": "webhook", "pagerduty_configs": "pagerduty",
          "opsgenie_configs": "opsgenie", "slack_configs": "slack",
          "email_configs": "email", "msteams_configs": "teams", "msteamsv2_configs": "teams"}
