"""``ml-connector agents``: enrol, list and revoke the agents beside customers' books."""
from __future__ import annotations

import click


def _url() -> str:
    from connector_tasks import runtime

    return runtime.settings().database_url


@click.group()
def agents() -> None:
    """Agents: each has its own broker user, scoped to its own connection(s), revocable."""


@agents.command("enroll")
@click.option("--connection", "connections", multiple=True, required=True,
              help="a connection the agent serves (repeat for several)")
@click.option("--ttl", default=900, show_default=True, help="seconds the one-time code stays valid")
def enroll_cmd(connections: tuple[str, ...], ttl: int) -> None:
    """Enrol an agent for CONNECTION(s) and print its one-time code (shown once)."""
    from connector_tasks.agents.enrol import enroll
    from connector_tasks.core.errors import ConfigurationError
    from connector_tasks.store.db import session_scope

    try:
        with session_scope(_url()) as s:
            agent_id, code = enroll(s, list(connections), ttl=ttl)
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"agent {agent_id} enrolled for {', '.join(connections)}; one-time code (valid {ttl} s):")
    click.echo(code)


@agents.command("list")
def list_cmd() -> None:
    """Every agent: id, status, connections, refused reports."""
    from sqlalchemy import select

    from connector_tasks.agents.models import Agent
    from connector_tasks.store.db import session_scope

    with session_scope(_url()) as s:
        rows = s.scalars(select(Agent).order_by(Agent.id)).all()
        if not rows:
            click.echo("no agents")
        for a in rows:
            click.echo(f"#{a.id:<4} {a.state:8} {','.join(a.connections or [])}  refused={a.refused_reports}")


@agents.command("revoke")
@click.argument("agent_id", type=int)
def revoke_cmd(agent_id: int) -> None:
    """Revoke agent AGENT_ID: its broker user is deleted and its connections killed."""
    from connector_tasks.agents.enrol import revoke
    from connector_tasks.core.errors import ConfigurationError
    from connector_tasks.store.db import session_scope

    try:
        with session_scope(_url()) as s:
            killed = revoke(s, agent_id)
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"agent {agent_id} revoked; {killed} broker connection(s) closed")
