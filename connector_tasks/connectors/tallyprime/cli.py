"""``ml-connector tallyprime …``: store a protected company's Tally login on a connection
(``login``) and ask the agent for a purchase poll now (``poll``; beat does it every
``poll_interval_minutes`` of the connection's inventory targets).

The user name and password are the connection's encrypted credentials (``username``,
``password``; the vault, ``FERNET_KEYS``) and reach the agent only inside each command it is sent
(``secrets`` of the command, masked in Celery's ``argsrepr``/``kwargsrepr``; never in the job's
stored payload): the agent's host keeps no copy (docs/security.md, "Agents").
"""
from __future__ import annotations

import json

import click

SYSTEM = "tallyprime"


def _url() -> str:
    from connector_tasks import runtime

    return runtime.settings().database_url


@click.group()
def tallyprime() -> None:
    """TallyPrime connections (the agent beside Tally serves tally.<connection>)."""


@tallyprime.command("login")
@click.argument("connection")
@click.option("--username", help="the company's Tally user name (omit to remove the login)")
@click.option("--password", prompt=True, hide_input=True, default="", help="its password (stored encrypted)")
def login(connection, username, password) -> None:
    """Store (or, without --username, remove) the Tally login CONNECTION's company needs; it
    travels inside every command the agent is sent for this connection and is never logged."""
    from connector_tasks import runtime
    from connector_tasks.connections import get_connection
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope

    try:
        with session_scope(_url()) as s:
            conn = get_connection(s, connection, system=SYSTEM)
            creds = repo.read_credentials(conn, runtime.vault()) if conn.credentials else {}
            creds.pop("username", None), creds.pop("password", None)
            if username:
                creds.update(username=username, password=password or "")
            repo.write_credentials(conn, runtime.vault(), creds)
    except ConnectorError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"connection {connection}: Tally login {'stored for ' + repr(username) if username else 'removed'}")


@tallyprime.command("poll")
@click.argument("connection")
@click.option("--wait", type=float, default=60.0, show_default=True, help="seconds to wait for the agent's answer")
def poll(connection, wait) -> None:
    """Ask CONNECTION's agent for a purchase poll now and show what it found."""
    from connector_tasks.connectors.tallyprime.polling import request_poll
    from connector_tasks.core.errors import ConnectorError

    try:
        answer = request_poll(connection, wait=wait)
    except ConnectorError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(json.dumps(answer, indent=2, default=str))
    if answer.get("status") != "done":
        raise click.ClickException(f"the poll failed: {answer.get('error')}")
