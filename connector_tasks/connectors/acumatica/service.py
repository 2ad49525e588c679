"""Acumatica connection plumbing shared by the tasks and the CLI: settings, credentials, the
client with its licence budgets, the GL mapping.

Connection (``system="acumatica"``): ``account`` = the tenant (company); ``settings``: an
:class:`~connector_tasks.connectors.acumatica.settings.AcumaticaSettings`; ``credentials``
(encrypted): ``username``, ``password`` and for OAuth
``client_id`` (``<guid>@<tenant>``), ``client_secret``; the OAuth tokens are kept beside them
under ``oauth_tokens``.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from connector_tasks import runtime
from connector_tasks.connections import settings_of
from connector_tasks.connectors.acumatica.adapter import AcumaticaLedgerTarget
from connector_tasks.connectors.acumatica.client import SYSTEM, AcumaticaClient, TokenSet
from connector_tasks.connectors.acumatica.limits import concurrency_slots, rate_budget
from connector_tasks.connectors.acumatica.mapping import DEPARTMENT_KIND, GL_KIND, GlAccount, resolve_accounts
from connector_tasks.connectors.acumatica.settings import AcumaticaSettings
from connector_tasks.store import repo
from connector_tasks.store.models import Connection
from connector_tasks.store.tokens import StoredTokens

def check_settings(conn) -> AcumaticaSettings:
    """The connection's typed settings; raises :class:`ConfigurationError` naming a missing or
    bad one."""
    return settings_of(conn).require(conn.name)


def client_for(conn: Connection) -> AcumaticaClient:
    """A client for ``conn`` with its licence budgets in Redis: every request first draws from
    the requests-per-minute budget (waiting up to 10 s, else RateLimitedError with
    ``retry_after``) and holds one of the concurrent-request slots; a 429's ``Retry-After``
    blocks the budget. Raises :class:`ConfigurationError` for missing settings or credentials."""
    settings = check_settings(conn)
    creds = repo.read_credentials(conn, runtime.vault())
    redis = runtime.redis_client()
    limits = settings.to_dict()
    budget = rate_budget(redis, conn.name, limits)
    timeout = (5.0, float(settings.timeout))
    slots = concurrency_slots(redis, conn.name, limits, lease=timeout[1] + 10)
    auth = settings.auth
    return AcumaticaClient(
        settings.base_url, settings.endpoint_version, auth=auth,
        client_id=creds.get("client_id"), client_secret=creds.get("client_secret"),
        username=creds.get("username"), password=creds.get("password"), tenant=conn.account,
        branch=settings.branch,
        token_store=StoredTokens(conn.id, TokenSet, system=SYSTEM, key="oauth_tokens") if auth == "oauth" else None,
        before_request=(lambda: budget.acquire(max_wait=10.0)) if budget else None,
        on_rate_limited=budget.penalize if budget else None, slots=slots, timeout=timeout)


def gl_accounts(session: Session, conn: Connection, ledgers) -> dict[str, GlAccount]:
    """``{ledger: GlAccount}`` for ``ledgers`` from ``conn``'s ``gl_account`` rows and the
    defaults. Raises MappingError naming an unmapped ledger."""
    return resolve_accounts(ledgers, repo.mapping_overrides(session, conn.id, kind=GL_KIND),
                            default_subaccount=settings_of(conn).subaccount)


def department_overrides(session: Session, conn: Connection) -> dict[str, dict]:
    """``conn``'s ``department`` mapping rows."""
    return repo.mapping_overrides(session, conn.id, kind=DEPARTMENT_KIND)


def ledger_target(conn: Connection, accounts: dict[str, GlAccount], client: AcumaticaClient) -> AcumaticaLedgerTarget:
    """The LedgerTarget port for ``conn`` over ``client``."""
    settings = check_settings(conn)
    return AcumaticaLedgerTarget(client, accounts, branch=settings.branch, ledger=settings.ledger or "ACTUAL",
                                 release=settings.release)
