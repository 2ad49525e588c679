"""``ml-connector``: the operator's command line.

Commands: ``db upgrade``, ``tenants add|list``, ``tokens create|list|revoke``,
``connections`` (add, set, list), ``mappings show|set|unset``, ``backfill``,
``jobs list [--failed]``, ``jobs replay ID``, ``audit ID``, ``relay``, ``rotate-keys``,
``web``, ``flower``, ``worker`` and ``agents enroll|list|revoke``; plus each system's own group (its registry entry's ``cli``, e.g.
``ml-connector <system> ...``).

Tenants: whoever runs this CLI holds ``DATABASE_URL`` and ``FERNET_KEYS``, i.e. the whole
service, so without ``--tenant`` (or ``ML_CONNECTOR_TENANT``) a command sees every tenant, like
an admin token. With ``--tenant T`` it sees only T's connections, jobs and audit trails: another
tenant's job or connection is "no such …", as through the API. New connections go to
``--tenant`` (default: the ``default`` tenant).
"""
from __future__ import annotations

import json
import os
import sys

import click


def _settings():
    """The process's settings; a bad or missing variable stops the command with its name
    (``Error: FERNET_KEYS ...``, exit status 1) instead of a traceback."""
    from connector_tasks import runtime
    from connector_tasks.core.errors import ConfigurationError

    try:
        return runtime.settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


#: ``--tenant``: limit a command to one tenant (a name); default every tenant
tenant_option = click.option("--tenant", envvar="ML_CONNECTOR_TENANT",
                             help="only this tenant's rows (default: every tenant; env ML_CONNECTOR_TENANT)")


def _scope(tenant: str | None):
    """The :class:`~connector_tasks.tenants.Scope` of ``--tenant`` (every tenant without one).
    Raises ClickException for an unknown tenant."""
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store.db import session_scope
    from connector_tasks.tenants import scope_of

    with session_scope(_settings().database_url) as s:
        try:
            return scope_of(s, tenant)
        except ConnectorError as exc:
            raise click.ClickException(exc.message) from exc


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
def tenants() -> None:
    """Tenants (one per customer workspace)."""


@tenants.command("add")
@click.argument("name")
def tenants_add(name: str) -> None:
    """Create tenant NAME (letters, digits, '-' and '_')."""
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store.db import session_scope, upgrade
    from connector_tasks.tenants import add_tenant

    upgrade(_settings().database_url)
    with session_scope(_settings().database_url) as s:
        try:
            tenant = add_tenant(s, name)
        except ConnectorError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"tenant {tenant.name} (id {tenant.id}) created")


@tenants.command("list")
def tenants_list() -> None:
    """List tenants with their number of connections and active tokens."""
    from sqlalchemy import func, select

    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import ApiToken, Connection, Tenant

    with session_scope(_settings().database_url) as s:
        conns = dict(s.execute(select(Connection.tenant_id, func.count()).group_by(Connection.tenant_id)).all())
        tokens = dict(s.execute(select(ApiToken.tenant_id, func.count()).where(ApiToken.revoked_at.is_(None))
                                .group_by(ApiToken.tenant_id)).all())
        for t in s.scalars(select(Tenant).order_by(Tenant.id)):
            click.echo(f"{t.id:<5} {t.name:24} connections={conns.get(t.id, 0)}  tokens={tokens.get(t.id, 0)}")


@main.group()
def tokens() -> None:
    """Operator API tokens (stored hashed; shown once)."""


@tokens.command("create")
@click.option("--tenant", required=True, help="the tenant the token belongs to")
@click.option("--role", type=click.Choice(["operator", "admin"]), default="operator", show_default=True,
              help="operator: this tenant only; admin: every tenant")
@click.option("--label", help="whose token it is")
def tokens_create(tenant: str, role: str, label: str | None) -> None:
    """Create an API token; it is printed once (only its SHA-256 is kept)."""
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store.db import session_scope, upgrade
    from connector_tasks.tenants import create_token

    upgrade(_settings().database_url)
    with session_scope(_settings().database_url) as s:
        try:
            row, token = create_token(s, tenant, role, label)
        except ConnectorError as exc:
            raise click.ClickException(exc.message) from exc
        token_id = row.id
    click.echo(f"token #{token_id} ({role} of {tenant}); store it now, it is not shown again:")
    click.echo(token)


