"""Retry timing: full-jitter exponential backoff, Retry-After honoured and capped, and the
decision table the dispatcher applies after every attempt."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from baton.backoff import Decision, RetryPolicy, decide
from baton.model import Outcome

POLICY = RetryPolicy(max_attempts=5, max_age=3600, backoff_initial=2, backoff_max=60,
                     max_retry_after=300)
NOW = 1_000_000.0


@pytest.fixture(autouse=True)
def _keep_random_state() -> Iterator[None]:
    """The tests seed ``random`` (tenacity's jitter uses it); others get their state back."""
    state = random.getstate()
    yield
    random.setstate(state)


@pytest.mark.parametrize(("attempt", "ceiling"), [
    (1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 60), (7, 60), (30, 60)])
def test_delay_is_full_jitter_below_the_exponential_ceiling(attempt: int,
                                                            ceiling: float) -> None:
    random.seed(attempt)
    samples = [POLICY.delay(attempt, None) for _ in range(2000)]
    assert all(0 <= s <= ceiling for s in samples)
    # Full jitter: spread over the whole range, not bunched at the top or the bottom.
    assert min(samples) < ceiling * 0.05
    assert max(samples) > ceiling * 0.95
    assert ceiling * 0.4 < sum(samples) / len(samples) < ceiling * 0.6


def test_delays_differ_between_deliveries() -> None:
    random.seed(7)
    assert len({POLICY.delay(3, None) for _ in range(50)}) == 50


@pytest.mark.parametrize(("retry_after", "expected"), [
    (0, 0), (1, 1), (120, 120), (299.5, 299.5), (300, 300), (301, 300), (100_000, 300),
    (-5, 0)])
def test_retry_after_is_honoured_exactly_and_capped(retry_after: float,
                                                    expected: float) -> None:
    for attempt in (1, 4, 20):
        assert POLICY.delay(attempt, retry_after) == expected


def test_retry_after_wins_over_a_longer_backoff() -> None:
    policy = RetryPolicy(backoff_initial=1000, backoff_max=1000, max_retry_after=600)
    assert policy.delay(10, 5) == 5


@pytest.mark.parametrize(("outcome", "attempt", "age", "expected"), [
    (Outcome.ok("HTTP 200"), 1, 0, Decision("delivered", None, None)),
    (Outcome.ok(), 5, 10_000, Decision("delivered", None, None)),
    (Outcome.permanent("HTTP 400: bad", 400), 1, 0,
     Decision("dead", None, "permanent: HTTP 400: bad")),
    (Outcome.retryable("HTTP 503", 503, 30), 1, 0, Decision("pending", NOW + 30, "HTTP 503")),
    (Outcome.retryable("HTTP 503", 503, 30), 4, 0, Decision("pending", NOW + 30, "HTTP 503")),
    (Outcome.retryable("HTTP 503", 503, 30), 5, 0,
     Decision("dead", None, "gave up after 5 attempts: HTTP 503")),
    (Outcome.retryable("HTTP 429", 429, 10_000), 2, 0,
     Decision("pending", NOW + 300, "HTTP 429")),
    (Outcome.retryable("HTTP 503", 503, 30), 2, 3570, Decision("pending", NOW + 30, "HTTP 503")),
    (Outcome.retryable("HTTP 503", 503, 31), 2, 3570,
     Decision("dead", None, "gave up: next attempt would pass max_age: HTTP 503")),
    (Outcome.retryable("timed out after 10s"), 2, 4000,
     Decision("dead", None, "gave up: next attempt would pass max_age: timed out after 10s")),
])
def test_decide(outcome: Outcome, attempt: int, age: float, expected: Decision) -> None:
    assert decide(outcome, attempt, NOW - age, NOW, POLICY) == expected


def test_decide_without_retry_after_schedules_within_the_backoff() -> None:
    random.seed(3)
    for attempt in range(1, 5):
        d = decide(Outcome.retryable("refused"), attempt, NOW, NOW, POLICY)
        assert d.state == "pending" and d.reason == "refused"
        assert d.next_attempt_at is not None
        assert NOW <= d.next_attempt_at <= NOW + min(60, 2 * 2 ** (attempt - 1))
