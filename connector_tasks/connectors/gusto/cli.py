"""``ml-connector gusto …``: set up a Gusto connection's webhook subscription, poll its events,
read its reference data."""
from __future__ import annotations

import click


@click.group()
def gusto() -> None:
    """Gusto connection set-up."""


@gusto.command("subscribe")
@click.argument("connection")
def subscribe(connection: str) -> None:
    """Register the webhook subscription of CONNECTION and complete the handshake."""
    from connector_tasks.connectors.gusto.service import register_webhook

    sub = register_webhook(connection)
    click.echo(f"subscription {sub['uuid']} is {sub.get('status')}")


@gusto.command("poll")
@click.argument("connection")
def poll(connection: str) -> None:
    """Read Gusto's /v1/events for CONNECTION now (the polling fallback beat does this every
    GUSTO_POLL_SECONDS) and feed new events to the inbound path."""
    from connector_tasks.connectors.gusto.source import poll_events

    r = poll_events(connection)
    click.echo(f"{r['new']} new event(s), {r['duplicates']} already received; cursor {r['cursor']}")


@gusto.command("reference-data")
@click.argument("connection")
def reference_data(connection: str) -> None:
    """Read CONNECTION's earning types and pay schedules and create their ledgers in the targets."""
    from connector_tasks.celery_app import app

    app.send_task("gusto.sync_reference_data", args=[connection])
    click.echo(f"reference data of {connection} queued; see `ml-connector jobs list`")
