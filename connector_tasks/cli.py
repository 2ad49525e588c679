"""``ml-connector``: the operator's command line.

Commands: ``db upgrade``, ``connections``
(add, list), ``gusto subscribe``, ``jobs list [--failed]``, ``jobs replay ID``, ``audit ID``,
``web`` and ``worker``.
"""
from __future__ import annotations

import json
import os
import sys

import click


def _settings():
    from connector_tasks import runtime

    return runtime.settings()


@click.group()
def main() -> None:
    """ml-connector: payroll and HR data into the books, without re-keying."""


@main.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to DATABASE_URL."""
    from connector_tasks.store.db import upgrade

    s = _settings()
    upgrade(s.database_url)
    click.echo(f"store at {s.database_url.split('@')[-1]} is up to date")


@main.group()
def connections() -> None:
    """Connected accounts."""


@connections.command("add")
@click.argument("name")
@click.option("--system", type=click.Choice(["gusto", "tallyprime"]), required=True)
@click.option("--account", help="Gusto company uuid (set by OAuth) or the Tally company name")
@click.option("--target", help="for a Gusto connection: the Tally connection its journals go to")
@click.option("--base-url", help="override the system's base URL for this connection")
def connections_add(name, system, account, target, base_url) -> None:
    """Create (or update) connection NAME."""
    from sqlalchemy import select

    from connector_tasks.store.db import session_scope, upgrade
    from connector_tasks.store.models import Connection

    s = _settings()
    upgrade(s.database_url)
    with session_scope(s.database_url) as session:
        conn = session.scalar(select(Connection).where(Connection.name == name))
        if conn is None:
            conn = Connection(name=name, system=system, settings={})
            session.add(conn)
        conn.system = system
        conn.account = account or conn.account
        settings = dict(conn.settings or {})
        if target:
            settings["target"] = target
        if base_url:
            settings["base_url"] = base_url
        conn.settings = settings
        if system == "tallyprime":
            conn.status = "connected"
    click.echo(f"connection {name} ({system}) saved")


@connections.command("list")
def connections_list() -> None:
    """List connections (never their credentials)."""
    from sqlalchemy import select

    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import Connection

    with session_scope(_settings().database_url) as session:
        for c in session.scalars(select(Connection).order_by(Connection.id)):
            click.echo(f"{c.name:20} {c.system:11} {c.status:10} {c.account or '-':40} "
                       f"{json.dumps({k: v for k, v in (c.settings or {}).items()})}")


@main.group()
def gusto() -> None:
    """Gusto connection set-up."""


@gusto.command("subscribe")
@click.argument("connection")
def gusto_subscribe(connection: str) -> None:
    """Register the webhook subscription of CONNECTION and complete the handshake."""
    from connector_tasks.connectors.gusto.service import register_webhook

    sub = register_webhook(connection)
    click.echo(f"subscription {sub['uuid']} is {sub.get('status')}")


@main.group()
def jobs() -> None:
    """Sync jobs: see and replay."""


@jobs.command("list")
@click.option("--failed", is_flag=True, help="only parked (failed) jobs")
@click.option("--status", help="only jobs in this state")
def jobs_list(failed: bool, status: str | None) -> None:
    """List jobs, newest first."""
    from connector_tasks.operations import job_summaries

    rows = job_summaries(status="failed" if failed else status)
    if not rows:
        click.echo("no jobs")
    for j in rows:
        click.echo(f"#{j['id']:<5} {j['status']:8} {j['flow']:20} {j['source_id']}  attempts={j['attempts']}"
                   + (f"  target={j['target_ref']}" if j["target_ref"] else "")
                   + (f"\n       error: {j['last_error']}" if j["last_error"] else ""))


@jobs.command("replay")
@click.argument("job_id", type=int)
def jobs_replay(job_id: int) -> None:
    """Re-run job JOB_ID under its own idempotency key."""
    from connector_tasks.operations import replay_job

    click.echo(json.dumps(replay_job(job_id)))


@main.command()
@click.argument("source_id")
def audit(source_id: str) -> None:
    """Print the audit trail of SOURCE_ID (a payroll uuid, say)."""
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope

    with session_scope(_settings().database_url) as session:
        click.echo(json.dumps(repo.audit_trail(session, source_id), indent=2))


@main.command()
@click.option("--poll", default=0.02, show_default=True, help="seconds between looks when idle")
@click.option("--batch", default=500, show_default=True)
def relay(poll: float, batch: int) -> None:
    """Publish stored webhook events in batches (with WEBHOOK_ENQUEUE=relay)."""
    from config.logging import configure_logging
    from connector_tasks.relay import run_relay

    configure_logging(_settings().log_level)
    run_relay(poll=poll, batch=batch)


@main.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every stored credential under the newest key of FERNET_KEYS.

    Put the new key first in FERNET_KEYS (keep the old ones after it), run this, then drop
    the old keys.
    """
    from connector_tasks.operations import rotate_credentials

    n = rotate_credentials()
    click.echo(f"re-encrypted the credentials of {n} connection(s) under the newest key")


@main.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=2, show_default=True)
def web(bind: str, workers: int) -> None:
    """Serve the web app with gunicorn."""
    _settings()
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", bind,
                               "webapp:create_app()"])


@main.command()
@click.option("--queues", default="gusto,default", show_default=True)
@click.option("--concurrency", default=2, show_default=True)
def worker(queues: str, concurrency: int) -> None:
    """Run a Celery worker for QUEUES (not the Tally queues: those are tally_worker's)."""
    from connector_tasks.celery_app import app

    app.worker_main(["worker", "-Q", queues, "-c", str(concurrency), "--without-gossip",
                     "--without-mingle", "-l", "INFO"])


if __name__ == "__main__":  # pragma: no cover
    main()