@tokens.command("list")
@tenant_option
def tokens_list(tenant: str | None) -> None:
    """List tokens (id, tenant, role, label, created, revoked); never the tokens themselves."""
    from sqlalchemy import select

    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import ApiToken, Tenant

    scope = _scope(tenant)
    with session_scope(_settings().database_url) as s:
        rows = s.execute(select(ApiToken, Tenant.name).join(Tenant, Tenant.id == ApiToken.tenant_id)
                         .where(scope.where(ApiToken.tenant_id)).order_by(ApiToken.id)).all()
        for row, name in rows:
            click.echo(f"#{row.id:<5} {name:20} {row.role:8} {row.label or '-':24} {row.created_at:%Y-%m-%d %H:%M}"
                       + (f"  revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else ""))


@tokens.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke token TOKEN_ID (refused from the next request on)."""
    from connector_tasks.store.db import session_scope
    from connector_tasks.tenants import revoke_token

    with session_scope(_settings().database_url) as s:
        done = revoke_token(s, token_id)
    if not done:
        raise click.ClickException(f"no active token #{token_id}")
    click.echo(f"token #{token_id} revoked")


@main.group()
def connections() -> None:
    """Connected accounts."""


def _system_names() -> list[str]:
    from connector_tasks.connectors import registry

    return list(registry.names())


def _parse_sets(pairs: tuple[str, ...]) -> dict:
    """``key=value`` pairs → settings changes; a value is read as JSON when it parses (numbers,
    true/false, lists), else kept as text; an empty value resets the setting."""
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--set takes key=value, got {pair!r}")
        if raw == "":
            out[key] = None
            continue
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


@connections.command("add")
@click.argument("name")
@click.option("--system", type=click.Choice(_system_names()), required=True)
@click.option("--account", help="the account in that system (a company id or name; OAuth sets it for some)")
@click.option("--target", "targets", multiple=True, help="a connection this one's data goes to (repeatable)")
@click.option("--base-url", help="override the system's base URL for this connection")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="a typed setting (repeatable)")
@click.option("--tenant", envvar="ML_CONNECTOR_TENANT", help="the tenant it belongs to (default: default)")
def connections_add(name, system, account, targets, base_url, sets, tenant) -> None:
    """Create (or update) connection NAME of --tenant; settings are checked against the
    system's schema; its targets must be connections of the same tenant."""
    from connector_tasks.connections import open_connection, write_settings
    from connector_tasks.connectors import registry
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store.db import session_scope, upgrade
    from connector_tasks.tenants import tenant_id_of

    s = _settings()
    upgrade(s.database_url)
    changes = _parse_sets(sets)
    if targets:
        changes["targets"] = list(targets)
    if base_url:
        changes["base_url"] = base_url
    with session_scope(s.database_url) as session:
        try:
            conn = open_connection(session, name, system, tenant_id=tenant_id_of(session, tenant))
            conn.account = account or conn.account
            write_settings(session, conn, changes)
        except ConnectorError as exc:
            raise click.ClickException(exc.message) from exc
        if not registry.get(system).oauth:
            conn.status = "connected"
    click.echo(f"connection {name} ({system}) saved")


@connections.command("set")
@click.argument("name")
@click.argument("sets", nargs=-1, required=True, metavar="KEY=VALUE...")
@tenant_option
def connections_set(name, sets, tenant) -> None:
    """Change settings of connection NAME (checked against its system's schema)."""
    from connector_tasks.connections import get_connection, write_settings
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store.db import session_scope

    scope = _scope(tenant)
    with session_scope(_settings().database_url) as session:
        try:
            conn = get_connection(session, name, scope=scope)
            new = write_settings(session, conn, _parse_sets(sets))
        except ConnectorError as exc:
            raise click.ClickException(exc.message) from exc
    click.echo(json.dumps(new.to_dict() if new is not None else {}))


#: runtime-state keys short enough for ``connections list``
STATE_SHOWN = ("webhook_status", "events_cursor", "events_polled_at")


@connections.command("list")
@tenant_option
def connections_list(tenant) -> None:
    """List connections (of --tenant, else every tenant's) with their settings and runtime
    state (never their credentials)."""
    from sqlalchemy import select

    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import Connection

    scope = _scope(tenant)
    with session_scope(_settings().database_url) as session:
        for c in session.scalars(select(Connection).where(scope.where(Connection.tenant_id)).order_by(Connection.id)):
            state = {k: v for k, v in repo.all_state(session, c.id).items() if k in STATE_SHOWN}
            click.echo(f"{c.name:20} {c.system:11} {c.status:10} {c.account or '-':40} "
                       f"{json.dumps(c.settings or {})}" + (f" {json.dumps(state)}" if state else ""))


@main.group()
def mappings() -> None:
    """Which ledger each pay component and earning type goes to (per payroll source connection)."""


@mappings.command("show")
@click.argument("connection")
@click.option("--json", "as_json", is_flag=True)
@tenant_option
def mappings_show(connection: str, as_json: bool, tenant) -> None:
    """Show CONNECTION's effective mapping (defaults and a person's choices)."""
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.flows.mapping.edit import show

    try:
        m = show(connection, scope=_scope(tenant))
    except ConnectorError as exc:
        raise click.ClickException(exc.message) from exc
    if as_json:
        click.echo(json.dumps(m, indent=2))
        return
    click.echo(f"cost category: {m['cost_category']}")
    for c in m["components"]:
        click.echo(f"  {c['component']:26} {c['side']:6} → {c['ledger']}  ({c['group']})"
                   + ("  [mapped]" if c["mapped"] else ""))
    for e in m["earning_types"]:
        click.echo(f"  earning {e['earning_type']!r:24} → {e['ledger']}" + ("  [mapped]" if e["mapped"] else ""))


@mappings.command("set")
@click.argument("connection")
@click.argument("key")
@click.argument("ledger")
@click.option("--earning-type", is_flag=True, help="KEY is an earning type's name, not a pay component")
@click.option("--wait", default=30.0, show_default=True, help="seconds to wait for the target's agent")
@tenant_option
def mappings_set(connection: str, key: str, ledger: str, earning_type: bool, wait: float, tenant) -> None:
    """Map pay component KEY (or an earning type) of CONNECTION to LEDGER; the ledger must
    exist in the targets' books (checked through their agents)."""
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.flows.mapping.edit import set_mapping

    try:
        row = set_mapping(connection, "earning_type" if earning_type else "ledger", key, ledger, wait=wait,
                          scope=_scope(tenant))
    except ConnectorError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{row['key']} → {row['ledger']}")


@mappings.command("unset")
@click.argument("connection")
@click.argument("key")
@click.option("--earning-type", is_flag=True)
@tenant_option
def mappings_unset(connection: str, key: str, earning_type: bool, tenant) -> None:
    """Drop CONNECTION's mapping of KEY (back to the default ledger)."""
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.flows.mapping.edit import unset_mapping

    try:
        done = unset_mapping(connection, "earning_type" if earning_type else "ledger", key, scope=_scope(tenant))
    except ConnectorError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{key}: " + ("back to the default ledger" if done else "was not mapped"))


@main.command()
@click.argument("connection")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="first pay-period day")
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="last pay-period day")
@click.option("--wait/--no-wait", default=True, show_default=True, help="follow the jobs until they end")
@click.option("--timeout", default=1800.0, show_default=True, help="seconds to follow them")
@tenant_option
def backfill(connection: str, start, end, wait: bool, timeout: float, tenant) -> None:
    """Post every payroll of CONNECTION processed with a pay period within --from..--to
    (payrolls already posted are not posted again), with a progress display. The connection's
    system must offer a backfill (its registry ``source`` module's ``backfill``)."""
    import time

    from sqlalchemy import select

    from connector_tasks.connections import get_connection
    from connector_tasks.connectors import registry
    from connector_tasks.core.errors import ConnectorError
    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import SyncJob

    if end < start:
        raise click.ClickException(f"--to {end.date()} is before --from {start.date()}")
    scope = _scope(tenant)
    with session_scope(_settings().database_url) as s:
        try:
            source = get_connection(s, connection, scope=scope)
            spec, source_id = registry.get(source.system), source.id
        except ConnectorError as exc:
            raise click.ClickException(exc.message) from exc
    run_backfill = getattr(spec.load("source"), "backfill", None) if spec.source else None
    if run_backfill is None:
        raise click.ClickException(f"{spec.title} connections offer no backfill")
    with click.progressbar(length=1, label=f"reading payrolls from {spec.title}") as bar:
        state = {"total": None}

        def progress(done, total, _pid):
            if state["total"] is None:
                state["total"] = total
                bar.length = total
            bar.update(1)

        try:
            flow, payrolls = run_backfill(connection, start.date(), end.date(), progress)
        except ConnectorError as exc:
            raise click.ClickException(exc.message) from exc
    click.echo(f"{len(payrolls)} processed payroll(s) in {start.date()}..{end.date()} fed to the inbound path")
    if not wait or not payrolls:
        return
    deadline = time.monotonic() + timeout
    last = None
    while True:
        with session_scope(_settings().database_url) as s:
            jobs = s.scalars(select(SyncJob).where(SyncJob.connection_id == source_id, SyncJob.flow == flow,
                                                   SyncJob.source_id.in_(payrolls))).all()
            counts: dict[str, int] = {}
            for j in jobs:
                counts[j.status] = counts.get(j.status, 0) + 1
            counts["waiting"] = len(set(payrolls) - {j.source_id for j in jobs})
            finished = all(j.status in ("done", "failed", "cancelled") for j in jobs)
        line = "  ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v)
        if line != last:
            click.echo(f"  {line}")
            last = line
        if counts["waiting"] == 0 and finished:
            break
        if time.monotonic() > deadline:
            raise click.ClickException("jobs still running; follow them with `ml-connector jobs list`")
        time.sleep(0.5)
    if counts.get("failed"):
        raise click.ClickException(f"{counts['failed']} payroll(s) parked: `ml-connector jobs list --failed`")


