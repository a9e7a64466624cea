"""When to try a failed delivery again, and when to give up.

The waits are tenacity's: exponential with full jitter (``wait_random_exponential``), the
strategy that spreads retries of many clients best. A vendor's Retry-After wins over the
jitter but is capped, so a hostile or broken target cannot park a delivery for a week.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import RetryCallState, wait_random_exponential

from .model import Outcome


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 12
    max_age: float = 86400.0
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    max_retry_after: float = 600.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before attempt ``attempt + 1``; ``attempt`` counts from 1."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        wait = wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max)
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return float(wait(state))


@dataclass(frozen=True)
class Decision:
    state: str  # delivered | pending | dead
    next_attempt_at: float | None
    reason: str | None


def decide(outcome: Outcome, attempt: int, created_at: float, now: float,
           policy: RetryPolicy) -> Decision:
    if outcome.kind == "ok":
        return Decision("delivered", None, None)
    if outcome.kind == "permanent":
        return Decision("dead", None, f"permanent: {outcome.detail}")
    if attempt >= policy.max_attempts:
        return Decision("dead", None, f"gave up after {attempt} attempts: {outcome.detail}")
    at = now + policy.delay(attempt, outcome.retry_after)
    if at - created_at > policy.max_age:
        return Decision("dead", None,
                        f"gave up: next attempt would pass max_age: {outcome.detail}")
    return Decision("pending", at, outcome.detail)
