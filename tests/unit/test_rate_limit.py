"""Global rate budgets (connector_tasks.core.rate_limit) against a real Redis.

PyrateLimiter's Redis bucket checks its rates in a Lua script; fakeredis runs Lua only with
``lupa``, which is not installed, so these tests use the session's real ``redis_server``.
Every test uses its own account, so budgets never leak between tests.
"""
from __future__ import annotations

import time
import uuid

import pytest
import redis as redis_lib

from connector_tasks.connectors.gusto.budget import GUSTO_BUDGET
from connector_tasks.connectors.servicetitan.budget import SERVICETITAN_BUDGET, servicetitan_account
from connector_tasks.core.errors import ConfigurationError, RateLimitedError
from connector_tasks.core.rate_limit import Budget, RateBudget, budget_from_settings


@pytest.fixture
def rds(redis_server):
    client = redis_lib.Redis.from_url(redis_server.url)
    yield client
    client.close()


def account() -> str:
    return f"acct-{uuid.uuid4().hex[:8]}"


def admitted_now(budget: RateBudget, tries: int) -> int:
    return sum(budget.try_acquire() for _ in range(tries))


# ---------------------------------------------------------------- Budget / margin
def test_margin_rounds_down_and_keeps_at_least_one():
    assert GUSTO_BUDGET.effective_rates() == ((196, 60.0),)
    assert SERVICETITAN_BUDGET.effective_rates() == ((58, 1.0),)
    assert Budget("x", ((100, 60.0),), margin=0.02).effective_rates() == ((98, 60.0),)
    assert Budget("x", ((10, 1.0),), margin=0.02).effective_rates() == ((9, 1.0),)
    assert Budget("x", ((1, 1.0),), margin=0.5).effective_rates() == ((1, 1.0),)
    assert Budget("x", ((7, 2.0),), margin=0.0).effective_rates() == ((7, 2.0),)


def test_budget_validation():
    with pytest.raises(ValueError):
        Budget("x", ())
    with pytest.raises(ValueError):
        Budget("x", ((0, 1.0),))
    with pytest.raises(ValueError):
        Budget("x", ((5, 0.0),))
    with pytest.raises(ValueError):
        Budget("x", ((5, 1.0),), margin=1.0)
    with pytest.raises(ValueError):
        Budget("a:b", ((5, 1.0),))
    # 8 per 1.5 s is binding next to 5 per 1 s but denser: PyrateLimiter refuses the pair.
    with pytest.raises(ValueError):
        Budget("x", ((5, 1.0), (8, 1.5)), margin=0.0)


def test_redundant_rates_are_dropped():
    # 600/min can never bind under 5/s (at most 300 in any minute).
    assert [(r.limit, r.interval) for r in Budget("x", ((5, 1.0), (600, 60.0)), 0.0).pyrate_rates()] == [(5, 1000)]
    # 4 per 10 s is stricter than 5 per 1 s everywhere.
    assert [(r.limit, r.interval) for r in Budget("x", ((5, 1.0), (4, 10.0)), 0.0).pyrate_rates()] == [(4, 10000)]


def test_budget_from_settings():
    b = budget_from_settings("acumatica", {"per_minute": 100, "per_second": 5})
    assert b.name == "acumatica" and b.margin == 0.02
    assert b.rates == ((5, 1.0), (100, 60.0))
    assert b.effective_rates() == ((4, 1.0), (98, 60.0))
    b = budget_from_settings("ifs", {"rates": [[30, 10]], "margin": 0})
    assert b.effective_rates() == ((30, 10.0),)
    for bad in ({}, {"per_fortnight": 3}, {"per_second": 0}, {"per_second": 2.5}, {"per_minute": "x"},
                {"margin": 2, "per_second": 3}, {"rates": [[1]]}):
        with pytest.raises(ConfigurationError):
            budget_from_settings("acumatica", bad)


# ---------------------------------------------------------------- admission
def test_n_admitted_then_refused_with_retry_after(rds):
    budget = RateBudget(rds, Budget("t", ((5, 1.0),), margin=0.0), account())
    assert admitted_now(budget, 5) == 5
    assert budget.try_acquire() is False
    with pytest.raises(RateLimitedError) as info:
        budget.acquire()
    exc = info.value
    assert exc.system == "t" and exc.retryable
    assert 0 < exc.retry_after <= 1.01


def test_acquire_waits_for_a_slot_within_max_wait(rds):
    budget = RateBudget(rds, Budget("t", ((3, 0.5),), margin=0.0), account())
    assert admitted_now(budget, 3) == 3
    start = time.monotonic()
    budget.acquire(max_wait=2.0)
    waited = time.monotonic() - start
    assert 0.2 < waited < 1.0


def test_two_rates_both_enforced(rds):
    budget = RateBudget(rds, Budget("t", ((5, 1.0), (8, 3.0)), margin=0.0), account())
    t0 = time.monotonic()
    assert admitted_now(budget, 10) == 5          # the 1-second rate binds first
    time.sleep(max(0.0, t0 + 1.05 - time.monotonic()))
    assert admitted_now(budget, 10) == 3          # then the 3-second rate: 8 in all
    with pytest.raises(RateLimitedError) as info:
        budget.acquire()
    # Only the 3-second window can explain a wait longer than one second.
    assert 1.5 < info.value.retry_after <= 2.0
    assert rds.zcard(budget.key) == 8


def test_margin_applies_to_live_admissions(rds):
    budget = RateBudget(rds, Budget("t", ((50, 5.0),), margin=0.1), account())
    assert admitted_now(budget, 60) == 45