@main.group()
def jobs() -> None:
    """Sync jobs: see and replay."""


@jobs.command("list")
@click.option("--failed", is_flag=True, help="only parked (failed) jobs")
@click.option("--status", help="only jobs in this state")
@tenant_option
def jobs_list(failed: bool, status: str | None, tenant) -> None:
    """List jobs (of --tenant, else every tenant's), newest first."""
    from connector_tasks.jobs.replay import job_summaries

    rows = job_summaries(_scope(tenant), status="failed" if failed else status)
    if not rows:
        click.echo("no jobs")
    for j in rows:
        click.echo(f"#{j['id']:<5} {j['status']:8} {j['flow']:20} {j['source_id']}  attempts={j['attempts']}"
                   + (f"  target={j['target_ref']}" if j["target_ref"] else "")
                   + (f"\n       error: {j['last_error']}" if j["last_error"] else ""))


@jobs.command("replay")
@click.argument("job_id", type=int)
@tenant_option
def jobs_replay(job_id: int, tenant) -> None:
    """Re-run job JOB_ID (of --tenant) under its own idempotency key."""
    from connector_tasks.jobs.replay import replay_job

    click.echo(json.dumps(replay_job(job_id, scope=_scope(tenant))))


@main.command()
@click.argument("source_id")
@click.option("--json", "as_json", is_flag=True, help="the whole trail as JSON")
@tenant_option
def audit(source_id: str, as_json: bool, tenant) -> None:
    """Print the audit trail of SOURCE_ID (a payroll's or employee's id in its source): its
    events, jobs with every attempt and the target's reply, and where it landed."""
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope

    scope = _scope(tenant)
    with session_scope(_settings().database_url) as session:
        trail = repo.audit_trail(session, source_id, scope=scope)
    if as_json:
        click.echo(json.dumps(trail, indent=2))
        return
    if not (trail["events"] or trail["jobs"] or trail["external_refs"]):
        raise click.ClickException(f"nothing is known about {source_id}")
    click.echo(f"{source_id}")
    for e in trail["events"]:
        click.echo(f"  event   {e['received_at']}  {e['type']:28} via {e['source']:8} {e['status']:9} "
                   f"deliveries={e['deliveries']}  {e['uuid']}")
    for j in trail["jobs"]:
        click.echo(f"  job #{j['id']} {j['flow']} [{j['status']}] key={j['key']}"
                   + (f" → {j['target_ref']}" if j["target_ref"] else ""))
        if j.get("reverses"):
            click.echo(f"      reverses job #{j['reverses'].get('job')} (voucher {j['reverses'].get('target_ref')})")
        for w in j["warnings"] or []:
            click.echo(f"      warning: {w}")
        for a in j["attempts_log"]:
            click.echo(f"      {a['started_at']}  {a['phase']:8} {a['outcome'] or 'running':8} {a['worker'] or ''}"
                       + (f"\n          {a['error']}" if a["error"] else "")
                       + (f"\n          reply: {json.dumps(a['detail'])}" if a["detail"] else ""))
        if j["last_error"] and j["status"] != "done":
            click.echo(f"      last error: {j['last_error']}")
    for r in trail["external_refs"]:
        click.echo(f"  landed  {r['source']} → {r['target_system']} {r['target_type']} {r['target_id']}")


