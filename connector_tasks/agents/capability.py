"""Per-command capabilities: what lets an agent report the outcome of a command it was handed,
and nothing else.

The cloud issues, with every command it sends to an agent's lane, ``capability = HMAC-SHA256(
key, "<agent id>|<subject>|<command>")`` where ``subject`` is ``job:<job id>`` (a job's target
step) or ``request:<connection>:<request id>`` (a masters snapshot), ``command`` the task name
(the Celery task's name) and ``key`` the server secret (``AGENT_CAPABILITY_KEY``, else derived
from ``SECRET_KEY``; neither ever leaves the cloud). The agent echoes it in its report; the
collector recomputes it from the outbox the report came from (the agent id is never taken from
the report) and refuses a report whose capability does not match
(:func:`verify`, constant-time). Source: RFC 2104 (HMAC), Python ``hmac.compare_digest``.
"""
from __future__ import annotations

import hashlib
import hmac

from connector_tasks import runtime


def _key() -> bytes:
    s = runtime.settings()
    explicit = s.environ.get("AGENT_CAPABILITY_KEY", "").strip()
    if explicit:
        return explicit.encode()
    return hmac.new(s.secret_key.encode(), b"ml-connector agent capability v1", hashlib.sha256).digest()


def job_subject(job_id: int) -> str:
    """The subject of job ``job_id``'s target step: ``job:<id>``."""
    return f"job:{int(job_id)}"


def request_subject(connection: str, request_id: str) -> str:
    """The subject of a masters request: ``request:<connection>:<request id>``."""
    return f"request:{connection}:{request_id}"


def issue(agent_id: int, subject: str, command: str) -> str:
    """The capability (64 hex digits) for agent ``agent_id`` to report ``command`` on
    ``subject``."""
    message = f"{int(agent_id)}|{subject}|{command}".encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def verify(agent_id: int, subject: str, command: str, capability) -> bool:
    """True when ``capability`` is what :func:`issue` gives for these three (constant time; a
    non-string or non-ASCII capability is simply False, never an exception)."""
    if not isinstance(capability, str) or not capability.isascii():
        return False
    return hmac.compare_digest(issue(agent_id, subject, command), capability)
