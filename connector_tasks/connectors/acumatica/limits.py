"""Per-connection licence budgets for Acumatica (https://help.myob.com.au/advanced/Docs/Published/IntegrationDevelopmentGuide/IS__con_License_Restrictions_API_Users.html).

A licence limits *API requests per minute* and *concurrent API requests* (and API users, i.e.
sessions, which the client handles by always logging out). Both request limits are the
customer's and so are connection settings: ``requests_per_minute`` (requests per rolling
60 s) and ``concurrent_requests`` (requests in flight at once), shared by every worker through
Redis:

* requests per minute: :class:`connector_tasks.core.rate_limit.RateBudget` built by
  :func:`~connector_tasks.core.rate_limit.budget_from_settings`, account = the connection name;
* concurrent requests: :class:`ConcurrencySlots`, a leased-slot semaphore in Redis.

Why our own semaphore: the maintained Redis semaphores on PyPI either need Python >= 3.11 and
pydantic (``redis-rate-limiters`` and its fork) or are unmaintained (``Redis-Semaphore``,
2016); adding one also means a new dependency for every deployment. The need is small: one
sorted set per connection, one Lua script to take a slot atomically, a lease so that a slot of
a killed worker frees itself (a request never outlives the HTTP read timeout, so the lease is
that timeout plus a margin and needs no renewal).
"""
from __future__ import annotations

import contextlib
import random
import time
import uuid
from typing import Iterator

import redis as redis_lib

from connector_tasks.core.errors import ConfigurationError, RateLimitedError
from connector_tasks.core.rate_limit import RateBudget, budget_from_settings

SYSTEM = "acumatica"

# KEYS[1] slots zset; ARGV: now_ms, lease_ms, capacity, token. Returns 0 when taken, else ms
# until the earliest lease ends.
_TAKE_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[4])
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
    return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) - tonumber(ARGV[1]))
"""


class ConcurrencySlots:
    """At most ``capacity`` holders at once across every process sharing ``redis_client``.

    ``name`` identifies the licence (the connection); ``lease`` is seconds after which a slot
    whose holder vanished frees itself. Redis key ``slots:acumatica:<name>`` (a sorted set of
    holder tokens scored by lease end, ms from Redis ``TIME``).
    """

    def __init__(self, redis_client: redis_lib.Redis, name: str, capacity: int, *, lease: float = 60.0):
        if capacity < 1:
            raise ConfigurationError(f"concurrent_requests must be >= 1 (got {capacity})", system=SYSTEM)
        self.redis = redis_client
        self.key = f"slots:{SYSTEM}:{name}"
        self.capacity = int(capacity)
        self.lease_ms = int(lease * 1000)
        self._script = redis_client.register_script(_TAKE_LUA)

    def _now_ms(self) -> int:
        secs, micros = self.redis.time()
        return int(secs) * 1000 + int(micros) // 1000

    def try_take(self) -> tuple[str | None, float]:
        """One attempt: ``(token, 0.0)`` when a slot was taken, else ``(None, seconds to wait)``."""
        token = uuid.uuid4().hex
        wait_ms = int(self._script(keys=[self.key], args=[self._now_ms(), self.lease_ms, self.capacity, token]))
        return (token, 0.0) if wait_ms == 0 else (None, wait_ms / 1000.0)

    def release(self, token: str) -> None:
        """Give slot ``token`` back (a no-op when its lease already ended)."""
        self.redis.zrem(self.key, token)

    @contextlib.contextmanager
    def slot(self, max_wait: float = 30.0) -> Iterator[None]:
        """Hold one slot for the block, waiting up to ``max_wait`` seconds (short polls with
        jitter). Raises :class:`RateLimitedError` (retryable, ``retry_after`` seconds) when
        none frees in time."""
        deadline = time.monotonic() + max_wait
        while True:
            token, wait = self.try_take()
            if token is not None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RateLimitedError(f"all {self.capacity} concurrent Acumatica request slots are busy",
                                       system=SYSTEM, retry_after=round(min(wait, 5.0), 3))
            time.sleep(min(remaining, wait, 0.05) + random.uniform(0, 0.01))
        try:
            yield
        finally:
            self.release(token)

    def in_use(self) -> int:
        """Slots held now (expired leases not counted)."""
        return int(self.redis.zcount(self.key, self._now_ms() + 1, "+inf"))


def rate_budget(redis_client: redis_lib.Redis, name: str, settings: dict) -> RateBudget | None:
    """The requests-per-minute budget of connection ``name`` from its ``settings``
    (``requests_per_minute``: requests per rolling 60 s), or ``None`` when the licence sets none.
    Raises :class:`ConfigurationError` for a bad value."""
    rpm = settings.get("requests_per_minute")
    if not rpm:
        return None
    return RateBudget(redis_client, budget_from_settings(SYSTEM, {"per_minute": rpm}), account=name)


def concurrency_slots(redis_client: redis_lib.Redis, name: str, settings: dict, *,
                      lease: float = 60.0) -> ConcurrencySlots | None:
    """The concurrent-request slots of connection ``name`` (setting ``concurrent_requests``),
    or ``None`` when the licence sets no limit. Raises :class:`ConfigurationError`."""
    n = settings.get("concurrent_requests")
    if not n:
        return None
    try:
        return ConcurrencySlots(redis_client, name, int(n), lease=lease)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"concurrent_requests is not an integer: {n!r}", system=SYSTEM) from exc
