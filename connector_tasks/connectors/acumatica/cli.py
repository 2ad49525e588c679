"""``ml-connector acumatica …``: set up an Acumatica connection, map ledgers to GL accounts,
check the GL alignment against the live chart of accounts."""
from __future__ import annotations

import json

import click


def _url() -> str:
    from connector_tasks import runtime

    return runtime.settings().database_url


@click.group()
def acumatica() -> None:
    """Acumatica connections (contract-based REST API)."""


@acumatica.command("connect")
@click.argument("name")
@click.option("--base-url", required=True, help="the site: https://<host>/<instance>")
@click.option("--endpoint-version", default="24.200.001", show_default=True)
@click.option("--tenant", required=True, help="the tenant (company) name")
@click.option("--branch", required=True, help="BranchID of the GL batches")
@click.option("--ledger", default="ACTUAL", show_default=True, help="LedgerID of the GL batches")
@click.option("--auth", type=click.Choice(["oauth", "cookie"]), default="oauth", show_default=True)
@click.option("--client-id", help="OAuth client id, <guid>@<tenant>")
@click.option("--client-secret", help="OAuth client secret")
@click.option("--username", required=True)
@click.option("--password", prompt=True, hide_input=True)
@click.option("--release/--no-release", default=False, show_default=True, help="release each posted batch")
@click.option("--subaccount", default="000-000", show_default=True, help="default subaccount")
@click.option("--requests-per-minute", type=int, help="licence limit: API requests per minute")
@click.option("--concurrent-requests", type=int, help="licence limit: concurrent API requests")
@click.option("--workspace", help="the ml-connector tenant the connection belongs to (default: default); "
                                  "--tenant is Acumatica's own tenant")
def connect(name, base_url, endpoint_version, tenant, branch, ledger, auth, client_id, client_secret,
            username, password, release, subaccount, requests_per_minute, concurrent_requests, workspace) -> None:
    """Create or update Acumatica connection NAME (credentials stored encrypted)."""
    from connector_tasks.connections import save_connection
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store.db import session_scope, upgrade
    from connector_tasks.tenants import tenant_id_of

    if auth == "oauth" and not (client_id and client_secret):
        raise click.UsageError("--auth oauth needs --client-id and --client-secret")
    creds = {"username": username, "password": password}
    if auth == "oauth":
        creds.update(client_id=client_id, client_secret=client_secret)
    upgrade(_url())
    try:
        with session_scope(_url()) as s:
            save_connection(s, name, "acumatica", tenant_id=tenant_id_of(s, workspace), account=tenant, credentials=creds, settings={
                "base_url": base_url.rstrip("/"), "endpoint_version": endpoint_version, "branch": branch,
                "ledger": ledger, "auth": auth, "release": release, "subaccount": subaccount,
                "requests_per_minute": requests_per_minute, "concurrent_requests": concurrent_requests})
    except ConnectorError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"connection {name} (acumatica, {auth}) saved")


@acumatica.command("map")
@click.argument("connection")
@click.argument("ledger")
@click.argument("account")
@click.option("--subaccount", help="subaccount (default: the connection's)")
def map_ledger(connection, ledger, account, subaccount) -> None:
    """Book LEDGER to GL ACCOUNT on Acumatica CONNECTION."""
    from connector_tasks.connectors.acumatica.mapping import GL_KIND
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope

    from connector_tasks.connections import get_connection

    with session_scope(_url()) as s:
        conn = get_connection(s, connection)
        repo.set_mapping(s, conn.id, GL_KIND, ledger, account, {"subaccount": subaccount} if subaccount else {})
    click.echo(f"{ledger} → {account}{' / ' + subaccount if subaccount else ''}")


@acumatica.command("check")
@click.argument("connection")
def check(connection) -> None:
    """Log in, list the endpoint versions, and check every mapped account exists."""
    from connector_tasks.connectors.acumatica import service
    from connector_tasks.connectors.acumatica.mapping import DEFAULT_GL_ACCOUNTS, GL_KIND
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope

    from connector_tasks.connections import get_connection

    with session_scope(_url()) as s:
        conn = get_connection(s, connection)
        names = set(DEFAULT_GL_ACCOUNTS) | set(repo.mapping_overrides(s, conn.id, kind=GL_KIND))
        accounts = service.gl_accounts(s, conn, sorted(names))
        client = service.client_for(conn)
        target = service.ledger_target(conn, accounts, client)
    try:
        with client:
            versions = [e.get("version") for e in client.endpoints()]
            target.validate_accounts()
    except ConnectorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"endpoint_versions": versions, "accounts_ok": sorted(names)}, indent=2))
