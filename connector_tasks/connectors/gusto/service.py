"""Gusto connector operations used by the web app, the tasks and the CLI.

* :func:`receive_webhook`: verify, handshake, store, commit, enqueue (delivery guarantee 1).
* :func:`oauth_start` / :func:`oauth_callback`: connect a company (authorization-code flow).
* :func:`register_webhook`: create the subscription and complete the verification handshake.
* :func:`prepare_payroll_journal`: the payroll job's Gusto side (routing and the other flows
  are in :mod:`.sync`);
  it ends by handing the journal to the target's queue.

Sources: external-apis.md §1.1 (OAuth), §1.5 (webhooks), §1.6 (payroll JSON).
"""
from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select

from connector_tasks import runtime, targets
from connector_tasks.connectors.gusto.adapter import GustoPayrollSource
from connector_tasks.connectors.gusto.budget import GUSTO_BUDGET
from connector_tasks.connectors.gusto.client import GustoClient, TokenSet
from connector_tasks.connectors.gusto.webhooks import (
    SIGNATURE_HEADER, SYSTEM, handshake_token, parse_body, parse_event,
)
from connector_tasks.core.errors import AuthError, ConfigurationError, MappingError
from connector_tasks.core.retry import call_with_retries
from connector_tasks.core.rate_limit import RateBudget
from connector_tasks.core.signatures import verify_hex_signature
from connector_tasks.jobs import dispatch_to_target
from connector_tasks.flows.payroll_to_journal import build_journal, earning_types_of
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, SyncJob
from connector_tasks.store.tokens import StoredTokens

log = logging.getLogger(__name__)

SUBSCRIPTION_TYPES = ["Company", "Employee", "Payroll"]


@dataclass(frozen=True)
class WebhookReply:
    """What the web layer answers: HTTP ``status`` and a JSON ``body``; ``event_id`` to enqueue."""

    status: int
    body: dict
    event_id: int | None = None


def gusto_client(conn: Connection) -> GustoClient:
    """A client for connection ``conn`` (its base URL override, the app's OAuth client).

    Every ``/v1`` call first draws from the global Gusto budget of this connection's OAuth
    grant in Redis (§1.3: 200 per rolling 60 s per grant; 196 kept after the margin), waiting
    up to 5 s for a slot, else raising RateLimitedError with ``retry_after`` so the task
    re-queues itself; a 429's ``Retry-After`` blocks the grant's budget for that long.
    """
    s = runtime.settings()
    base = (conn.settings or {}).get("base_url") or s.gusto_base_url
    # One connection = one OAuth authorization = one grant (its name is stable; the company
    # uuid is unknown until the grant exists).
    budget = RateBudget(runtime.redis_client(), GUSTO_BUDGET, account=conn.name or conn.account)
    return GustoClient(base, s.gusto_client_id, s.gusto_client_secret, StoredTokens(conn.id, TokenSet, system=SYSTEM),
                       api_version=s.gusto_api_version,
                       before_request=lambda: budget.acquire(max_wait=5.0),
                       on_rate_limited=budget.penalize,
                       on_response=budget.observe_headers)


def _gusto_connection(session, name: str) -> Connection | None:
    return session.scalar(select(Connection).where(Connection.name == name, Connection.system == SYSTEM))


@dataclass(frozen=True)
class _Endpoint:
    """What the webhook hot path needs of a connection, cached per process for ENDPOINT_TTL s."""

    id: int
    account: str | None
    token: str | None
    verified: bool
    fetched_at: float


ENDPOINT_TTL = 2.0
_endpoints: dict[str, _Endpoint] = {}


def _endpoint(name: str) -> _Endpoint | None:
    """The connection's webhook facts (one store read and decrypt per ``ENDPOINT_TTL`` seconds:
    a re-verified token is seen by every web process within that time)."""
    cached = _endpoints.get(name)
    if cached is not None and time.monotonic() - cached.fetched_at < ENDPOINT_TTL:
        return cached
    with session_scope(runtime.settings().database_url) as s:
        conn = _gusto_connection(s, name)
        if conn is None:
            _endpoints.pop(name, None)
            return None
        creds = repo.read_credentials(conn, runtime.vault())
        endpoint = _Endpoint(conn.id, conn.account, creds.get("webhook_verification_token"),
                             (conn.settings or {}).get("webhook_status") == "verified", time.monotonic())
    _endpoints[name] = endpoint
    return endpoint


