"""Retry policies.

* :func:`call_with_retries`: short in-call retries of transient errors (tenacity: exponential
  backoff with jitter, bounded, honouring a ``Retry-After`` carried by the error).
* :func:`countdown`: the delay before a Celery ``retry`` for long waits.
"""
from __future__ import annotations

import random
from typing import Callable, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from connector_tasks.core.errors import ConnectorError, RateLimitedError

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """True for errors of the tree whose ``retryable`` flag is set."""
    return isinstance(exc, ConnectorError) and exc.retryable


class _WaitHonouringRetryAfter:
    """tenacity wait: exponential with jitter, but never less than the error's Retry-After."""

    def __init__(self, initial: float, maximum: float):
        self._exp = wait_exponential_jitter(multiplier=initial, max=maximum)
        self._max = maximum

    def __call__(self, state: RetryCallState) -> float:
        wait = self._exp(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitedError) and exc.retry_after:
            wait = max(wait, min(exc.retry_after, self._max))
        return wait


def call_with_retries(fn: Callable[[], T], *, attempts: int = 3, initial: float = 0.5,
                      maximum: float = 5.0) -> T:
    """Call ``fn``; retry it up to ``attempts`` times in all while it raises a retryable error.

    Waits are in seconds. The last error is re-raised as is.
    """
    for attempt in Retrying(stop=stop_after_attempt(attempts), retry=retry_if_exception(is_retryable),
                            wait=_WaitHonouringRetryAfter(initial, maximum), reraise=True):
        with attempt:
            return fn()
    raise AssertionError("unreachable")  # pragma: no cover


def countdown(retries: int, retry_after: float | None = None, *, base: float = 5.0,
              maximum: float = 600.0) -> float:
    """Seconds before the next Celery retry: ``base·2^retries`` with ±25 % jitter, capped at
    ``maximum``, and never sooner than ``retry_after``."""
    delay = min(maximum, base * (2 ** retries))
    delay *= random.uniform(0.75, 1.25)
    if retry_after:
        delay = max(delay, retry_after)
    return round(delay, 2)
