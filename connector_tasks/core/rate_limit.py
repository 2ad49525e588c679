"""Global rate budgets in Redis, shared by every worker, thread and process (delivery guarantee 4).

A :class:`RateBudget` admits calls to one remote *system* on behalf of one *account* (the unit
the vendor counts: an OAuth grant, an app key x tenant, a license) against one or more
sliding-window rates, e.g. "200 requests per rolling 60 s". Every process that talks to the
same (system, account) builds a ``RateBudget`` on the same Redis and so draws from the same
budget; Celery's per-worker ``rate_limit`` is not used (it is per worker, not global).

Mechanics: PyrateLimiter's :class:`~pyrate_limiter.RedisBucket` with its sliding-window log
(one sorted-set entry per admitted call under ``ratelimit:<name>:<account>``); one Lua script
checks *every* rate and inserts the call atomically, so concurrent workers never overshoot and a
call refused by one rate spends nothing under the others. Timestamps come from Redis ``TIME``,
so workers on different hosts share one clock. A vendor 429 (``Retry-After``) or an exhausted
``X-RateLimit-Remaining`` feeds back through :meth:`RateBudget.penalize` /
:meth:`RateBudget.observe_headers`: a key ``ratelimit:block:<name>:<account>`` with a PX expiry
that makes every admission wait or refuse until it passes.

Units: a limit is a number of requests per window; windows, waits, ``max_wait`` and
``retry_after`` are seconds (floats). The vendors' numbers live in the connectors
(``connectors/<system>/budget.py``), never here; per-connection budgets (a licence's limits) come
from :func:`budget_from_settings`.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping

import redis as redis_lib
from pyrate_limiter import Rate, RateItem, RedisBucket
from pyrate_limiter.buckets.redis_bucket import LuaScript

from connector_tasks.core.errors import ConfigurationError, RateLimitedError

DEFAULT_MARGIN = 0.02
KEY_PREFIX = "ratelimit"

#: Window lengths (seconds) of the keys :func:`budget_from_settings` accepts.
SETTINGS_WINDOWS: dict[str, float] = {
    "per_second": 1.0,
    "per_minute": 60.0,
    "per_hour": 3600.0,
    "per_day": 86400.0,
}

# Extend-only block: SET key PX ms unless the key already lives longer.
_PENALIZE_LUA = """
local current = redis.call('PTTL', KEYS[1])
local wanted = tonumber(ARGV[1])
if current < wanted then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', wanted)
    return wanted
