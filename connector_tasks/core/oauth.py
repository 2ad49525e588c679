"""OAuth 2.0 tokens for every vendor client: one token model, one store protocol, one
single-flight refresh.

* :class:`TokenSet`: one connection's tokens, stored as its fields (``dataclasses.asdict``)
  and loaded back with ``TokenSet(**stored)``.
* :class:`TokenStore`: where they live (``load``, ``save``, ``lock``); in production
  :class:`connector_tasks.store.tokens.StoredTokens`.
* :func:`refresh_under_lock` / :func:`valid_tokens`: renew under the store's lock, so that two
  workers never spend one rotating refresh token twice (re-read after the lock; save the
  rotated pair before the new access token is used).
* :class:`BearerAuth`: ``Authorization: Bearer`` for :meth:`connector_tasks.core.client.
  JsonApiClient._call`, renewed once on a 401.
* Connecting an account (authorization-code flow): :class:`ConnectStates` keeps each
  ``state`` with the connection, the operator's token id, the operator's browser session and
  whether the operator chose to replace the connected account; :class:`HeldTokens` holds the
  tokens of a code exchange until the provider has checked the account they reach
  (:class:`AccountMismatchError` otherwise, and nothing is saved). RFC 6749 §10.12 (CSRF: bind
  ``state`` to the user-agent's authenticated state),
  https://www.rfc-editor.org/rfc/rfc6749#section-10.12 .

Sources: RFC 6749 §5.1 token response (``access_token``, ``refresh_token``, ``expires_in``
seconds, ``scope``), https://www.rfc-editor.org/rfc/rfc6749#section-5.1 ; refresh-token
rotation (a rotated refresh token is single-use), RFC 6749 §10.4 and RFC 9700 §4.14,
https://www.rfc-editor.org/rfc/rfc9700#section-4.14 . Each vendor's client cites its own
token endpoint and rotation rule.
"""
from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, ContextManager, Mapping, Protocol

from connector_tasks.core.errors import AuthError, ConfigurationError

REFRESH_MARGIN = 60.0   # seconds before expires_at at which an access token counts as expired

#: The vendor's renewal: given the stored tokens (``None`` when there are none), obtain new
#: ones (refresh grant, or another grant) or raise :class:`AuthError`. Not saved by itself.
Renew = Callable[["TokenSet | None"], "TokenSet"]


@dataclass(frozen=True)
class TokenSet:
    """One connection's OAuth tokens.

    ``access_token``; ``refresh_token`` (``None`` when the grant gave none); ``expires_at``
    epoch seconds (float); ``scope`` the space-separated scopes (``""`` when unknown);
    ``company_uuid`` the one company the token reaches, for a vendor whose tokens are scoped to
    one company (its client fills it in), else ``None``. Frozen; stored as its fields, so every
    field added later needs a default (older stored dicts must still load).
    """

    access_token: str
    refresh_token: str | None
    expires_at: float
    scope: str = ""
    company_uuid: str | None = None

    def expired(self, now: float | None = None, margin: float = REFRESH_MARGIN) -> bool:
        """True when the access token expires within ``margin`` seconds of ``now`` (epoch
        seconds, default the current time)."""
        return (time.time() if now is None else now) >= self.expires_at - margin

    @classmethod
    def from_response(cls, body: Mapping[str, Any] | None, *, system: str | None = None,
                      default_expires_in: float = 3600.0, require_refresh: bool = False,
                      previous: "TokenSet | None" = None, now: float | None = None) -> "TokenSet":
        """Build from a token endpoint's JSON reply (RFC 6749 §5.1,
        https://www.rfc-editor.org/rfc/rfc6749#section-5.1).

        ``expires_at`` = ``created_at`` (epoch seconds, when the reply has it as a number, as some
        vendors add to RFC 6749's fields) else
        ``now`` (default the current time), plus ``expires_in`` seconds (else
        ``default_expires_in``). ``previous``: the tokens being replaced; their refresh token is
        kept when the reply has none, and their ``company_uuid`` is carried over.
        Raises :class:`AuthError` (``system`` named) when ``access_token`` is missing, or
        ``refresh_token`` with ``require_refresh``.
        """
        body = body if isinstance(body, Mapping) else {}
        missing = [k for k in ("access_token", "refresh_token")
                   if not body.get(k) and (k == "access_token" or require_refresh)]
        try:
            expires_in = float(body.get("expires_in") or default_expires_in)
        except (TypeError, ValueError):
            missing.append("a numeric expires_in")
        if missing:
            raise AuthError(f"token response lacks {' and '.join(missing)}", system=system)
        created = body.get("created_at")
        start = float(created) if isinstance(created, (int, float, Decimal)) \
            else (time.time() if now is None else now)
        refresh = body.get("refresh_token") or (previous.refresh_token if previous else None)
        return cls(access_token=str(body["access_token"]), refresh_token=refresh,
                   expires_at=start + expires_in, scope=str(body.get("scope") or ""),
                   company_uuid=previous.company_uuid if previous else None)


