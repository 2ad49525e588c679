"""Gusto's global rate budget.

external-apis.md §1.3: **200 requests per rolling 60-second window per OAuth grant** (access
token); over it Gusto answers 429 with ``Retry-After`` (seconds) until the window closes.
We keep 2 % back (196 per 60 s) because Gusto's clock and ours differ by a few milliseconds.
The account of a :class:`~connector_tasks.core.rate_limit.RateBudget` on this budget is the
grant: one connection = one OAuth authorization (see ``service.gusto_client``).
"""
from __future__ import annotations

from connector_tasks.core.rate_limit import Budget

#: 200 requests per rolling 60 s per grant, 2 % margin -> 196 per 60 s effective.
GUSTO_BUDGET = Budget("gusto", ((200, 60.0),), margin=0.02)