end
return current
"""


@dataclass(frozen=True)
class Budget:
    """The rates one remote system allows per account.

    ``name``: the system's registry name (part of the Redis key; no ``:``).
    ``rates``: ``((limit, window_seconds), ...)``: at most ``limit`` requests in any rolling
    window of ``window_seconds``; every rate is enforced at once.
    ``margin``: the fraction of each limit kept back (0 <= margin < 1), because the vendor
    measures time a few ms apart from our admission; each effective limit is
    ``floor(limit * (1 - margin))``, at least 1 (200/60 s at 0.02 -> 196/60 s; 60/1 s -> 58/1 s).
    ``guard``: seconds added to every window when enforcing (default 0). The count margin does
    not cover a burst at a window's edge whose requests reach the vendor with different delays
    (bench/README.md: up to 204 in a 200-window from a 196 budget); a guard at least as long as
    the spread of those delays does, at the cost of ``guard / window`` of the throughput.

    Raises ``ValueError`` on an empty or malformed rate list, or on rates PyrateLimiter refuses
    after redundant ones are dropped (see :meth:`pyrate_rates`).
    """

    name: str
    rates: tuple[tuple[int, float], ...]
    margin: float = DEFAULT_MARGIN
    guard: float = 0.0

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name:
            raise ValueError(f"budget name must be non-empty and contain no ':' (got {self.name!r})")
        rates = tuple((int(limit), float(window)) for limit, window in self.rates)
        if not rates:
            raise ValueError(f"budget {self.name!r} has no rates")
        for (limit, window), (raw_limit, _) in zip(rates, self.rates):
            if limit < 1 or limit != raw_limit or not window > 0 or not math.isfinite(window):
                raise ValueError(f"budget {self.name!r}: rate ({raw_limit}, {window}) needs an integer "
                                 "limit >= 1 and a window > 0 seconds")
        if not 0.0 <= self.margin < 1.0:
            raise ValueError(f"budget {self.name!r}: margin must be in [0, 1) (got {self.margin})")
        if not 0.0 <= self.guard < math.inf:
            raise ValueError(f"budget {self.name!r}: guard must be >= 0 seconds (got {self.guard})")
        object.__setattr__(self, "rates", rates)
        self.pyrate_rates()  # validate now, not at the first call

    def effective_rates(self) -> tuple[tuple[int, float], ...]:
        """``rates`` with the margin taken off each limit (rounded down, at least 1), shortest
        window first."""
        out = []
        for limit, window in sorted(self.rates, key=lambda r: r[1]):
            out.append((max(1, math.floor(limit * (1.0 - self.margin) + 1e-9)), window))
        return tuple(out)

    def pyrate_rates(self) -> list[Rate]:
        """The effective rates as PyrateLimiter ``Rate`` objects (interval in ms, guard
        included), with rates that another rate already implies dropped; raises ``ValueError``
        when the rest is not a list PyrateLimiter accepts (longer windows must allow more calls
        at a lower density)."""
        by_window: dict[int, int] = {}
        for limit, window in self.effective_rates():
            ms = max(1, round((window + self.guard) * 1000))
            by_window[ms] = min(limit, by_window.get(ms, limit))
        kept = sorted(by_window.items())
        changed = True
        while changed:
            changed = False
            for i in range(len(kept) - 1):
                (short_ms, short_limit), (long_ms, long_limit) = kept[i], kept[i + 1]
                if long_limit <= short_limit:          # the longer window alone is stricter
                    del kept[i]
                elif short_limit * math.ceil(long_ms / short_ms) <= long_limit:  # never binding
                    del kept[i + 1]
                else:
                    continue
                changed = True
                break
        rates = [Rate(limit, ms) for ms, limit in kept]
        for a, b in zip(rates, rates[1:]):
            if b.limit / b.interval > a.limit / a.interval:
                raise ValueError(f"budget {self.name!r}: rate {b.limit}/{b.interval / 1000:g}s allows more "
                                 f"per second than {a.limit}/{a.interval / 1000:g}s; PyrateLimiter "
                                 "needs longer windows at a lower density")
        return rates

    @property
    def longest_window(self) -> float:
        """The longest window, seconds."""
        return max(window for _, window in self.rates)

    @property
    def shortest_window(self) -> float:
        """The shortest window, seconds."""
        return min(window for _, window in self.rates)


def budget_from_settings(name: str, spec: Mapping[str, Any]) -> Budget:
    """A :class:`Budget` from a connection's settings, for systems whose limits depend on the
    customer's licence or sizing.

    ``spec`` keys: ``per_second``, ``per_minute``, ``per_hour``, ``per_day`` (integer limits),
    ``rates`` (a list of ``[limit, window_seconds]``), ``margin`` (fraction, default 0.02),
    ``guard`` (seconds added to each window, default 0).
    Example: ``{"per_minute": 100, "per_second": 5}`` -> rates ``((5, 1.0), (100, 60.0))``.
    Raises :class:`ConfigurationError` naming the bad key or value.
    """
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"rate budget for {name!r} must be a mapping (got {type(spec).__name__})")
    unknown = set(spec) - set(SETTINGS_WINDOWS) - {"rates", "margin", "guard"}
    if unknown:
        raise ConfigurationError(f"rate budget for {name!r}: unknown key(s) {sorted(unknown)}; use "
                                 f"{sorted(SETTINGS_WINDOWS)}, 'rates', 'margin' or 'guard'")
    rates: list[tuple[int, float]] = []
    try:
        for key, window in SETTINGS_WINDOWS.items():
            if spec.get(key) is not None:
                rates.append((_as_limit(spec[key], key), window))
        for entry in spec.get("rates") or ():
            limit, window = entry
            rates.append((_as_limit(limit, "rates"), float(window)))
        margin = float(spec.get("margin", DEFAULT_MARGIN))
        guard = float(spec.get("guard", 0.0))
        return Budget(name, tuple(rates), margin=margin, guard=guard)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"rate budget for {name!r} is invalid: {exc}") from exc


def _as_limit(value: Any, key: str) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or int(value) < 1:
        raise ValueError(f"{key} must be an integer >= 1 (got {value!r})")
    return int(value)


class RateBudget:
    """One (system, account) budget in Redis, shared by every process using the same Redis.

    ``redis_client``: a ``redis.Redis`` (sync; real Redis, Lua required). ``budget``: the rates.
    ``account``: what the vendor counts against (OAuth grant, app key x tenant, ...).

    Redis keys: ``ratelimit:<name>:<account>`` (sorted set of admissions, expires after the
    longest window when idle) and ``ratelimit:block:<name>:<account>`` (a vendor-imposed pause).
    Thread-safe; cheap to build (nothing touches Redis before the first call).

    Precision: PyrateLimiter's script takes the timestamp from the caller (here Redis ``TIME``,
    read one round trip earlier), so a process delayed between the two can slip one admission
    past the effective limit at a window's edge; the margin must cover that many calls (2 %
    of 200 is 4). Delays between admission and the request reaching the vendor are covered by
    ``Budget.guard``, not by the margin.
    """

    def __init__(self, redis_client: redis_lib.Redis, budget: Budget, account: str):
        if not account:
            raise ValueError("a rate budget needs an account")
        self.redis = redis_client
        self.budget = budget
        self.account = str(account)
        self.key = f"{KEY_PREFIX}:{budget.name}:{self.account}"
        self.block_key = f"{KEY_PREFIX}:block:{budget.name}:{self.account}"
        self._rates = budget.pyrate_rates()
        self._longest_ms = max(r.interval for r in self._rates)
        self._lock = threading.Lock()
        self._bucket: RedisBucket | None = None
        self._penalize_script = None

    @property
    def window_ms(self) -> int:
        """The longest window of the budget in milliseconds (the guard included): admissions
        are counted over ``(now - window_ms, now]``; older entries of :attr:`key` are pruned
        lazily, so ``ZCARD`` of the key may hold a few more than one window's."""
        return self._longest_ms

    # ------------------------------------------------------------------ admission
    def acquire(self, max_wait: float = 0.0) -> None:
        """Admit one call, waiting up to ``max_wait`` seconds for a free slot.

        Raises :class:`RateLimitedError` (``system`` = the budget's name, ``retry_after`` =
        seconds until a slot frees or the vendor's block ends) when none frees within
        ``max_wait``; a Celery task re-queues itself with that countdown. Redis errors
        propagate (``redis.exceptions.RedisError``): no Redis, no calls.
        """
        deadline = time.monotonic() + max(0.0, max_wait)
        while True:
            wait = self._attempt()
            if wait is None:
                return
            remaining = deadline - time.monotonic()
            if wait > remaining:
                raise RateLimitedError(
                    f"rate budget {self.budget.name}:{self.account} is spent "
                    f"({self._describe()}); next slot in {wait:.3f} s",
                    system=self.budget.name, retry_after=round(wait, 3))
            # A little jitter so waiters woken for the same slot do not all collide.
            time.sleep(min(remaining, wait + random.uniform(0.0, 0.005)))

    def try_acquire(self) -> bool:
        """Admit one call now if a slot is free (and no vendor block is on); never waits."""
        return self._attempt() is None

    def _attempt(self) -> float | None:
        """One admission attempt: ``None`` when admitted, else seconds to wait."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.time()
        pipe.pttl(self.block_key)
        (secs, micros), block_ms = pipe.execute()
        if block_ms > 0:
            return block_ms / 1000.0
        now_ms = int(secs) * 1000 + int(micros) // 1000
        decision = self._put(now_ms)
        if decision.allowed:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zremrangebyscore(self.key, 0, now_ms - self._longest_ms - 1)
            pipe.pexpire(self.key, self._longest_ms + 1000)
            pipe.execute()
            return None
        wait_ms = decision.retry_after_ms
        if wait_ms is None or wait_ms <= 0:  # not computed: retry in 1 ms rather than spin
            wait_ms = 1
        return wait_ms / 1000.0

    def _put(self, now_ms: int):
        item = RateItem(self.account, now_ms, weight=1)
        with self._lock:
            bucket = self._get_bucket()
            try:
                return bucket.put_decision(item)
            except redis_lib.exceptions.NoScriptError:
                # Redis restarted or flushed its script cache: load the script again.
                bucket.script_hash = self.redis.script_load(LuaScript.PUT_ITEM)
                return bucket.put_decision(item)

    def _get_bucket(self) -> RedisBucket:
        if self._bucket is None:
            self._bucket = RedisBucket.init(self._rates, self.redis, self.key)
        return self._bucket

    def _describe(self) -> str:
        return ", ".join(f"{r.limit}/{r.interval / 1000:g}s" for r in self._rates)

    # ------------------------------------------------------------------ vendor feedback
    def penalize(self, retry_after: float | None) -> None:
        """A vendor 429: block every admission for ``retry_after`` seconds (an existing longer
        block is kept). ``None`` (a 429 without ``Retry-After``) blocks for the shortest window.
        Signature fits a client's ``on_rate_limited`` hook."""
        if retry_after is None:
            retry_after = self.budget.shortest_window
        ms = int(math.ceil(float(retry_after) * 1000))
        if ms <= 0:
            return
        if self._penalize_script is None:
            self._penalize_script = self.redis.register_script(_PENALIZE_LUA)
        self._penalize_script(keys=[self.block_key], args=[ms, "1"])

    def blocked_for(self) -> float:
        """Seconds left of a vendor block (0.0 when none)."""
        ms = self.redis.pttl(self.block_key)
        return ms / 1000.0 if ms and ms > 0 else 0.0

    def observe_headers(self, headers: Mapping[str, str]) -> float:
        """Feed a response's rate headers back; returns the seconds blocked (0.0 when none).

        ``Retry-After`` (delta seconds or an HTTP date) blocks for that long. With
        ``X-RateLimit-Remaining`` at 0, ``X-RateLimit-Reset`` blocks until the reset: epoch
        seconds (or ms), a delta in seconds, or an ISO-8601 / HTTP date; an unreadable or
        missing reset blocks for the shortest window. Header names are case-insensitive.
        """
        lower = {str(k).lower(): v for k, v in headers.items()}
        blocked = 0.0
        retry_after = _seconds_until(lower.get("retry-after"), epoch_allowed=False)
        if retry_after is not None and retry_after > 0:
            self.penalize(retry_after)
            blocked = retry_after
        remaining = lower.get("x-ratelimit-remaining")
        if remaining is not None:
            try:
                exhausted = float(str(remaining).strip()) <= 0
            except ValueError:
                exhausted = False
            if exhausted:
                reset = _seconds_until(lower.get("x-ratelimit-reset"), epoch_allowed=True)
                wait = reset if reset is not None and reset > 0 else self.budget.shortest_window
                self.penalize(wait)
                blocked = max(blocked, wait)
        return blocked

    def reset(self) -> None:
        """Forget every admission and block of this budget (tests, operator action)."""
        self.redis.delete(self.key, self.block_key)


def _seconds_until(value: Any, *, epoch_allowed: bool) -> float | None:
    """Seconds from now described by a header value: a number (a delta; with
    ``epoch_allowed``, values above 1e9 are epoch seconds and above 1e12 epoch ms), an
    ISO-8601 datetime or an HTTP date. ``None`` when absent or unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number):
            return None
        if epoch_allowed and number > 1e12:
            return number / 1000.0 - time.time()
        if epoch_allowed and number > 1e9:
            return number - time.time()
        return number
    when: dt.datetime | None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
