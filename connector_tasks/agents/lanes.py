"""Cloud → agent: commands go into the agent's own prefixed lane, each with its capability.

The cloud publishes ``task(*args, **kwargs)`` for connection ``C`` into the system's agent queue for ``C`` under
the key prefix of the agent enrolled for ``C`` (kombu's ``global_keyprefix``: the list is
``agent:<id>:<queue>``), on a connection of its own with full rights; the agent, whose Redis
user sees only ``agent:<id>:*``, consumes it. The command carries the capability
(:mod:`.capability`) the agent must echo in its report.
"""
from __future__ import annotations

from kombu import Connection as KombuConnection
from sqlalchemy import select

from connector_tasks import runtime
from connector_tasks.agents import acl, capability
from connector_tasks.agents.models import Agent
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.store.db import session_scope


def agent_for(session, connection_name: str) -> Agent:
    """The active agent enrolled for connection ``connection_name``: the newest if several (a
    re-installed agent takes over its connection's commands at once; revoke the old one with
    ``ml-connector agents revoke``). Raises ConfigurationError when none is (naming the enrolment command)."""
    agents = session.scalars(select(Agent).where(Agent.state == "active").order_by(Agent.id.desc())).all()
    for agent in agents:
        if connection_name in (agent.connections or []):
            return agent
    raise ConfigurationError(f"no agent is registered for connection {connection_name!r}: run "
                             f"`ml-connector agents enroll --connection {connection_name}` and register the agent "
                             f"beside the books with the one-time code it prints")


#: keys whose values never appear in Celery's argsrepr/kwargsrepr (logs, events, Flower)
MASKED = ("secrets", "capability")


def masked(value):
    """``value`` with every dict entry named in :data:`MASKED` replaced by ``"***"``."""
    if isinstance(value, dict):
        return {k: "***" if k in MASKED else masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    return value


def command_secrets(session, connection_name: str) -> dict | None:
    """The secrets connection ``connection_name``'s agent needs with each command (its system's
    target side ``command_secrets(session, connection)``, e.g. a company login), or None."""
    from connector_tasks.connections import get_connection
    from connector_tasks.connectors import registry

    conn = get_connection(session, connection_name)
    spec = registry.find(conn.system)
    if spec is None or not spec.target:
        return None
    fn = getattr(spec.load("target"), "command_secrets", None)
    return fn(session, conn) if fn else None


def publish(agent_id: int, queue: str, task: str, args: list, kwargs: dict | None = None) -> None:
    """Publish Celery task ``task`` into queue ``queue`` under agent ``agent_id``'s key prefix
    (the cloud's own broker connection, ``REDIS_URL``), with secrets and capabilities masked in
    its ``argsrepr``/``kwargsrepr``. Raises kombu/redis errors when the broker refuses."""
    from connector_tasks.celery_app import app

    options = {**app.conf.broker_transport_options, "global_keyprefix": acl.key_prefix(agent_id)}
    kwargs = kwargs or {}
    with KombuConnection(runtime.settings().redis_url, transport_options=options) as conn:
        app.send_task(task, args=args, kwargs=kwargs, queue=queue, producer=conn.Producer(),
                      argsrepr=repr(masked(args)), kwargsrepr=repr(masked(kwargs)))


def _credentials_for(connection_name: str, task: str, subject: str) -> tuple[int, dict]:
    """The agent of ``connection_name`` and what a command to it carries: ``(agent id,
    {"capability": ..., "secrets"?: ...})`` (secrets only when the connection has any).
    Raises ConfigurationError when no agent is registered for the connection."""
    with session_scope(runtime.settings().database_url) as s:
        agent_id = agent_for(s, connection_name).id
        secrets = command_secrets(s, connection_name)
    extra = {"capability": capability.issue(agent_id, subject, task)}
    if secrets:
        extra["secrets"] = secrets
    return agent_id, extra


def send_job_step(connection_name: str, queue: str, task: str, job_id: int, payload: dict) -> int:
    """Send target step ``task(job_id, payload)`` of job ``job_id`` to the agent of
    ``connection_name``, with ``payload["capability"]`` for subject ``job:<id>`` (and ``payload["secrets"]``, the
    connection's :func:`command_secrets`, when it has any: added here, never stored with the
    job). Returns the agent's id. Raises ConfigurationError when no agent is registered for
    the connection."""
    agent_id, extra = _credentials_for(connection_name, task, capability.job_subject(job_id))
    publish(agent_id, queue, task, [job_id, {**payload, **extra}])
    return agent_id


def send_request(connection_name: str, queue: str, task: str, request_id: str, args: list,
                 kwargs: dict | None = None) -> int:
    """Send request ``task(*args, **kwargs, capability=..., secrets=...)`` (subject
    ``request:<connection>:<request_id>``) to the agent of ``connection_name``; returns the
    agent's id. Raises ConfigurationError when no agent is registered for the connection."""
    agent_id, extra = _credentials_for(connection_name, task, capability.request_subject(connection_name, request_id))
    publish(agent_id, queue, task, args, {**(kwargs or {}), **extra})
    return agent_id
