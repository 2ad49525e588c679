"""Gusto connection plumbing: the client of a connection (with the global budget of its grant),
the OAuth provider (connect a company with the authorization-code flow), and the webhook
subscription with its verification-token handshake.

Sources: OAuth, https://docs.gusto.com/app-integrations/docs/oauth2 ; webhook subscriptions
and the verification token, https://docs.gusto.com/embedded-payroll/docs/webhooks ; rate
limits (200 requests per rolling 60 s per grant), https://docs.gusto.com/app-integrations/docs/rate-limits .
"""
from __future__ import annotations

import logging
import time

from connector_tasks import runtime
from connector_tasks.connections import endpoint, find_connection, get_connection, target_names
from connector_tasks.connectors.gusto.budget import GUSTO_BUDGET
from connector_tasks.connectors.gusto.client import GustoClient, TokenSet
from connector_tasks.core.errors import AuthError, ConfigurationError
from connector_tasks.core.rate_limit import RateBudget
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection
from connector_tasks.store.tokens import StoredTokens

log = logging.getLogger(__name__)

SYSTEM = "gusto"
SUBSCRIPTION_TYPES = ["Company", "Employee", "Payroll"]


def gusto_client(conn) -> GustoClient:
    """A client for Gusto connection ``conn`` (a row or an Endpoint): its base URL override,
    the application's OAuth client (``GUSTO_CLIENT_ID``/``SECRET``), its stored tokens.

    Every ``/v1`` call first draws from the global Gusto budget of this connection's OAuth
    grant in Redis (200 per rolling 60 s per grant; 196 kept after the margin), waiting up to
    5 s for a slot, else raising RateLimitedError with ``retry_after`` so the task re-queues
    itself; a 429's ``Retry-After`` blocks the grant's budget for that long.
    """
    app = runtime.app_settings(SYSTEM)
    settings = endpoint(conn).settings if isinstance(conn, Connection) else conn.settings
    base = settings.base_url or app.base_url
    # One connection = one OAuth authorization = one grant (its name is stable; the company
    # uuid is unknown until the grant exists).
    budget = RateBudget(runtime.redis_client(), GUSTO_BUDGET, account=conn.name or conn.account)
    return GustoClient(base, app.client_id, app.client_secret, StoredTokens(conn.id, TokenSet, system=SYSTEM),
                       api_version=app.api_version,
                       before_request=lambda: budget.acquire(max_wait=5.0),
                       on_rate_limited=budget.penalize,
                       on_response=budget.observe_headers)


class GustoOAuth:
    """The OAuth provider of Gusto connections (``/oauth/gusto/start`` and ``/callback``; the
    web app authenticates the operator, checks the connection is in their tenant and binds
    ``state`` to their session before calling these)."""

    system = SYSTEM

    def authorization_url(self, connection_name: str, redirect_uri: str, state: str) -> str:
        """The Gusto authorize URL for ``connection_name`` carrying ``state``. Raises
        ConfigurationError for an unknown or non-Gusto connection."""
        with session_scope(runtime.settings().database_url) as s:
            conn = find_connection(s, connection_name, system=SYSTEM)
            if conn is None:
                raise ConfigurationError(f"no Gusto connection named {connection_name!r}")
            client = gusto_client(conn)
        return client.authorization_url(redirect_uri, state)

    def complete(self, connection_name: str, code: str, redirect_uri: str, *, replace: bool = False) -> Connection:
        """Exchange ``code`` for tokens and learn the company they reach; when the connection
        is already connected to another company and ``replace`` is false, raise
        :class:`~connector_tasks.core.oauth.AccountMismatchError` and save nothing (the old
        grant keeps working). Otherwise save the tokens encrypted, record the company, and
        queue the reference data (earning types and pay schedules → the targets' ledgers);
        returns the connection. Raises AuthError when Gusto refuses the code or the token
        reaches no company."""
        from connector_tasks.core.oauth import AccountMismatchError, HeldTokens

        with session_scope(runtime.settings().database_url) as s:
            conn = get_connection(s, connection_name, system=SYSTEM)
            client = gusto_client(conn)
            conn_id, connected = conn.id, conn.account if conn.status == "connected" else None
        held = HeldTokens()
        client.token_store = held
        tokens = client.exchange_code(code, redirect_uri)
        company = tokens.company_uuid
        if not company:
            raise AuthError("the token reaches no company (token_info named none)", system=SYSTEM)
        if connected and connected != company and not replace:
            raise AccountMismatchError(
                f"connection {connection_name!r} is connected to Gusto company {connected}; this approval "
                f"reached company {company}. Nothing was changed; start again with replace=1 to re-point it",
                system=SYSTEM)
        store = StoredTokens(conn_id, TokenSet, system=SYSTEM)
        with store.lock():
            store.save(tokens)
        with session_scope(runtime.settings().database_url) as s:
            conn = s.get(Connection, conn_id)
            conn.account = company
            conn.status = "connected"
            has_target = bool(target_names(conn))
        if has_target:  # reference data on connect: earning types → ledgers in the targets
            from connector_tasks.celery_app import app

            app.send_task("gusto.sync_reference_data", args=[connection_name])
        return conn


OAUTH = GustoOAuth()


def register_webhook(connection_name: str, *, wait: float = 30.0) -> dict:
    """Create the webhook subscription for ``connection_name`` and complete Gusto's handshake:
    open the connection's one-time handshake window
    (:func:`connector_tasks.connectors.gusto.webhooks.await_handshake`), create the
    subscription, wait (up to ``wait`` s) for the verification token to reach our webhook URL,
    then verify.

    Returns the verified subscription. Raises ConfigurationError when the token never arrives
    (the URL is not reachable from Gusto).
    """
    settings = runtime.settings()
    with session_scope(settings.database_url) as s:
        conn = get_connection(s, connection_name, system=SYSTEM)
        client = gusto_client(conn)
        conn_id = conn.id
    url = f"{settings.public_base_url}/webhooks/{SYSTEM}/{connection_name}"
    from connector_tasks.connectors.gusto.webhooks import MISSING, RECEIVED, await_handshake

    with session_scope(settings.database_url) as s:  # the one handshake we will accept
        await_handshake(s, conn_id)
    sub = client.create_webhook_subscription(url, SUBSCRIPTION_TYPES)
    with session_scope(settings.database_url) as s:
        repo.put_state(s, conn_id, {"webhook_subscription": sub["uuid"], "webhook_url": url})
    deadline = time.monotonic() + wait
    token = None
    while token is None:
        with session_scope(settings.database_url) as s:
            if repo.get_state(s, conn_id, "webhook_status") == RECEIVED:
                token = repo.read_credentials(s.get(Connection, conn_id), runtime.vault()).get(
                    "webhook_verification_token")
        if token is None:
            if time.monotonic() > deadline:
                with session_scope(settings.database_url) as s:
                    repo.put_state(s, conn_id, {"webhook_status": MISSING})
                raise ConfigurationError(f"Gusto's verification token never reached {url}: is "
                                         "PUBLIC_BASE_URL reachable from Gusto?")
            time.sleep(0.1)
    verified = client.verify_webhook_subscription(sub["uuid"], token)
    with session_scope(settings.database_url) as s:
        repo.put_state(s, conn_id, {"webhook_status": verified.get("status", "verified")})
    return verified
