"""``ml-connector ifs_cloud …``: set up an IFS Cloud connection (``connect``), map the payroll
source's departments, jobs and employees to IFS companies and cost centres and ledgers to accounts
(``map``), and check it end to end (``ping``)."""
from __future__ import annotations

import json

import click


def _url() -> str:
    from connector_tasks import runtime

    return runtime.settings().database_url


def _fail(exc) -> click.ClickException:
    return click.ClickException(getattr(exc, "message", None) or str(exc))


@click.group()
def ifs_cloud() -> None:
    """IFS Cloud connections (OData projections, IAM client credentials)."""


@ifs_cloud.command("connect")
@click.argument("name")
@click.option("--system-url", required=True, help="https://<system> (no path)")
@click.option("--namespace", required=True, help="the IAM namespace (realm) of the system")
@click.option("--client-id", required=True, help="the IAM client (client credentials)")
@click.option("--client-secret", prompt=True, hide_input=True, help="its secret (stored encrypted)")
@click.option("--default-company", required=True, help="the IFS company code for everything not mapped")
@click.option("--voucher-route", type=click.Choice(["external", "assistant"]), default="external", show_default=True)
@click.option("--voucher-type", help="voucher type (default: Z for external, M for the assistant)")
@click.option("--settlement/--no-settlement", default=True, show_default=True,
              help="also post the settlement when the payroll source debits the company")
@click.option("--bank-account", help="the bank or clearing account the settlement credits")
@click.option("--employee-sync", type=click.Choice(["customer", "project_resource"]), default="customer",
              show_default=True)
@click.option("--currency", default="USD", show_default=True)
@click.option("--tenant", help="the ml-connector tenant the connection belongs to (default: default)")
def connect(name, system_url, namespace, client_id, client_secret, default_company, voucher_route, voucher_type,
            settlement, bank_account, employee_sync, currency, tenant) -> None:
    """Create or update IFS Cloud connection NAME (the IAM client's secret is stored encrypted)."""
    from connector_tasks.connections import save_connection
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store.db import session_scope, upgrade
    from connector_tasks.tenants import tenant_id_of

    upgrade(_url())
    try:
        with session_scope(_url()) as s:
            save_connection(s, name, "ifs_cloud", tenant_id=tenant_id_of(s, tenant), account=namespace, credentials={
                "client_id": client_id, "client_secret": client_secret}, settings={
                "system_url": system_url.rstrip("/"), "namespace": namespace, "default_company": default_company,
                "voucher_route": voucher_route, "voucher_type": voucher_type, "settlement": settlement,
                "bank_account": bank_account, "employee_sync": employee_sync, "currency": currency})
    except ConnectorError as exc:
        raise _fail(exc) from exc
    click.echo(f"connection {name} (ifs_cloud, {voucher_route} vouchers, company {default_company}) saved")


@ifs_cloud.command("map")
@click.argument("connection")
@click.option("--department", help="a department of the payroll source")
@click.option("--job", help="a job title of the payroll source")
@click.option("--employee", help="an employee id or employee code of the payroll source")
@click.option("--company", help="the IFS company code its people belong to")
@click.option("--cost-centre", help="(with --department) its cost centre code part value")
@click.option("--ledger", help="a ledger name of the payroll mapping (e.g. 'Salaries Payable')")
@click.option("--account", help="(with --ledger) the IFS account")
@click.option("--by-cost-centre/--no-cost-centre", "takes_cost_centre", default=None,
              help="(with --ledger) rows on this account carry the cost centre")
@click.option("--code-part", "code_parts", multiple=True, metavar="LETTER=VALUE",
              help="(with --ledger) a fixed code part value, e.g. C=PRJ1 (repeatable)")
def map_(connection, department, job, employee, company, cost_centre, ledger, account, takes_cost_centre,
         code_parts) -> None:
    """Map a department, job or employee of CONNECTION to an IFS company (and a department to a
    cost centre), or a ledger to an IFS account."""
    from connector_tasks.connections import get_connection, settings_of, write_settings
    from connector_tasks.connectors.ifs_cloud.mapping import ACCOUNT_KIND, resolve_accounts
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope

    who = [(k, v) for k, v in (("department", department), ("job", job), ("employee", employee)) if v]
    if bool(who) == bool(ledger) or len(who) > 1:
        raise click.UsageError("give one of --department, --job, --employee, or --ledger")
    with session_scope(_url()) as s:
        conn = get_connection(s, connection, system="ifs_cloud")
        try:
            if ledger:
                if not account:
                    raise click.UsageError("--ledger needs --account")
                extra: dict = {"code_parts": dict(p.split("=", 1) for p in code_parts)}
                if takes_cost_centre is not None:
                    extra["cost_centre"] = takes_cost_centre
                resolve_accounts([ledger], {ledger: {"ledger": account, **extra}})   # refuses a bad code part
                repo.set_mapping(s, conn.id, ACCOUNT_KIND, ledger, account.upper(), extra)
                click.echo(f"{ledger} → account {account.upper()}")
                return
            kind, value = who[0]
            if not company and not cost_centre:
                raise click.UsageError("give --company and/or --cost-centre")
            if cost_centre and kind != "department":
                raise click.UsageError("--cost-centre maps departments only")
            current = settings_of(conn)
            changes = {}
            if company:
                changes[f"company_by_{kind}"] = {**getattr(current, f"company_by_{kind}"), value: company}
            if cost_centre:
                changes["cost_centre_by_department"] = {**current.cost_centre_by_department, value: cost_centre}
            write_settings(s, conn, changes)
        except ConnectorError as exc:
            raise _fail(exc) from exc
    click.echo(f"{kind} {value} → " + ", ".join(x for x in (company and f"company {company}",
                                                          cost_centre and f"cost centre {cost_centre}") if x))


@ifs_cloud.command("ping")
@click.argument("connection")
def ping(connection) -> None:
    """Get a token, and check that each mapped company exists, keeps its books in the payroll's
    currency and has today's accounting period open. Exits 1 when something is wrong."""
    from connector_tasks.connections import get_connection
    from connector_tasks.connectors.ifs_cloud import service
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store.db import session_scope

    with session_scope(_url()) as s:
        conn = get_connection(s, connection, system="ifs_cloud")
        s.expunge(conn)
    try:
        result = service.ping(conn)
    except ConnectorError as exc:
        raise _fail(exc) from exc
    click.echo(json.dumps(result, indent=2))
    if not result["ok"]:
        raise SystemExit(1)
