"""The client base (core/client.py) and the OAuth token model and refresh helper (core/oauth.py),
with in-process fake sessions: the error table, the hooks, JSON decoding, single-flight refresh."""
from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from decimal import Decimal

import pytest
import requests

from connector_tasks.connectors.acumatica.client import AcumaticaClient
from connector_tasks.connectors.gusto.client import GustoClient
from connector_tasks.core.client import JsonApiClient, parse_json
from connector_tasks.core.errors import (
    AuthError, ConfigurationError, ConflictError, RateLimitedError, RejectedError, TransientApiError,
)
from connector_tasks.core.oauth import BearerAuth, TokenSet, refresh_under_lock, valid_tokens
from tests.support.oauth import InMemoryTokenStore


def reply(status: int, body: str = "", headers: dict | None = None, *, method: str = "GET",
          url: str = "https://api.example/v1/things?page=1") -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body.encode()
    resp.encoding = "utf-8"
    resp.headers.update(headers or {})
    resp.url = url
    resp.request = requests.Request(method, url).prepare()
    return resp


class FakeSession(requests.Session):
    """Answers each request with the next queued reply (or calls it with the request) and
    records ``(method, url, headers)``."""

    def __init__(self, *replies):
        super().__init__()
        self.replies = list(replies)
        self.sent: list[tuple[str, str, dict]] = []

    def request(self, method, url, **kw):  # noqa: D401 - requests.Session API
        self.sent.append((method, url, dict(kw.get("headers") or {})))
        nxt = self.replies.pop(0)
        return nxt(method, url, kw) if callable(nxt) else nxt


class Demo(JsonApiClient):
    """A minimal vendor: messages from ``{"errors": [...]}``, one special case (418)."""

    SYSTEM = "demo"
    LABEL = "Demo"

    def _error_lines(self, resp):
        try:
            return [str(m) for m in (parse_json(resp.text) or {}).get("errors", [])]
        except ValueError:
            return []

    def _special_error(self, resp, lines, what):
        if resp.status_code == 418:
            return ConfigurationError(f"Demo is a teapot on {what}", system=self.SYSTEM)
        return None


def demo(*replies, **kw) -> Demo:
    return Demo("https://api.example/", session=FakeSession(*replies), **kw)


# ---------------------------------------------------------------- the error table

@pytest.mark.parametrize("status, kind", [
    (401, AuthError), (403, AuthError), (409, ConflictError), (412, ConflictError),
    (408, TransientApiError), (500, TransientApiError), (503, TransientApiError),
    (404, RejectedError), (422, RejectedError),
])
def test_default_mapping(status, kind):
    c = demo(reply(status, '{"errors": ["first", "second"]}'))
    with pytest.raises(kind) as err:
        c._call("GET", "https://api.example/v1/things?page=1")
    exc = err.value
    assert type(exc) is kind and exc.status == status and exc.system == "demo"
    assert exc.detail == "first; second"
    assert exc.retryable is (kind is TransientApiError)
    if kind is RejectedError:
        assert exc.lines == ["first", "second"]


def test_vendor_override_wins_and_others_keep_the_defaults():
    c = demo(reply(418, "{}"), reply(400, '{"errors": ["bad"]}'))
    with pytest.raises(ConfigurationError, match="teapot on GET https://api.example/v1/things"):
        c._call("GET", "https://api.example/v1/things?page=1")
    with pytest.raises(RejectedError):
        c._call("GET", "https://api.example/v1/things")


