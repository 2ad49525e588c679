"""IFS Cloud connection plumbing shared by the target side, the tasks and the CLI: typed
settings, the client with its tokens and budget, the company rules and the mappings.

Connection (``system="ifs_cloud"``): ``account`` = the IAM namespace; ``settings``: an
:class:`~connector_tasks.connectors.ifs_cloud.settings.IfsSettings`; ``credentials``
(encrypted): ``client_id`` and ``client_secret`` of the IAM client (docs.ifs.com 26r1
"Authenticate external integration",
https://docs.ifs.com/techdocs/26r1/030_administration/010_security/040_iam_settings/035_iam_clients/020_authenticate_external_integration/),
and the current access token beside them under ``iam_tokens``, shared by every worker and
renewed under the connection's lock.
"""
from __future__ import annotations

from typing import Mapping

from sqlalchemy.orm import Session

from connector_tasks import runtime
from connector_tasks.connections import settings_of
from connector_tasks.connectors.ifs_cloud.adapter import IfsLedgerTarget
from connector_tasks.connectors.ifs_cloud.client import SYSTEM, IfsClient
from connector_tasks.connectors.ifs_cloud.companies import CompanyRules
from connector_tasks.connectors.ifs_cloud.mapping import (
    ACCOUNT_KIND, COST_CENTRE_KIND, CostCentres, IfsAccount, resolve_accounts, resolve_cost_centres,
)
from connector_tasks.connectors.ifs_cloud.settings import IfsSettings
from connector_tasks.connectors.ifs_cloud.vouchers import voucher_route
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.core.oauth import TokenSet
from connector_tasks.core.rate_limit import RateBudget, budget_from_settings
from connector_tasks.flows.mapping.payroll import SETTLEMENT_COMPONENT
from connector_tasks.store import repo
from connector_tasks.store.models import Connection
from connector_tasks.store.tokens import StoredTokens

#: where the IAM tokens live in the connection's credentials
TOKENS_KEY = "iam_tokens"


def check_settings(conn) -> IfsSettings:
    """The connection's typed settings, once complete; raises :class:`ConfigurationError`
    naming a missing or bad one."""
    return settings_of(conn).require(conn.name)


def client_for(conn: Connection) -> IfsClient:
    """An :class:`IfsClient` for ``conn``: its IAM client from the encrypted credentials, its
    tokens in :class:`~connector_tasks.store.tokens.StoredTokens` (renewed ahead of expiry by
    ``token_margin`` seconds, one renewal at a time under ``lock:ifs_cloud-oauth:<id>``), its
    request budget in Redis (``rate_limit``: every request waits up to 10 s for a slot, else
    RateLimitedError with ``retry_after``; a 429's ``Retry-After`` blocks it), its projection
    names and timeout. Raises :class:`ConfigurationError` for missing settings or credentials."""
    settings = check_settings(conn)
    creds = repo.read_credentials(conn, runtime.vault())
    if not creds.get("client_id") or not creds.get("client_secret"):
        raise ConfigurationError(f"IFS Cloud connection {conn.name!r} has no IAM client id/secret "
                                 "(ml-connector ifs_cloud connect)", system=SYSTEM)
    budget = None
    if settings.rate_limit:
        budget = RateBudget(runtime.redis_client(), budget_from_settings(SYSTEM, settings.rate_limit),
                            account=conn.name)
    return IfsClient(settings.system_url, client_id=creds["client_id"], client_secret=creds["client_secret"],
                     namespace=settings.namespace, token_margin=settings.token_margin,
                     token_store=StoredTokens(conn.id, TokenSet, system=SYSTEM, key=TOKENS_KEY),
                     projections=settings.projection_names(), timeout=(5.0, float(settings.timeout)),
                     before_request=(lambda: budget.acquire(max_wait=10.0)) if budget else None,
                     on_rate_limited=budget.penalize if budget else None)


def company_rules(conn) -> CompanyRules:
    """The connection's :class:`~.companies.CompanyRules` (settings ``default_company`` and
    ``company_by_*``)."""
    s = check_settings(conn)
    return CompanyRules(str(s.default_company), dict(s.company_by_employee), dict(s.company_by_job),
                        dict(s.company_by_department))


