"""``ml-connector servicetitan …``: set up a ServiceTitan connection (``connect``), check it
(``ping``: whether the token works and which business unit, PO type and inventory location every
purchase order will use) and refresh its vendor/material cache (``refresh``)."""
from __future__ import annotations

import json

import click

SYSTEM = "servicetitan"


def _url() -> str:
    from connector_tasks import runtime

    return runtime.settings().database_url


def _fail(exc) -> click.ClickException:
    return click.ClickException(getattr(exc, "message", None) or str(exc))


@click.group()
def servicetitan() -> None:
    """ServiceTitan connections (v2 API, client credentials per tenant, app key)."""


@servicetitan.command("connect")
@click.argument("name")
@click.option("--tenant", "tenant_id", required=True, type=int, help="the ServiceTitan tenant id")
@click.option("--client-id", required=True, help="the tenant's client id")
@click.option("--client-secret", prompt=True, hide_input=True, help="its secret (stored encrypted)")
@click.option("--app-key", prompt=True, hide_input=True, help="the application's ST-App-Key (stored encrypted)")
@click.option("--environment", type=click.Choice(["integration", "production"]), default="integration",
              show_default=True)
@click.option("--api-url", help="override the API host (e.g. an emulator)")
@click.option("--auth-url", help="override the token URL (e.g. <emulator>/connect/token)")
@click.option("--business-unit", help="id or exact name (default: the tenant's only active one)")
@click.option("--po-type", help="id or exact name of the purchase-order type")
@click.option("--inventory-location", help="id or exact name of the warehouse or truck POs stock into")
@click.option("--match-items-by", type=click.Choice(["part_number", "name"]), default="part_number",
              show_default=True, help="the source stock item's field that must equal the material's code")
@click.option("--poll-interval-minutes", type=click.IntRange(5, 15), default=10, show_default=True)
@click.option("--workspace", help="the ml-connector tenant the connection belongs to (default: default); "
                                  "--tenant is ServiceTitan's own tenant id")
def connect(name, tenant_id, client_id, client_secret, app_key, environment, api_url, auth_url, business_unit,
            po_type, inventory_location, match_items_by, poll_interval_minutes, workspace) -> None:
    """Create or update ServiceTitan connection NAME (secret and app key stored encrypted)."""
    from connector_tasks.connections import save_connection
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store.db import session_scope, upgrade
    from connector_tasks.tenants import tenant_id_of

    upgrade(_url())
    try:
        with session_scope(_url()) as s:
            save_connection(s, name, SYSTEM, tenant_id=tenant_id_of(s, workspace), account=str(tenant_id), credentials={
                "client_id": client_id, "client_secret": client_secret, "app_key": app_key}, settings={
                "environment": environment, "api_url": api_url, "auth_url": auth_url,
                "business_unit": business_unit, "po_type": po_type, "inventory_location": inventory_location,
                "match_items_by": match_items_by, "poll_interval_minutes": poll_interval_minutes})
    except ConnectorError as exc:
        raise _fail(exc) from exc
    click.echo(f"connection {name} (servicetitan, tenant {tenant_id}, {environment}) saved")


def _connection(name: str):
    from connector_tasks.connections import get_connection
    from connector_tasks.store.db import session_scope

    with session_scope(_url()) as s:
        conn = get_connection(s, name, system=SYSTEM)
        s.expunge(conn)
        return conn


@servicetitan.command("ping")
@click.argument("name")
def ping(name) -> None:
    """Say whether NAME's token works and which business unit, PO type and inventory location
    every purchase order will use (exit 1 when something does not resolve)."""
    from connector_tasks.connectors.servicetitan import service
    from connector_tasks.core.errors import ConnectorError

    try:
        report = service.ping(_connection(name))
    except ConnectorError as exc:
        raise _fail(exc) from exc
    click.echo(json.dumps(report, indent=2, default=str))
    if report["ok"]:
        click.echo(f"token works; purchase orders use business unit {report['business_unit']['name']!r}, "
                   f"PO type {report['po_type']['name']!r}, inventory location "
                   f"{report['inventory_location']['name']!r}")
    else:
        raise click.ClickException(report["problem"])


@servicetitan.command("refresh")
@click.argument("name")
def refresh(name) -> None:
    """Refresh NAME's vendor and material cache now (beat does it on a schedule; a miss does it
    too)."""
    from connector_tasks.connectors.servicetitan import service
    from connector_tasks.core.errors import ConnectorError

    conn = _connection(name)
    try:
        client = service.client_for(conn)
        try:
            catalog = service.refresh_catalog(conn, client)
        finally:
            client.session.close()
    except ConnectorError as exc:
        raise _fail(exc) from exc
    click.echo(f"{len(catalog['vendors'])} vendor names, {len(catalog['materials'])} material codes cached")