def test_gusto_406_and_acumatica_special_cases_over_the_shared_table():
    store = InMemoryTokenStore(TokenSet("a", "r", time.time() + 3600))
    gusto = GustoClient("https://api.gusto-demo.com", "c", "s", store, session=FakeSession(
        reply(406, '{"name": "Invalid X-Gusto-API-Version Header", "message": "Invalid API Version"}'),
        reply(409, '{"errors": [{"error_key": "base", "message": "out-of-date version"}]}')))
    with pytest.raises(ConfigurationError, match="2025-06-15") as err:
        gusto.list_employees("co")
    assert err.value.detail == "Invalid API Version"
    with pytest.raises(ConflictError) as err:
        gusto.get_employee("e1")
    assert err.value.detail == "out-of-date version"

    site = "https://erp.example/inst"
    acu = AcumaticaClient(site, "24.200.001", client_id="g@T", client_secret="s", token_store=store,
                          session=FakeSession(
                              reply(404, "", url=f"{site}/entity/Default/24.200.001/Account"),
                              reply(404, "", url=f"{site}/entity"),
                              reply(500, "API Login Limit reached", url=f"{site}/entity/auth/login"),
                              reply(422, '{"exceptionMessage": "Bad branch"}')))
    with pytest.raises(ConfigurationError, match="24.200.001"):
        acu.account_codes()
    with pytest.raises(RejectedError, match=r"Acumatica refused GET https://erp.example/inst/entity \(404\)"):
        acu.endpoints()
    with pytest.raises(RateLimitedError, match="API Login Limit") as err:
        acu.request("GET", "Account")
    assert err.value.retry_after == 1.0 and err.value.status == 500
    with pytest.raises(RejectedError) as err:
        acu.request("PUT", "Employee", body={"x": 1})
    assert err.value.lines == ["Bad branch"]


def test_429_calls_on_rate_limited_first_and_on_response_sees_other_replies():
    events = []
    c = demo(reply(200, "[]", {"X-RateLimit-Remaining": "1"}), reply(429, "", {"Retry-After": "12"}),
             before_request=lambda: events.append("budget"),
             on_response=lambda h: events.append(("headers", h.get("X-RateLimit-Remaining"))),
             on_rate_limited=lambda s: events.append(("limited", s)))
    c._call("GET", "https://api.example/v1/a")
    with pytest.raises(RateLimitedError) as err:
        c._call("GET", "https://api.example/v1/a")
    assert err.value.retry_after == 12.0 and err.value.retryable
    assert events == ["budget", ("headers", "1"), "budget", ("limited", 12.0)]


def test_unbudgeted_requests_skip_the_budget_and_the_header_hook():
    events = []
    c = demo(reply(200, "{}"), before_request=lambda: events.append("budget"),
             on_response=lambda h: events.append("headers"))
    assert c._send("POST", "https://api.example/oauth/token", budget=False).status_code == 200
    assert events == []


def test_budget_is_drawn_before_the_slot_is_held_around_the_send():
    order = []

    class Slots:
        @contextlib.contextmanager
        def slot(self):
            order.append("slot in")
            yield
            order.append("slot out")

    def answer(method, url, kw):
        order.append("send")
        return reply(200, "{}")

    c = demo(answer, before_request=lambda: order.append("budget"), slots=Slots())
    c._call("GET", "https://api.example/v1/a")
    assert order == ["budget", "slot in", "send", "slot out"]


def test_transport_error_is_transient_naming_the_system():
    def refuse(method, url, kw):
        raise requests.ConnectionError("refused")

    with pytest.raises(TransientApiError) as err:
        demo(refuse)._call("GET", "https://api.example/v1/a")
    assert err.value.system == "demo" and err.value.retryable


def test_body_that_is_not_json_is_transient_naming_the_system():
    c = demo()
    with pytest.raises(TransientApiError, match="Demo answered 200 with a body that is not JSON") as err:
        c._json(reply(200, "<html>gateway</html>"))
    assert err.value.system == "demo" and err.value.body == "<html>gateway</html>"
    with pytest.raises(TransientApiError):
        c._json(reply(200, ""))                                  # empty is not JSON either ...

    class Lenient(Demo):
        EMPTY_BODY_OK = True

    assert Lenient("https://x")._json(reply(204, "")) is None   # ... unless the vendor says so


