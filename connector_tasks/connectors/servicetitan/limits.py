"""The ServiceTitan rate budget of one (app key, tenant), and the three client hooks that draw
from it and feed the vendor's answers back.

ServiceTitan allows 60 requests per second per application per tenant (App Key x Tenant ID
buckets; the integration environment is the same) and asks a client that gets a 429 to back off
and honour ``Retry-After`` (ServiceTitan's rate-limit profile as reconciled by
https://apis.io/rate-limits/servicetitan — a secondary source; the budget itself is
:data:`connector_tasks.connectors.servicetitan.budget.SERVICETITAN_BUDGET`, 58 per second
effective). Every worker that talks to the same tenant with the same app key builds its budget
with :func:`budget_for` on the same Redis, so all of them draw from one bucket.
"""
from __future__ import annotations

from typing import Callable, Mapping

import redis as redis_lib

from connector_tasks.connectors.servicetitan.budget import SERVICETITAN_BUDGET, servicetitan_account
from connector_tasks.core.rate_limit import RateBudget

#: Seconds a request may wait for a free slot of the budget before
#: :class:`~connector_tasks.core.errors.RateLimitedError` (the task then re-queues itself).
DEFAULT_MAX_WAIT = 2.0


def budget_for(redis_client: redis_lib.Redis, app_key: str, tenant: int | str) -> RateBudget:
    """The :class:`~connector_tasks.core.rate_limit.RateBudget` of (``app_key``, ``tenant``) on
    :data:`SERVICETITAN_BUDGET` (60 requests per 1 s window, 2 % margin, 0.05 s guard), account
    :func:`servicetitan_account` (a short digest of the app key, then the tenant id), Redis keys
    ``ratelimit:servicetitan:<account>`` and ``ratelimit:block:servicetitan:<account>``.
    Touches Redis only at the first draw. Raises ``ValueError`` for an empty app key."""
    if not app_key:
        raise ValueError("a ServiceTitan rate budget needs the app key")
    return RateBudget(redis_client, SERVICETITAN_BUDGET, servicetitan_account(app_key, tenant))


def budget_hooks(budget: RateBudget, *, max_wait: float = DEFAULT_MAX_WAIT) -> dict[str, Callable]:
    """Keyword arguments for :class:`~connector_tasks.connectors.servicetitan.client.ServiceTitanClient`:

    * ``before_request()``: :meth:`RateBudget.acquire` waiting up to ``max_wait`` seconds
      (raises :class:`~connector_tasks.core.errors.RateLimitedError` with ``retry_after``
      seconds when no slot frees in time);
    * ``on_rate_limited(retry_after)``: :meth:`RateBudget.penalize` — a vendor 429 holds every
      worker of this (app key, tenant) back for ``Retry-After`` seconds (one shortest window,
      1 s, when the header is missing);
    * ``on_response(headers)``: :meth:`RateBudget.observe_headers` (``Retry-After`` or an
      exhausted ``X-RateLimit-Remaining`` on a non-429 reply also holds the budget back).
    """
    def before_request() -> None:
        budget.acquire(max_wait=max_wait)

    def on_response(headers: Mapping[str, str]) -> float:
        return budget.observe_headers(headers)

    return {"before_request": before_request, "on_rate_limited": budget.penalize,
            "on_response": on_response}