def receive_webhook(connection_name: str, body: bytes, headers) -> WebhookReply:
    """Handle one POST to ``/webhooks/gusto/<connection_name>``; the raw ``body`` is checked
    before it is parsed. Answers 404 (unknown connection), 401 (bad or missing signature),
    400 (malformed), 200 (stored, duplicate, handshake or ignored). The event row is
    committed before this returns; ``event_id`` is set when the caller should enqueue it."""
    endpoint = _endpoint(connection_name)
    if endpoint is None:
        return WebhookReply(404, {"error": f"no Gusto connection named {connection_name!r}"})
    signature = headers.get(SIGNATURE_HEADER)
    if endpoint.token and signature and verify_hex_signature(endpoint.token, body, signature):
        try:
            data = parse_body(body)
            if handshake_token(data):
                return WebhookReply(200, {"status": "handshake already stored"})
            event = parse_event(data)
        except MappingError as exc:
            return WebhookReply(400, {"error": exc.message})
        foreign = endpoint.account and event.company_uuid and event.company_uuid != endpoint.account
        status = "ignored" if (foreign or not event.flow) else "received"
        event_id, created = repo.ingest_event(
            runtime.settings().database_url, system=SYSTEM, connection_id=endpoint.id, payload=data,
            event_uuid=event.uuid, event_type=event.event_type, entity_type=event.entity_type,
            entity_id=event.entity_uuid, status=status, payload_json=body.decode())
        return WebhookReply(200, {"status": "accepted" if created else "duplicate", "event": event.uuid},
                            event_id=event_id if created and status == "received" else None)
    if endpoint.verified:
        return WebhookReply(401, {"error": "signature missing or invalid"})
    return _receive_handshake(connection_name, body, signature)


def _receive_handshake(connection_name: str, body: bytes, signature: str | None) -> WebhookReply:
    """Before verification Gusto POSTs the verification token itself: store it (encrypted)."""
    try:
        data = parse_body(body)
    except MappingError:
        return WebhookReply(401, {"error": "signature missing or invalid"})
    new_token = handshake_token(data)
    if new_token is None or (signature and not verify_hex_signature(new_token, body, signature)):
        return WebhookReply(401, {"error": "signature missing or invalid"})
    vault = runtime.vault()
    with session_scope(runtime.settings().database_url) as s:
        conn = _gusto_connection(s, connection_name)
        if conn is None or (conn.settings or {}).get("webhook_status") == "verified":
            return WebhookReply(401, {"error": "signature missing or invalid"})
        creds = repo.read_credentials(conn, vault)
        creds["webhook_verification_token"] = new_token
        repo.write_credentials(conn, vault, creds)
        repo.merge_settings(s, conn.id, {"webhook_status": "token_received"})
    _endpoints.pop(connection_name, None)
    return WebhookReply(200, {"status": "verification token received"})


def oauth_start(connection_name: str, redirect_uri: str) -> str:
    """The Gusto authorize URL for ``connection_name``; its ``state`` is kept 10 min in Redis."""
    with session_scope(runtime.settings().database_url) as s:
        conn = _gusto_connection(s, connection_name)
        if conn is None:
            raise ConfigurationError(f"no Gusto connection named {connection_name!r}")
        client = gusto_client(conn)
    state = secrets.token_urlsafe(24)
    runtime.redis_client().set(f"oauth-state:{state}", connection_name, ex=600)
    return client.authorization_url(redirect_uri, state)


def oauth_callback(code: str, state: str, redirect_uri: str) -> Connection:
    """Exchange ``code`` for tokens (saved encrypted) and learn the company, then queue the
    reference data (earning types and pay schedules → the target's ledgers); returns the
    connection. Raises AuthError for an unknown or expired ``state``."""
    name = runtime.redis_client().getdel(f"oauth-state:{state}")
    if not name:
        raise AuthError("OAuth state is unknown or expired; start the connection again", system=SYSTEM)
    name = name.decode()
    with session_scope(runtime.settings().database_url) as s:
        conn = _gusto_connection(s, name)
        client = gusto_client(conn)
    tokens = client.exchange_code(code, redirect_uri)
    company = tokens.company_uuid
    if not company:
        raise AuthError("the token reaches no company (token_info named none)", system=SYSTEM)
    with session_scope(runtime.settings().database_url) as s:
        conn = s.get(Connection, conn.id)
        conn.account = company
        conn.status = "connected"
        has_target = bool((conn.settings or {}).get("target"))
    if has_target:  # reference data on connect: earning types → ledgers in the target
        from connector_tasks.celery_app import app

        app.send_task("gusto.sync_reference_data", args=[name])
    return conn


