"""Agent → cloud: the agent's side of the outbox (the cloud's side: :mod:`.collector`).

An agent never publishes a task that a cloud worker executes. It ``LPUSH``es a JSON report to
its own list ``agent:<id>:outbox`` (:func:`push_report`), at most ``AGENT_REPORT_MAX_BYTES``:

* ``{"v": 1, "kind": "outcome", "command", "job_id", "capability", "outcome": Outcome.to_wire()}``
* ``{"v": 1, "kind": "request", "command", "connection", "request_id", "capability", "result"}``
  (the answer to a request such as a masters snapshot; the system registers the function that
  stores it with :func:`request_handler`)

``capability`` is the one the command came with (:mod:`.capability`).
"""
from __future__ import annotations

import json
import logging

from connector_tasks import runtime
from connector_tasks.agents import acl

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
#: request command → the function storing its result ``fn(connection, request_id, result)``
REQUEST_HANDLERS: dict = {}


def request_handler(command: str):
    """Decorator: ``fn(connection, request_id, result: dict)`` stores the answer an agent gives
    to request ``command`` (once its report checked)."""
    def register(fn):
        """Record ``fn`` as the handler of ``command``; returns it unchanged."""
        REQUEST_HANDLERS[command] = fn
        return fn
    return register


def _agent_command(command) -> bool:
    """True when ``command`` is a task of a system served by an agent (registry prefixes)."""
    from connector_tasks.connectors import registry

    if not isinstance(command, str) or "." not in command:
        return False
    prefix = command.split(".", 1)[0]
    return any(spec.agent_queue and prefix in spec.task_prefixes for spec in registry.BUILTIN)


def max_report_bytes() -> int:
    """``AGENT_REPORT_MAX_BYTES`` (default 16 MiB: a purchase poll carries every changed voucher and,
    after a deletion, the GUID list of the company): the largest report the cloud accepts."""
    raw = runtime.settings().environ.get("AGENT_REPORT_MAX_BYTES", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_BYTES


class ReportTooLarge(ValueError):
    """A report over the size limit: the agent says so instead (see :func:`push_report`)."""


# --- the agent's side -------------------------------------------------------------------------

def agent_id() -> int:
    """This agent's id (``ML_AGENT_ID``, set by the agent's ``run`` command from its credential).
    Raises RuntimeError outside an agent."""
    raw = runtime.settings().environ.get("ML_AGENT_ID", "").strip()
    if not raw.isdigit():
        raise RuntimeError("ML_AGENT_ID is not set: not running as a registered agent")
    return int(raw)


def agent_key(name: str) -> str:
    """``name`` under this agent's key prefix (``agent:<id>:<name>``), the only keys it may use."""
    return f"{acl.key_prefix(agent_id())}{name}"


def push_report(report: dict) -> None:
    """LPUSH ``report`` (JSON) to this agent's outbox. Raises :class:`ReportTooLarge` when its
    JSON is over :func:`max_report_bytes` (nothing pushed), redis errors when the broker is
    unreachable."""
    data = json.dumps({"v": 1, **report}, separators=(",", ":"), default=str)
    if len(data.encode()) > max_report_bytes():
        raise ReportTooLarge(f"report of {len(data.encode())} bytes is over AGENT_REPORT_MAX_BYTES "
                             f"({max_report_bytes()})")
    runtime.redis_client().lpush(acl.outbox_key(agent_id()), data)


def outcome_reporter(command: str, payload: dict):
    """The ``report`` callback of :func:`~connector_tasks.jobs.runner.run_target_step` for an
    agent: pushes each :class:`~connector_tasks.jobs.runner.Outcome` of ``command`` with the
    capability ``payload["capability"]`` the command came with. An outcome too large (e.g. a
    huge error text from the books) is reported ``failed`` with a short error instead."""
    def report(outcome) -> None:
        """Push ``outcome`` (an Outcome) as an ``outcome`` report."""
        base = {"kind": "outcome", "command": command, "job_id": outcome.job_id,
                "capability": payload.get("capability")}
        try:
            push_report({**base, "outcome": outcome.to_wire()})
        except ReportTooLarge as exc:
            wire = outcome.to_wire()
            wire.update(result="failed", target_id=None, detail={}, error=f"the agent's report was refused: {exc}")
            push_report({**base, "outcome": wire})
    return report