def test_json_is_decoded_with_exact_decimals():
    body = demo()._json(reply(200, '{"amount": 3546.72, "hours": 40.000, "count": 3, "s": "0.10", "e": 1e2}'))
    assert body == {"amount": Decimal("3546.72"), "hours": Decimal("40.000"), "count": 3, "s": "0.10",
                    "e": Decimal("1E+2")}
    assert type(body["amount"]) is Decimal and type(body["count"]) is int
    assert str(body["hours"]) == "40.000"


def test_a_401_lets_the_auth_renew_once_then_gives_up():
    class Auth:
        def __init__(self):
            self.token, self.rejected = "t1", []

        def headers(self):
            return {"Authorization": f"Bearer {self.token}"}

        def unauthorized(self, sent):
            self.rejected.append(sent["Authorization"])
            self.token = "t2"

    auth = Auth()
    c = demo(reply(401, ""), reply(200, "{}"), reply(401, ""), reply(401, ""))
    assert c._call("GET", "https://api.example/v1/a", auth=auth, headers={"Accept": "x"}).status_code == 200
    assert [h["Authorization"] for _, _, h in c.session.sent] == ["Bearer t1", "Bearer t2"]
    assert c.session.sent[1][2]["Accept"] == "x"
    with pytest.raises(AuthError):
        c._call("GET", "https://api.example/v1/a", auth=auth)
    assert auth.rejected == ["Bearer t1", "Bearer t2"] and len(c.session.sent) == 4


# ---------------------------------------------------------------- TokenSet

def test_tokenset_round_trips_and_old_stored_dicts_of_both_vendors_load():
    t = TokenSet("a", "r", 100.0, "public payroll:read", "co-1")
    assert TokenSet(**dataclasses.asdict(t)) == t
    acumatica_stored = {"access_token": "a", "refresh_token": None, "expires_at": 5.0}
    assert TokenSet(**acumatica_stored) == TokenSet("a", None, 5.0)
    gusto_stored = {"access_token": "a", "refresh_token": "r", "expires_at": 5.0, "scope": "s",
                    "company_uuid": "co"}
    assert TokenSet(**gusto_stored).company_uuid == "co"


def test_from_response_lifetime_rotation_and_missing_fields():
    t = TokenSet.from_response({"access_token": "a", "refresh_token": "r", "expires_in": 7200,
                                "created_at": 100, "scope": "x"})
    assert (t.expires_at, t.scope, t.company_uuid) == (7300.0, "x", None)
    assert TokenSet.from_response({"access_token": "a"}, default_expires_in=3600, now=10).expires_at == 3610.0
    previous = TokenSet("old", "r-old", 0.0, company_uuid="co")
    kept = TokenSet.from_response({"access_token": "new", "expires_in": 60}, previous=previous, now=0)
    assert (kept.refresh_token, kept.company_uuid) == ("r-old", "co")   # no new refresh token: keep
    rotated = TokenSet.from_response({"access_token": "new", "refresh_token": "r-new"}, previous=previous)
    assert rotated.refresh_token == "r-new"
    with pytest.raises(AuthError, match="refresh_token") as err:
        TokenSet.from_response({"access_token": "a"}, require_refresh=True, system="gusto")
    assert err.value.system == "gusto"
    with pytest.raises(AuthError, match="access_token"):
        TokenSet.from_response({"error": "x"})


# ---------------------------------------------------------------- refresh under the lock

class RecordingStore(InMemoryTokenStore):
    def __init__(self, tokens=None):
        super().__init__(tokens)
        self.locks = 0

    @contextlib.contextmanager
    def lock(self):
        with super().lock():
            self.locks += 1
            yield


def test_a_worker_that_finds_the_tokens_rotated_does_not_refresh_again():
    rotated = TokenSet("new", "r2", time.time() + 3600)
    store = RecordingStore(rotated)
    renew = pytest.fail  # must not be called

    assert refresh_under_lock(store, "old", lambda current: renew("renewed")) == rotated
    assert store.saves == 0 and store.locks == 1


