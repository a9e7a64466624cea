"""RFC 9457 problem details, and the middleware that turns every error into one."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import structlog
from aiohttp import web

from ..errors import (
    AuthError,
    Conflict,
    MalformedBody,
    NotFound,
    PayloadError,
    StorageUnavailable,
)
from ..storable import storable
from . import state

log = structlog.get_logger("baton.api")
PROBLEM = "application/problem+json"
_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, title: str, detail: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM,
                        headers=headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PayloadError as e:
        return problem(400, "Bad Request", e.detail, errors=e.errors)
    except AuthError as e:
        return problem(401, "Unauthorized", str(e),
                       headers={"WWW-Authenticate": e.challenge})
    except NotFound as e:
        return problem(404, "Not Found", str(e))
    except Conflict as e:
        return problem(409, "Conflict", str(e))
    except StorageUnavailable as e:
        return problem(503, "Service Unavailable", str(e),
                       headers={"Retry-After": str(e.retry_after)})
    except web.HTTPException as e:
        if e.status < 400:
            raise
        headers = {k: v for k, v in e.headers.items()
                   if k.lower() in ("allow", "retry-after", "www-authenticate")}
        return problem(e.status, e.reason, e.text if e.text != f"{e.status}: {e.reason}"
                       else None, headers=headers)
    except Exception:
        log.exception("unhandled error", path=request.path)
        return problem(500, "Internal Server Error", "see the gateway log")


async def json_body(request: web.Request, max_bytes: int,
                    also_accept: tuple[str, ...] = ()) -> tuple[bytes, Any]:
    """Read and decode a JSON request body with the checks every endpoint shares:
    415 unless JSON (or one of ``also_accept``, for senders that mislabel JSON), 413 past
    ``max_bytes`` (before reading it all), 400 if malformed."""
    raw = await raw_json_body(request, max_bytes, also_accept)
    # Notes, silences and other management texts are stored as they come: NUL must
    # become storable here as alerts do at ingest (see ``baton.storable``).
    return raw, storable(decode(raw))


async def raw_json_body(request: web.Request, max_bytes: int,
                        also_accept: tuple[str, ...] = ()) -> bytes:
    """``json_body`` without the decoding, for callers that verify a signature over the
    bytes first (an unauthenticated sender learns nothing about what would parse)."""
    ctype = request.content_type
    if (ctype != "application/json" and not ctype.endswith("+json")
            and ctype not in also_accept):
        raise web.HTTPUnsupportedMediaType(text=f"expected application/json, got {ctype!r}")
    if request.content_length is not None and request.content_length > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=max_bytes,
                                            actual_size=request.content_length)
    return await read_limited(request, max_bytes)


async def read_limited(request: web.Request, max_bytes: int) -> bytes:
    """The body, within ``server.read_timeout`` (408 after it): a client that trickles a
    body must not hold its connection and the bytes read so far."""
    chunks, size = [], 0
    deadline = request.config_dict[state.CONFIG].server.read_timeout
    try:
        async with asyncio.timeout(deadline):
            async for chunk in request.content.iter_chunked(65536):
                size += len(chunk)
                if size > max_bytes:
                    raise web.HTTPRequestEntityTooLarge(max_size=max_bytes,
                                                        actual_size=size)
                chunks.append(chunk)
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text=f"the request body did not arrive within {deadline:g}s"
        ) from None
    return b"".join(chunks)


def decode(raw: bytes) -> Any:
    try:
        # UTF-8 only (RFC 8259 8.1): json.loads(bytes) would also take UTF-16/32, which
        # the pipeline stores as UTF-8 text and then fails on (a 500, not a 400).
        data = json.loads(raw.decode("utf-8-sig"))
        if _SURROGATE.search(raw):
            # An unpaired escape ("\ud800") parses to a str no UTF-8 store can hold.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        return data
    except UnicodeDecodeError as e:
        raise MalformedBody(f"body is not UTF-8: {e.reason}") from None
    except UnicodeEncodeError:
        raise MalformedBody("malformed JSON: unpaired surrogate escape") from None
    except json.JSONDecodeError as e:
        raise MalformedBody(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") \
            from None
    except RecursionError:
        raise MalformedBody("malformed JSON: nested too deeply") from None
    except ValueError:  # an integer past Python's digit limit (int_max_str_digits)
        raise MalformedBody("malformed JSON: number too long") from None


# A header value aiohttp could not decode as UTF-8 carries lone surrogates (surrogateescape).
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def check_headers(headers: Mapping[str, str], names: Iterable[str] | None = None) -> None:
    """400 for a header that is not valid UTF-8. aiohttp hands such bytes over as lone
    surrogates, which no comparison or ``encode()`` downstream expects (a 500 before).

    ``names``: only these headers (the ones authentication reads, before the sender is
    known). The check runs in C (``isascii``, one compiled pattern), linear in the bytes:
    a Python walk over every character let anyone burn ~50 ms of the event loop per
    request with 100 headers of 8 KB (issue 10, finding 4)."""
    items = (headers.items() if names is None
             else ((n, v) for n in names if (v := headers.get(n)) is not None))
    for name, value in items:
        if not value.isascii() and _UNDECODABLE.search(value):
            raise PayloadError(f"header {name} is not valid UTF-8", [name])
