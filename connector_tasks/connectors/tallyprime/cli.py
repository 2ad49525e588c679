"""``ml-connector tallyprime …``: the login of a Tally company under security control.

The user name and password are stored encrypted with the connection (the vault,
``FERNET_KEYS``) and reach the agent only inside each command it is sent (``secrets`` of the
command, masked in Celery's ``argsrepr``/``kwargsrepr``; never in the job's stored payload):
the agent's host keeps no copy (docs/security-agents.md).
"""
from __future__ import annotations

import click


@click.group()
def tallyprime() -> None:
    """TallyPrime connections."""


@tallyprime.command("login")
@click.argument("name")
@click.option("--username", help="the Tally user name of the company (omit with --clear)")
@click.option("--password", prompt=True, hide_input=True, default="", help="prompted when omitted")
@click.option("--clear", is_flag=True, help="forget the stored login (the company is not protected)")
def login(name: str, username: str | None, password: str, clear: bool) -> None:
    """Store (or --clear) the Tally login of connection NAME's company, encrypted."""
    from connector_tasks import runtime
    from connector_tasks.connections import get_connection
    from connector_tasks.core.errors import ConfigurationError
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope

    if not clear and not username:
        raise click.ClickException("--username is required (or --clear)")
    with session_scope(runtime.settings().database_url) as s:
        try:
            conn = get_connection(s, name, system="tallyprime")
        except ConfigurationError as exc:
            raise click.ClickException(exc.message) from exc
        creds = repo.read_credentials(conn, runtime.vault())
        creds.pop("tally_login", None)
        if not clear:
            creds["tally_login"] = {"username": username, "password": password}
        repo.write_credentials(conn, runtime.vault(), creds)
    click.echo(f"Tally login of {name} {'cleared' if clear else 'stored (encrypted)'}")
