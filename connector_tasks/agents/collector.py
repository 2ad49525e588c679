"""The cloud's side of the agents' outboxes: the collector and the checked recording.

The collector (:class:`Collector`, a thread of every cloud worker that consumes ``default``,
started on Celery's ``worker_ready``) pops reports from every registered agent's outbox
(``BRPOP`` over all of them, 1 s timeout), drops one larger than ``AGENT_REPORT_MAX_BYTES``
(1 MiB by default; counted), and hands the rest, with the agent id *taken from the outbox
key*, to ``connector.record_agent_report`` on ``default`` (:func:`record_agent_report`), which
refuses — logs, counts on the agent's row, leaves the job unchanged — a report that is
malformed, from a revoked agent, of a kind or command it cannot have been handed, with a
capability that does not match (:mod:`.capability`), or for a job/connection not among the
agent's connections. It also recreates the agents' Redis users after a broker restart
(:func:`.acl.reapply`).

A report the collector cannot hand on (``default`` refuses it) goes back to the outbox's tail
for the next round. One popped and lost before it reached ``default`` (a cloud worker killed in
that instant) is not retried: the job stays ``posting`` and the sweeper hands it to the agent again when the posting
lease runs out; the agent's step finds its earlier write by its key and reports again.
"""
from __future__ import annotations

import json
import logging
import threading
import time

import redis as redis_lib
from celery import shared_task, signals
from sqlalchemy import update

from connector_tasks import runtime
from connector_tasks.agents import acl, capability
from connector_tasks.agents.outbox import REQUEST_HANDLERS, _agent_command, max_report_bytes

log = logging.getLogger(__name__)


def _refuse(agent: int, reason: str) -> str:
    from connector_tasks.agents.models import Agent
    from connector_tasks.store.db import session_scope

    log.warning("refused a report from agent %s: %s", agent, reason)
    with session_scope(runtime.settings().database_url) as s:  # one atomic increment
        s.execute(update(Agent).where(Agent.id == agent).values(refused_reports=Agent.refused_reports + 1))
    return f"refused: {reason}"


@shared_task(name="connector.record_agent_report", acks_late=True)
def record_agent_report(agent: int, raw: str, refused: str | None = None) -> str:
    """Check and record a report that the collector took from agent ``agent``'s outbox (the id
    comes from the outbox key, never from the report). Returns ``"recorded"`` or ``"refused:
    <reason>"`` (logged, counted in ``agent.refused_reports``, nothing else changed).
    ``refused``: the collector already refused it (oversized) and only the count is kept."""
    from connector_tasks.agents.models import Agent
    from connector_tasks.jobs.results import record_outcome
    from connector_tasks.jobs.runner import Outcome
    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import Connection, SyncJob

    if refused:
        return _refuse(agent, str(refused)[:200])
    if not isinstance(raw, str) or len(raw.encode()) > max_report_bytes():
        return _refuse(agent, "oversized or not text")
    try:
        report = json.loads(raw)
    except (ValueError, RecursionError):
        return _refuse(agent, "not JSON")
    if not isinstance(report, dict):
        return _refuse(agent, "not a JSON object")
    kind, command, cap = report.get("kind"), report.get("command"), report.get("capability")
    with session_scope(runtime.settings().database_url) as s:
        row = s.get(Agent, agent)
        if row is None or row.state != "active":
            return _refuse(agent, f"agent is {row.state if row else 'unknown'}")
        mine = set(row.connections or [])
        if kind == "outcome" and _agent_command(command):
            job_id = report.get("job_id")
            if not isinstance(job_id, int) or isinstance(job_id, bool):
                return _refuse(agent, "outcome without an integer job_id")
            if not capability.verify(agent, capability.job_subject(job_id), command, cap):
                return _refuse(agent, f"bad capability for {command} of job {job_id}")
            job = s.get(SyncJob, job_id)
            target = s.get(Connection, job.target_id) if job is not None and job.target_id else None
            if target is None or target.name not in mine:
                return _refuse(agent, f"job {job_id} is not one of its connections'")
        elif kind == "request" and command in REQUEST_HANDLERS:
            connection, request_id = report.get("connection"), report.get("request_id")
            if not isinstance(connection, str) or not isinstance(request_id, str):
                return _refuse(agent, "request report without connection/request_id")
            if not capability.verify(agent, capability.request_subject(connection, request_id), command, cap):
                return _refuse(agent, f"bad capability for {command} request {request_id}")
            if connection not in mine:
                return _refuse(agent, f"connection {connection!r} is not its own")
        else:
            return _refuse(agent, f"unknown report kind/command {kind!r}/{command!r}")
    if kind == "outcome":
        try:
            outcome = Outcome.from_wire(job_id, report.get("outcome"))
        except (TypeError, ValueError) as exc:
            return _refuse(agent, f"malformed outcome: {exc}")
        record_outcome(outcome)
    else:
        result = report.get("result")
        if not isinstance(result, dict):
            return _refuse(agent, "request result is not an object")
        REQUEST_HANDLERS[command](connection, request_id, result)
    return "recorded"