def test_the_failed_or_expired_token_is_renewed_and_saved():
    store = RecordingStore(TokenSet("old", "r1", time.time() + 3600))
    seen = []

    def renew(current):
        seen.append(current.refresh_token)
        return TokenSet("new", "r2", time.time() + 3600)

    assert refresh_under_lock(store, "old", renew).access_token == "new"      # the 401 case
    assert seen == ["r1"] and store.history[-1].access_token == "new"
    store._tokens = TokenSet("new", "r2", time.time() + 30)                   # inside the margin
    assert refresh_under_lock(store, "something-else", renew).access_token == "new"
    assert seen == ["r1", "r2"] and store.saves == 2


def test_a_refused_renewal_saves_nothing():
    t = TokenSet("old", "dead", 0.0)
    store = InMemoryTokenStore(t)

    def renew(current):
        raise AuthError("invalid_grant", system="demo")

    with pytest.raises(AuthError):
        refresh_under_lock(store, "old", renew)
    assert store.saves == 0 and store.load() == t


def test_concurrent_workers_refresh_once():
    store = InMemoryTokenStore(TokenSet("old", "r1", time.time() - 1))
    calls = []

    def renew(current):
        calls.append(current.refresh_token)
        time.sleep(0.05)                      # the others queue on the lock meanwhile
        return TokenSet("new", "r2", time.time() + 3600)

    results = []
    threads = [threading.Thread(target=lambda: results.append(valid_tokens(store, renew).access_token))
               for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert results == ["new"] * 6 and calls == ["r1"] and store.saves == 1


def test_valid_tokens_takes_no_lock_while_the_token_is_fresh():
    store = RecordingStore(TokenSet("a", "r", time.time() + 3600))
    assert valid_tokens(store, lambda current: pytest.fail("renewed")).access_token == "a"
    assert store.locks == 0


def test_the_rotated_pair_is_saved_before_the_new_access_token_is_used():
    store = InMemoryTokenStore(TokenSet("old", "r1", time.time() - 1))
    stored_when_sent = []

    def answer(method, url, kw):
        stored_when_sent.append((kw["headers"]["Authorization"], store.load().access_token))
        return reply(200, "{}")

    c = demo(answer)
    auth = BearerAuth(store, lambda current: TokenSet("new", "r2", time.time() + 3600))
    c._call("GET", "https://api.example/v1/a", auth=auth)
    assert stored_when_sent == [("Bearer new", "new")]


def test_bearer_auth_after_a_401_uses_what_another_worker_stored():
    store = InMemoryTokenStore(TokenSet("stale", "r1", time.time() + 3600))
    c = demo(reply(401, ""), reply(200, "{}"))
    auth = BearerAuth(store, lambda current: pytest.fail("renewed"))
    real_load = store.load
    loads = []
    # the first load (before the request) sees the stale pair, as a worker that read it just
    # before another rotated; the reload under the lock sees the rotated one.
    store.load = lambda: (loads.append(1), TokenSet("stale", "r1", time.time() + 3600) if len(loads) == 1
                          else TokenSet("rotated", "r2", time.time() + 3600))[1]
    c._call("GET", "https://api.example/v1/a", auth=auth)
    store.load = real_load
    assert [h["Authorization"] for _, _, h in c.session.sent] == ["Bearer stale", "Bearer rotated"]
    assert store.saves == 0


def test_stored_tokens_keeps_both_call_shapes():
    from connector_tasks.store.tokens import StoredTokens

    old = StoredTokens(7, TokenSet, system="acumatica", key="oauth_tokens")
    new = StoredTokens(7, system="gusto")
    assert (old.token_type, old.key, old.system) == (TokenSet, "oauth_tokens", "acumatica")
    assert (new.token_type, new.key, new.system) == (TokenSet, "oauth", "gusto")