def account_overrides(session: Session, conn: Connection) -> dict[str, dict]:
    """``conn``'s ``ifs_account`` rows, with the ``bank_account`` setting as the settlement's
    bank ledger (unless a row maps that ledger)."""
    rows = repo.mapping_overrides(session, conn.id, kind=ACCOUNT_KIND)
    bank = settings_of(conn).bank_account
    if bank and SETTLEMENT_COMPONENT.ledger not in rows:
        rows[SETTLEMENT_COMPONENT.ledger] = {"ledger": bank, "cost_centre": False}
    return rows


def accounts_for(session: Session, conn: Connection, ledgers) -> dict[str, IfsAccount]:
    """``{ledger: IfsAccount}`` for ``ledgers`` (defaults and ``conn``'s rows). Raises
    MappingError naming an unmapped ledger."""
    return resolve_accounts(ledgers, account_overrides(session, conn))


def cost_centres(session: Session, conn: Connection) -> CostCentres:
    """``conn``'s cost centre → code part mapping: ``ifs_cost_centre`` rows, the
    ``cost_centre_by_department`` setting, ``default_cost_centre`` and the code part letter."""
    s = settings_of(conn)
    return resolve_cost_centres(repo.mapping_overrides(session, conn.id, kind=COST_CENTRE_KIND),
                                default=s.default_cost_centre, code_part=s.cost_centre_code_part,
                                by_department=s.cost_centre_by_department)


def ledger_target(conn, client: IfsClient, company: str, accounts: Mapping[str, IfsAccount],
                  centres: CostCentres) -> IfsLedgerTarget:
    """The LedgerTarget port on ``company`` of ``conn`` over ``client``, with the connection's
    voucher route and type."""
    s = check_settings(conn)
    return IfsLedgerTarget(voucher_route(client, s.voucher_route), company, accounts, centres,
                           voucher_type=s.voucher_type)


def ping(conn: Connection, *, today=None) -> dict:
    """Check connection ``conn`` end to end: an IAM token is granted; each company it maps to
    exists (``CompanySet(Company)``), keeps its books in the connection's currency, and its
    ledger-``00`` accounting period covering ``today`` (default: today) is ``Open``
    (:meth:`~.vouchers.VoucherRoute.accounting_period`).

    Returns ``{"ok": bool, "token": "granted", "expires_in": seconds, "companies": {company:
    {"name", "currency", "period", "status", "problems": [...]}}}``. Raises AuthError (the
    grant was refused, with IAM's text), ConfigurationError (no such namespace, missing
    settings) and the client's other errors.
    """
    import datetime as dt
    import time

    settings = check_settings(conn)
    today = today or dt.date.today()
    client = client_for(conn)
    try:
        tokens = client.token()
        route = voucher_route(client, settings.voucher_route)
        p = client.projections
        companies: dict[str, dict] = {}
        for code in settings.companies():
            rec = client.get_entity(p.company, p.company_set, {"Company": code}, missing_ok=True)
            problems: list[str] = []
            info = {"name": None, "currency": None, "period": None, "status": None, "problems": problems}
            companies[code] = info
            if rec is None:
                problems.append(f"IFS has no company {code}")
                continue
            info.update(name=rec.get("Name"), currency=rec.get("CurrencyCode"))
            if rec.get("CurrencyCode") and rec["CurrencyCode"] != settings.currency:
                problems.append(f"company {code} keeps its books in {rec['CurrencyCode']}, payroll is in "
                                f"{settings.currency}")
            period = route.accounting_period(code, today)
            if period is None:
                problems.append(f"no accounting period of company {code} covers {today.isoformat()}")
                continue
            info.update(period=f"{int(period['AccountingYear'])}-{int(period['AccountingPeriod']):02d}",
                        status=period.get("PeriodStatus"))
            if period.get("PeriodStatus") != "Open":
                problems.append(f"accounting period {info['period']} of company {code} is {period.get('PeriodStatus')}")
    finally:
        client.session.close()
    return {"ok": not any(c["problems"] for c in companies.values()), "token": "granted",
            "expires_in": round(tokens.expires_at - time.time()), "companies": companies}