@main.command()
@click.option("--poll", default=0.02, show_default=True, help="seconds between looks when idle")
@click.option("--batch", default=500, show_default=True)
def relay(poll: float, batch: int) -> None:
    """Publish stored webhook events in batches (WEBHOOK_ENQUEUE=relay, the default)."""
    from config.logging import configure_logging
    from connector_tasks.pipeline.relay import run_relay

    configure_logging(_settings().log_level)
    run_relay(poll=poll, batch=batch)


@main.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every stored credential (of every tenant) under the newest key of FERNET_KEYS.

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
    """Serve the web app with gunicorn, configured by :mod:`config.gunicorn` (gevent workers:
    slow clients cannot starve it). Refuses to start on bad settings (e.g. a malformed
    ``FERNET_KEYS``), naming the variable."""
    _settings()
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "-c", "python:config.gunicorn",
                               "-w", str(workers), "-b", bind, "webapp:create_app()"])


#: ``user:password`` with a password of at least this many characters
FLOWER_MIN_PASSWORD = 12


@main.command()
@click.option("--port", default=5555, show_default=True)
@click.option("--address", default="0.0.0.0", show_default=True)
def flower(port: int, address: str) -> None:
    """Serve Flower (the Celery monitor) behind HTTP basic auth: ``FLOWER_BASIC_AUTH`` must be
    ``user:password`` (several comma-separated; passwords of 12+ characters). Refuses to start
    without it: Flower shows task arguments (employee names and pay) and can revoke tasks
    (https://flower.readthedocs.io/en/latest/auth.html, "HTTP Basic Authentication"). The
    credentials reach Flower through its own ``FLOWER_BASIC_AUTH`` variable, never the command
    line (which ``ps`` shows)."""
    from config.settings import child_environment

    settings = _settings()
    pairs = [p for p in settings.var("FLOWER_BASIC_AUTH").split(",") if p.strip()]
    if not pairs:
        raise click.ClickException("FLOWER_BASIC_AUTH must be set to user:password: Flower is not "
                                   "started without authentication")
    for pair in pairs:
        user, _, password = pair.strip().partition(":")
        if not user or len(password) < FLOWER_MIN_PASSWORD:
            raise click.ClickException(f"FLOWER_BASIC_AUTH must be user:password with a password of at "
                                       f"least {FLOWER_MIN_PASSWORD} characters")
    env = child_environment(settings, FLOWER_BASIC_AUTH=",".join(p.strip() for p in pairs))
    os.execvpe(sys.executable, [sys.executable, "-m", "celery", "-A", "connector_tasks.celery_app",
                                "flower", f"--port={port}", f"--address={address}"], env)


