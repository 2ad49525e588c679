"""Four real processes share one global rate budget in a real Redis.

Each process builds its own Redis client and its own :class:`RateBudget` for the same
(system, account) and calls ``acquire`` as fast as it can for ~6 s. Every admission's
timestamp (the Redis ``TIME`` the Lua script checked against) goes to a Redis list; the test
then checks the vendor's view: no sliding 2-s window holds more than the 20 allowed, and the
processes together used at least 80 % of the 20-per-2-s maximum.
"""
from __future__ import annotations

import multiprocessing
import time
import uuid

import pytest
import redis as redis_lib

from connector_tasks.core.errors import RateLimitedError
from connector_tasks.core.rate_limit import Budget, RateBudget

pytestmark = pytest.mark.integration

LIMIT, WINDOW = 20, 2.0          # the "vendor's" limit: 20 requests per rolling 2 s
DURATION = 6.0
PROCESSES = 4
# The margin must cover, in absolute calls, the admissions that can slip past at a window's
# edge: PyrateLimiter's script takes its timestamp from the caller, so a process delayed between
# reading Redis TIME and running the script can add one call beyond the effective limit (seen on
# a loaded 2-CPU machine: 20 with an effective 19). Gusto's 2 % is 4 calls of 200; here 15 %
# keeps 3 of 20 for 4 processes (17 per window, 51 of 60 = 85 % at best).
BUDGET = Budget("bench", ((LIMIT, WINDOW),), margin=0.15)


class RecordingBudget(RateBudget):
    """A RateBudget that remembers the timestamp (ms, Redis clock) of its last admission."""

    last_admitted_ms: int | None = None

    def _put(self, now_ms: int):
        decision = super()._put(now_ms)
        if decision.allowed:
            self.last_admitted_ms = now_ms
        return decision


def hammer(url: str, account: str, out_key: str, start_at: float, duration: float) -> None:
    """One worker process: acquire as fast as the budget lets it until ``start_at + duration``."""
    client = redis_lib.Redis.from_url(url)
    budget = RecordingBudget(client, BUDGET, account)
    time.sleep(max(0.0, start_at - time.time()))
    end = start_at + duration
    while (remaining := end - time.time()) > 0:
        try:
            budget.acquire(max_wait=remaining)
        except RateLimitedError:
            break
        if time.time() >= end:
            break
        client.rpush(out_key, budget.last_admitted_ms)
    client.close()


def max_in_window(stamps_ms: list[int], window_ms: int) -> int:
    """Most timestamps inside any closed window ``[t, t + window_ms]``."""
    stamps = sorted(stamps_ms)
    best, lo = 0, 0
    for hi, t in enumerate(stamps):
        while t - stamps[lo] > window_ms:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_four_processes_never_exceed_the_shared_budget(redis_server):
    client = redis_lib.Redis.from_url(redis_server.url)
    run = uuid.uuid4().hex[:8]
    out_key = f"test:admissions:{run}"
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0         # time for the spawned interpreters to import
    procs = [ctx.Process(target=hammer, args=(redis_server.url, f"acct-{run}", out_key, start_at, DURATION))
             for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]

    stamps = [int(x) for x in client.lrange(out_key, 0, -1)]
    client.delete(out_key)
    client.close()
    theoretical = LIMIT * DURATION / WINDOW                       # 60
    worst = max_in_window(stamps, int(WINDOW * 1000))
    print(f"admitted {len(stamps)} of {theoretical:.0f} ({len(stamps) / theoretical:.0%}); "
          f"max in any {WINDOW:g}-s window: {worst} (limit {LIMIT})")
    assert worst <= LIMIT
    assert len(stamps) >= 0.8 * theoretical
