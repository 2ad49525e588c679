"""ServiceTitan's global rate budget — ready for the ServiceTitan connector.

https://developer.servicetitan.io/docs/: **60 requests per second per application per tenant** (App Key x Tenant
ID buckets; the integration environment is the same); on 429 back off and honour
``Retry-After``. With a 2 % margin the effective budget is 58 per second. The account of a
:class:`~connector_tasks.core.rate_limit.RateBudget` on this budget is
:func:`servicetitan_account` (app key x tenant).
"""
from __future__ import annotations

import hashlib

from connector_tasks.core.rate_limit import Budget

#: 60 requests per second per (app key, tenant), 2 % margin -> 58 per second effective.
SERVICETITAN_BUDGET = Budget("servicetitan", ((60, 1.0),), margin=0.02, guard=0.05)


def servicetitan_account(app_key: str, tenant: int | str) -> str:
    """The budget account for (``app_key``, ``tenant``): the app key is a credential, so only a
    short digest of it goes into the Redis key."""
    digest = hashlib.sha256(app_key.encode()).hexdigest()[:16]
    return f"{digest}-{tenant}"