def test_separate_accounts_do_not_share(rds):
    spec = Budget("t", ((4, 2.0),), margin=0.0)
    a, b = RateBudget(rds, spec, account()), RateBudget(rds, spec, account())
    assert admitted_now(a, 6) == 4
    assert admitted_now(b, 6) == 4
    assert a.key != b.key and a.key.startswith("ratelimit:t:")


def test_two_clients_share_one_budget(rds, redis_server):
    spec, acct = Budget("t", ((6, 2.0),), margin=0.0), account()
    other = redis_lib.Redis.from_url(redis_server.url)
    a, b = RateBudget(rds, spec, acct), RateBudget(other, spec, acct)
    assert admitted_now(a, 4) + admitted_now(b, 4) == 6
    other.close()


def test_admission_log_expires_when_idle(rds):
    budget = RateBudget(rds, Budget("t", ((5, 1.0),), margin=0.0), account())
    budget.acquire()
    assert 0 < rds.pttl(budget.key) <= 2000


def test_script_cache_flush_is_survived(rds):
    budget = RateBudget(rds, Budget("t", ((5, 1.0),), margin=0.0), account())
    budget.acquire()
    rds.script_flush()
    budget.acquire()
    assert rds.zcard(budget.key) == 2


# ---------------------------------------------------------------- vendor feedback
def test_penalize_blocks_then_releases(rds):
    budget = RateBudget(rds, Budget("t", ((100, 1.0),), margin=0.0), account())
    budget.penalize(0.4)
    assert rds.exists(f"ratelimit:block:t:{budget.account}")
    assert budget.try_acquire() is False
    with pytest.raises(RateLimitedError) as info:
        budget.acquire(max_wait=0.1)
    assert 0.2 < info.value.retry_after <= 0.4
    start = time.monotonic()
    budget.acquire(max_wait=1.0)                 # waits out the block
    assert 0.15 < time.monotonic() - start < 0.8
    assert budget.try_acquire() is True


def test_penalize_never_shortens_a_block(rds):
    budget = RateBudget(rds, Budget("t", ((100, 1.0),), margin=0.0), account())
    budget.penalize(2.0)
    budget.penalize(0.1)
    assert budget.blocked_for() > 1.5
    budget.penalize(0)                            # no-op
    assert budget.blocked_for() > 1.5


def test_penalize_without_retry_after_blocks_one_short_window(rds):
    budget = RateBudget(rds, Budget("t", ((5, 1.0), (20, 60.0)), margin=0.0), account())
    budget.penalize(None)
    assert 0.5 < budget.blocked_for() <= 1.0


def test_observe_headers(rds):
    spec = Budget("t", ((100, 1.0),), margin=0.0)
    budget = RateBudget(rds, spec, account())
    assert budget.observe_headers({"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "30"}) == 0.0
    assert budget.try_acquire()

    assert budget.observe_headers({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0.5"}) == 0.5
    assert not budget.try_acquire() and 0.3 < budget.blocked_for() <= 0.5

    epoch = RateBudget(rds, spec, account())
    epoch.observe_headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(time.time() + 3)})
    assert 2.0 < epoch.blocked_for() <= 3.0

    iso = RateBudget(rds, spec, account())
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 5))
    iso.observe_headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": when})
    assert 3.0 < iso.blocked_for() <= 5.0

    retry = RateBudget(rds, spec, account())
    assert retry.observe_headers({"Retry-After": "2"}) == 2.0
    assert 1.5 < retry.blocked_for() <= 2.0

    garbage = RateBudget(rds, spec, account())
    assert garbage.observe_headers({"Retry-After": "soon", "X-RateLimit-Remaining": "n/a"}) == 0.0
    assert garbage.try_acquire()


# ---------------------------------------------------------------- connectors
def test_servicetitan_account_hides_the_app_key():
    acct = servicetitan_account("secret-app-key", 12345)
    assert "secret" not in acct and acct.endswith("-12345")


def test_gusto_client_draws_from_the_grant_budget(rds, redis_server, monkeypatch):
    import config.settings as settings_mod
    from config.settings import Settings
    from connector_tasks.connectors.gusto.service import gusto_client
    from connector_tasks.store.models import Connection

    monkeypatch.setattr(settings_mod, "_current", Settings(redis_url=redis_server.url, database_url="sqlite://",
                                                           environ={"GUSTO_CLIENT_ID": "id",
                                                                    "GUSTO_CLIENT_SECRET": "s"}))
    name = account()
    client = gusto_client(Connection(id=1, name=name, system="gusto"))
    key = f"ratelimit:gusto:{name}"
    for _ in range(3):
        client.before_request()
    assert rds.zcard(key) == 3
    client.on_rate_limited(0.5)
    assert 0.3 < rds.pttl(f"ratelimit:block:gusto:{name}") / 1000 <= 0.5


def test_guard_lengthens_every_window(rds):
    spec = Budget("t", ((4, 0.5),), margin=0.0, guard=0.3)
    assert [(r.limit, r.interval) for r in spec.pyrate_rates()] == [(4, 800)]
    assert budget_from_settings("x", {"per_second": 5, "guard": 0.5}).guard == 0.5
    budget = RateBudget(rds, spec, account())
    assert admitted_now(budget, 5) == 4
    with pytest.raises(RateLimitedError) as info:
        budget.acquire()
    assert 0.6 < info.value.retry_after <= 0.81
