"""The few exception types Baton raises across module boundaries.

Normal pipeline outcomes (a delivery that must be retried, an alert that was deduplicated)
are values, not exceptions; these are for input we refuse and for storage we cannot reach.
"""

from __future__ import annotations


class BatonError(Exception):
    """Base class; never raised itself."""


class ConfigError(BatonError):
    """The configuration is invalid. ``problems`` holds every ``path: message`` found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems) if problems else "invalid configuration")


class PayloadError(BatonError):
    """A request body is not of the shape its source expects (becomes a 400).

    ``errors`` lists each problem with a JSON-pointer-like path, e.g. ``alerts[0].labels``.
    """

    def __init__(self, detail: str, errors: list[str] | None = None) -> None:
        self.detail = detail
        self.errors = errors or []
        super().__init__(detail)


class MalformedBody(PayloadError):
    """The body is not JSON at all (not UTF-8, does not parse), as opposed to JSON of the
    wrong shape: vendors that answer the two differently (PagerDuty) can tell them apart."""


class AuthError(BatonError):
    """Missing or wrong credentials or signature (becomes a 401). Never carries the secret.

    ``challenge`` is the ``WWW-Authenticate`` value telling the client which scheme to use.
    """

    def __init__(self, detail: str, challenge: str = 'Bearer realm="baton"') -> None:
        self.challenge = challenge
        super().__init__(detail)


class StorageUnavailable(BatonError):
    """Storage cannot take the write now (becomes a 503 with Retry-After)."""

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        self.retry_after = retry_after
        super().__init__(detail)


class NotFound(BatonError):
    """A named object (incident, delivery, source) does not exist (becomes a 404)."""


class Conflict(BatonError):
    """The request is valid but the object's state forbids it (becomes a 409)."""