def register_webhook(connection_name: str, *, wait: float = 30.0) -> dict:
    """Create the webhook subscription for ``connection_name`` and complete Gusto's handshake:
    wait (up to ``wait`` s) for the verification token to reach our webhook URL, then verify.

    Returns the verified subscription. Raises ConfigurationError when the token never arrives
    (the URL is not reachable from Gusto).
    """
    settings = runtime.settings()
    with session_scope(settings.database_url) as s:
        conn = _gusto_connection(s, connection_name)
        if conn is None:
            raise ConfigurationError(f"no Gusto connection named {connection_name!r}")
        client = gusto_client(conn)
        conn_id = conn.id
    url = f"{settings.public_base_url}/webhooks/gusto/{connection_name}"
    sub = client.create_webhook_subscription(url, SUBSCRIPTION_TYPES)
    with session_scope(settings.database_url) as s:
        repo.merge_settings(s, conn_id, {"webhook_subscription": sub["uuid"], "webhook_url": url})
    deadline = time.monotonic() + wait
    token = None
    while token is None:
        with session_scope(settings.database_url) as s:
            token = repo.read_credentials(s.get(Connection, conn_id), runtime.vault()).get(
                "webhook_verification_token")
        if token is None:
            if time.monotonic() > deadline:
                raise ConfigurationError(f"Gusto's verification token never reached {url}: is "
                                         "PUBLIC_BASE_URL reachable from Gusto?")
            time.sleep(0.1)
    verified = client.verify_webhook_subscription(sub["uuid"], token)
    with session_scope(settings.database_url) as s:
        repo.merge_settings(s, conn_id, {"webhook_status": verified.get("status", "verified")})
    return verified


def prepare_payroll_journal(job_id: int) -> dict:
    """Read the payroll and employees from Gusto, build the journal, save it on the job and
    hand it to the target connection's queue (after the commit). Returns the payload sent.

    Raises the error tree: MappingError (totals do not reconcile, unknown component),
    ConfigurationError (no target connection), Gusto's API errors.
    """
    from connector_tasks.celery_app import app

    url = runtime.settings().database_url
    with session_scope(url) as s:
        job = s.get(SyncJob, job_id)
        conn = s.get(Connection, job.connection_id)
        target_name = (conn.settings or {}).get("target")
        if not target_name:
            raise ConfigurationError(f"connection {conn.name!r} names no target connection")
        target = repo.get_connection(s, target_name)
        from connector_tasks.connectors.gusto.sync import payroll_mapping

        mapping = payroll_mapping(s, conn)
        company_uuid, source_id = conn.account, job.source_id
        client = gusto_client(conn)
    if not company_uuid:
        raise ConfigurationError(f"connection {conn.name!r} is not connected to a Gusto company")
    source = GustoPayrollSource(client, company_uuid)
    # Short in-call retries for transient errors (429 honouring Retry-After, 5xx, timeouts);
    # longer waits are the task's Celery retries.
    run = call_with_retries(lambda: source.get_payroll(source_id))
    employees = call_with_retries(source.list_employees)
    entry = build_journal(run, mapping, employees, source=SYSTEM, source_label="Gusto")
    used = {line.ledger for line in entry.lines}
    with session_scope(url) as s:
        payload = targets.journal_payload(s, s.get(Connection, target.id), entry,
                                          mapping.ledger_masters(used, earning_types_of(run)),
                                          source_system=SYSTEM, source_type="payroll")
    with session_scope(url) as s:
        job = s.get(SyncJob, job_id)
        job.payload = payload
        job.warnings = list(entry.warnings)
        repo.mark_posting(job, runtime.settings().posting_lease)
    dispatch_to_target(app, job_id, payload)
    return payload