def cloud_queues() -> list[str]:
    """``default`` and every cloud queue the registry declares: what a cloud worker serves."""
    from config.celery import DEFAULT_QUEUE
    from connector_tasks.connectors import registry

    return list(dict.fromkeys([DEFAULT_QUEUE, *registry.cloud_queues()]))


@main.command()
@click.option("--queues", help="comma-separated queues (default: default and every system's cloud queue)")
@click.option("--concurrency", "-c", default=2, show_default=True)
@click.option("--name", "-n", default="worker@%h", show_default=True, help="the worker's node name")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def worker(queues: str | None, concurrency: int, name: str, loglevel: str) -> None:
    """Run a Celery worker for QUEUES (never an agent's lane: that is the agent's). Refuses to
    start on bad settings (e.g. a malformed ``FERNET_KEYS``), naming the variable."""
    _settings()
    from connector_tasks.celery_app import app

    app.worker_main(["worker", "-Q", queues or ",".join(cloud_queues()), "-c", str(concurrency), "-n", name,
                     "--without-gossip", "--without-mingle", "-l", loglevel])


def _add_system_groups() -> None:
    """Add each system's own command group (its registry entry's ``cli``)."""
    from connector_tasks.connectors import registry

    for spec in registry.with_part("cli"):
        main.add_command(spec.load("cli"), spec.name)


_add_system_groups()

from connector_tasks.agents.cli import agents as _agents  # noqa: E402

main.add_command(_agents)


if __name__ == "__main__":  # pragma: no cover
    main()
