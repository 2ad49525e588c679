"""Enrolling, registering and revoking agents.

1. An operator enrols an agent for its connection(s): :func:`enroll` (``ml-connector agents
   enroll --connection C``) stores a pending ``agent`` row and returns a one-time code (shown
   once; only its SHA-256 is stored; valid ``ttl`` seconds, 15 minutes by default).
2. Beside the books, the agent exchanges the code once (``POST /agents/register``,
   :func:`register`): the cloud draws the agent's broker password (shown once; only its SHA-256
   is kept, which is also what Redis keeps), creates its Redis ACL user (:mod:`.acl`) and answers
   its credential: the broker URL with that user, its key prefix, its connections and their lanes.
3. :func:`revoke` (``ml-connector agents revoke ID``) deletes the Redis user, kills its open
   connections and marks the row ``revoked``: from then on it receives nothing and every report
   still in its outbox is refused.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector_tasks import runtime
from connector_tasks.agents import acl
from connector_tasks.agents.models import Agent
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.store.models import Connection, utcnow

#: seconds a one-time enrolment code stays valid
CODE_TTL = 900


class EnrolmentError(Exception):
    """A code that is unknown, already used or expired (one message for all three: no oracle)."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _lanes(session: Session, names: list[str]) -> dict[str, str]:
    from connector_tasks.connectors import registry

    lanes, tenants = {}, set()
    for name in names:
        conn = session.scalar(select(Connection).where(Connection.name == name))
        if conn is None:
            raise ConfigurationError(f"unknown connection {name!r}")
        tenants.add(conn.tenant_id)
        if len(tenants) > 1:
            raise ConfigurationError(f"connection {name!r} belongs to another tenant than {names[0]!r}: "
                                     "an agent serves the connections of one tenant only")
        spec = registry.find(conn.system)
        if spec is None or not spec.agent_queue:
            raise ConfigurationError(f"connection {name!r} ({conn.system}) is not served by an agent")
        lanes[name] = spec.agent_lane(name)
    return lanes


def enroll(session: Session, connections: list[str], ttl: int = CODE_TTL) -> tuple[int, str]:
    """A pending agent for ``connections`` (names of connections served by an agent) and its
    one-time code (48 hex digits, 192 bits). Returns ``(agent id, code)``. Raises
    ConfigurationError for an unknown connection, one not served by an agent, or connections of
    two tenants (an agent belongs to the one tenant its connections belong to)."""
    if not connections:
        raise ConfigurationError("an agent needs at least one connection")
    _lanes(session, connections)
    code = secrets.token_hex(24)  # never starts with "-" (a command-line argument)
    agent = Agent(connections=list(dict.fromkeys(connections)), state="pending", code_sha256=_sha256(code),
                  code_expires_at=utcnow() + dt.timedelta(seconds=ttl))
    session.add(agent)
    session.flush()
    return agent.id, code


def broker_url_for_agents() -> str:
    """The broker as agents reach it: ``AGENT_BROKER_URL`` (behind TLS e.g.
    ``rediss://broker.example:6380/0?ssl_cert_reqs=required``; kombu wants ``ssl_cert_reqs`` on
    a ``rediss`` URL), else ``REDIS_URL``."""
    s = runtime.settings()
    return s.environ.get("AGENT_BROKER_URL", "").strip() or s.redis_url


def register(session: Session, code: str) -> dict:
    """Exchange one-time ``code`` for the agent's credential ``{"agent_id", "broker_url",
    "key_prefix", "connections", "lanes": {connection: queue}}`` (the broker URL holds the
    agent's user and password). The code is used up. Raises :class:`EnrolmentError` for an
    unknown, used or expired code; redis errors when the broker refuses the ACL user."""
    if not isinstance(code, str) or not code or len(code) > 128:
        raise EnrolmentError("unknown, used or expired code")
    agent = session.scalar(select(Agent).where(Agent.code_sha256 == _sha256(code)))
    if agent is None or agent.state != "pending":
        raise EnrolmentError("unknown, used or expired code")
    expires = agent.code_expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.timezone.utc)
    agent.code_sha256 = None  # single use, even when expired
    if expires is None or expires < utcnow():
        agent.state = "revoked"
        agent.revoked_at = utcnow()
        session.commit()
        raise EnrolmentError("unknown, used or expired code")
    password = secrets.token_urlsafe(32)
    agent.password_sha256 = acl.password_sha256(password)
    acl.create_user(runtime.redis_client(), agent.id, agent.password_sha256)
    agent.state = "active"
    agent.registered_at = utcnow()
    return {"agent_id": agent.id, "broker_url": acl.agent_url(broker_url_for_agents(), agent.id, password),
            "key_prefix": acl.key_prefix(agent.id), "connections": list(agent.connections),
            "lanes": _lanes(session, list(agent.connections))}


def revoke(session: Session, agent_id: int) -> int:
    """Revoke agent ``agent_id``: delete its Redis user, kill its connections, mark it
    ``revoked``. Returns the number of broker connections killed. Raises ConfigurationError for
    an unknown agent."""
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise ConfigurationError(f"unknown agent {agent_id}")
    killed = acl.delete_user(runtime.redis_client(), agent.id)
    agent.state = "revoked"
    agent.code_sha256 = None
    agent.revoked_at = utcnow()
    return killed