class TokenStore(Protocol):
    """Where one connection's :class:`TokenSet` lives.

    ``lock()`` is a per-connection lock across every worker and process (a context manager);
    renewals happen inside it (a rotated refresh token is single-use: two workers refreshing at
    once would lose the grant, RFC 9700 §4.14).
    """

    def load(self) -> TokenSet | None:
        """The stored tokens, or ``None`` before the connection was authorised."""

    def save(self, tokens: TokenSet) -> None:
        """Store ``tokens`` durably (before the new access token is used)."""

    def lock(self) -> ContextManager[Any]:
        """The connection's refresh lock, as a context manager."""


def refresh_under_lock(store: TokenStore, failed_access_token: str | None, renew: Renew, *,
                       margin: float = REFRESH_MARGIN) -> TokenSet:
    """Renew the tokens of ``store`` once across every worker, and return the ones to use.

    Under ``store.lock()``: re-load; when another worker already rotated (the stored access
    token differs from ``failed_access_token`` — the one that expired or drew a 401 — and is
    not within ``margin`` seconds of expiry) return the stored tokens without a token call;
    else call ``renew(stored tokens or None)`` and save its result *before* returning it, so
    the rotated refresh token is durable before the new access token is used (its first use
    revokes the old refresh token with vendors that rotate them, RFC 9700 §4.14).
    Raises what ``renew`` and the store raise (:class:`AuthError` for a refused grant; nothing
    is saved then).
    """
    with store.lock():
        current = store.load()
        if current is not None and current.access_token != failed_access_token \
                and not current.expired(margin=margin):
            return current
        tokens = renew(current)
        store.save(tokens)
        return tokens


def valid_tokens(store: TokenStore, renew: Renew, *, margin: float = REFRESH_MARGIN) -> TokenSet:
    """The stored tokens when they are more than ``margin`` seconds from expiry, else (or when
    there are none) the result of :func:`refresh_under_lock`."""
    tokens = store.load()
    if tokens is None or tokens.expired(margin=margin):
        tokens = refresh_under_lock(store, tokens.access_token if tokens else None, renew, margin=margin)
    return tokens


class BearerAuth:
    """``Authorization: Bearer <access token>`` from ``store``, renewed with ``renew`` (see
    :func:`refresh_under_lock`) before expiry and once after a 401 (RFC 6750 §3.1
    ``invalid_token``, https://www.rfc-editor.org/rfc/rfc6750#section-3.1).

    The ``auth`` of :meth:`connector_tasks.core.client.JsonApiClient._call`.
    """

    def __init__(self, store: TokenStore, renew: Renew, *, margin: float = REFRESH_MARGIN):
        self.store = store
        self.renew = renew
        self.margin = margin

    def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` with a token valid for ``margin`` seconds."""
        tokens = valid_tokens(self.store, self.renew, margin=self.margin)
        return {"Authorization": f"Bearer {tokens.access_token}"}

    def unauthorized(self, sent: Mapping[str, str]) -> None:
        """The headers ``sent`` drew a 401: renew unless another worker already did."""
        failed = sent.get("Authorization", "").removeprefix("Bearer ")
        refresh_under_lock(self.store, failed, self.renew, margin=self.margin)


class AccountMismatchError(ConfigurationError):
    """An OAuth callback reached an account other than the one the connection is connected to,
    and the operator did not choose to replace it; nothing was saved."""


@dataclass(frozen=True)
class PendingConnect:
    """One started authorization: ``connection`` (its name), ``token_id`` (the operator's API
    token; 0 for the legacy ``API_TOKEN``), ``session`` (the nonce of the operator's browser
    session the callback must come back in), ``replace`` (the operator chose to replace the
    connected account)."""

    connection: str
    token_id: int
    session: str
    replace: bool = False


class ConnectStates:
    """``state`` values of started authorizations in Redis (``oauth-state:<state>``, a JSON
    :class:`PendingConnect`), valid ``ttl`` seconds and single use (``GETDEL``)."""

    def __init__(self, redis, ttl: int = 600):
        self.redis = redis
        self.ttl = ttl

    def issue(self, pending: PendingConnect) -> str:
        """A new random ``state`` (32 bytes, URL-safe) kept with ``pending``."""
        state = secrets.token_urlsafe(32)
        self.redis.set(f"oauth-state:{state}", json.dumps(pending.__dict__), ex=self.ttl)
        return state

    def take(self, state: str) -> PendingConnect | None:
        """The :class:`PendingConnect` of ``state``, removed (single use); ``None`` when it is
        unknown, expired, already used or malformed."""
        if not state or len(state) > 128:
            return None
        raw = self.redis.getdel(f"oauth-state:{state}")
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return PendingConnect(connection=str(data["connection"]), token_id=int(data["token_id"]),
                                  session=str(data["session"]), replace=bool(data.get("replace")))
        except (ValueError, KeyError, TypeError):
            return None


class HeldTokens:
    """A :class:`TokenStore` in memory for one code exchange: the tokens stay here until the
    provider has checked the account they reach, then are saved to the connection's store."""

    def __init__(self):
        self.tokens: TokenSet | None = None
        self._lock = threading.Lock()

    def load(self) -> TokenSet | None:
        """The held tokens, or ``None``."""
        return self.tokens

    def save(self, tokens: TokenSet) -> None:
        """Hold ``tokens``."""
        self.tokens = tokens

    @contextlib.contextmanager
    def lock(self):
        """A process-local lock (one exchange, one thread)."""
        with self._lock:
            yield