class Collector:
    """Drains every registered agent's outbox into ``connector.record_agent_report`` (see the
    module). ``timeout``: seconds one BRPOP waits; ``reapply_every``: seconds between checks
    that every agent's Redis user exists."""

    def __init__(self, timeout: float = 1.0, reapply_every: float = 5.0):
        self.timeout = timeout
        self.reapply_every = reapply_every
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.collected = 0
        self.dropped = 0

    def once(self, client: redis_lib.Redis) -> bool:
        """Wait up to ``timeout`` s for one report and hand it on. True when one was taken."""
        from connector_tasks.celery_app import app

        agents = acl.registered(client)
        if not agents:
            self.stopping.wait(self.timeout)
            return False
        item = client.brpop([acl.outbox_key(a) for a in sorted(agents)], timeout=max(1, int(self.timeout)))
        if item is None:
            return False
        key, value = item
        key = key.decode() if isinstance(key, bytes) else key
        agent = int(key.split(":")[1])
        if len(value) > max_report_bytes():
            # dropped here, unread; counted by a worker process (the store is never opened in
            # the worker's parent process, whose children fork from it)
            self.dropped += 1
            app.send_task("connector.record_agent_report", queue="default",
                          args=[agent, "", f"report of {len(value)} bytes over AGENT_REPORT_MAX_BYTES"])
            return True
        try:
            app.send_task("connector.record_agent_report", args=[agent, value.decode("utf-8", "replace")],
                          queue="default")
        except Exception:
            client.rpush(key, value)  # back where BRPOP takes from: the next round hands it on
            raise
        self.collected += 1
        return True

    def run(self) -> None:
        """Loop until :meth:`stop`: collect; on a broker error wait 1 s and go on; recreate
        missing agent users every ``reapply_every`` s."""
        client = redis_lib.Redis.from_url(runtime.settings().redis_url, socket_timeout=self.timeout + 10,
                                          socket_connect_timeout=5)
        last_check = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() - last_check >= self.reapply_every:
                    acl.reapply(client)
                    last_check = time.monotonic()
                self.once(client)
            except Exception as exc:  # noqa: BLE001 - the broker may be down for a while
                log.warning("agent outbox collector: %s", exc)
                last_check = 0.0
                self.stopping.wait(1.0)

    def start(self) -> "Collector":
        """Run :meth:`run` in a daemon thread."""
        self.thread = threading.Thread(target=self.run, name="agent-outbox-collector", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Ask the loop to end and wait for it (at most ``timeout`` + 5 s)."""
        self.stopping.set()
        if self.thread:
            self.thread.join(self.timeout + 5)


_collector: Collector | None = None


@signals.worker_ready.connect
def _start_collector(sender=None, **_kw) -> None:
    """Start the collector in a cloud worker that consumes ``default`` (never in an agent)."""
    global _collector
    if runtime.settings().environ.get("ML_AGENT_ID"):
        return
    try:
        queues = {q.name for q in sender.app.amqp.queues.consume_from.values()}
    except Exception:  # noqa: BLE001
        queues = set()
    if "default" in queues and _collector is None:
        _collector = Collector().start()
        log.info("agent outbox collector started")


@signals.worker_shutdown.connect
def _stop_collector(**_kw) -> None:
    if _collector is not None:
        _collector.stop()
