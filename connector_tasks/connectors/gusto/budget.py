"""Gusto's global rate budget.

https://docs.gusto.com/app-integrations/docs/rate-limits: **200 requests per rolling 60-second window per OAuth grant** (access
token); over it Gusto answers 429 with ``Retry-After`` (seconds) until the window closes.
We keep 2 % back (196 per 60 s) and count each window 1 s longer (``guard``): a full window
admitted in a burst leaves with a few ms of spread, so without the guard the vendor's clock saw
up to 204 in a window in bench/budget_use.py with 8 processes; with it, 196.
The account of a :class:`~connector_tasks.core.rate_limit.RateBudget` on this budget is the
grant: one connection = one OAuth authorization (see ``service.gusto_client``).
"""
from __future__ import annotations

from connector_tasks.core.rate_limit import Budget

#: 200 requests per rolling 60 s per grant → 196 per 61 s effective.
GUSTO_BUDGET = Budget("gusto", ((200, 60.0),), margin=0.02, guard=1.0)
