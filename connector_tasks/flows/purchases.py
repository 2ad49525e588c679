"""The purchase flow's prepare step (flow ``purchase_to_order``): a purchase source's document
→ an inventory target's purchase order and receipt (or return), over ports.

The step reads the document as the source last reported it (the source's ports,
``purchase(source_id)``), asks the target side (its registry ``target`` module) for a payload —
matching happens there, exactly, and an unmatched vendor or SKU parks the job naming them — and
hands it to the target's task. A document cancelled or deleted at the source cancels what the
target holds for it; when the target holds nothing yet the job ends ``cancelled`` at once. An
optional (memorandum) voucher that never reached the target ends ``done`` with a note.

Target module functions used (an inventory target's registry ``target`` module):
``purchase_payload(target, purchase, key=, known=, since=, source_label=)``,
``cancel_payload(target, purchase, key=, known=, since=, reason=)`` and
``holds(target, key, known, since, number) -> bool``.
"""
from __future__ import annotations

from connector_tasks import runtime
from connector_tasks.flows.catalog import get_flow
from connector_tasks.flows.context import load_job
from connector_tasks.jobs.runner import finish, hand_to_target
from connector_tasks.jobs.states import JobStatus
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, SyncJob


def prepare_purchase(job_id: int) -> dict | None:
    """Prepare job ``job_id`` of flow ``purchase_to_order``; returns the payload handed to the
    target, or ``None`` when the job ended here (nothing to send).

    Raises MappingError (``unmatched in <target>: vendor …; SKU …`` — parked, replayable once
    they exist), ConfigurationError (no target, settings) and the target's API errors (retried
    when transient)."""
    ctx = load_job(job_id)
    purchase = ctx.source_port().purchase(ctx.source_id)
    module = ctx.target.spec.load("target")
    flow = get_flow(ctx.flow)
    with session_scope(runtime.settings().database_url) as s:
        ref = repo.find_ref(s, connection_id=ctx.target.id, source_system=ctx.source.system,
                            source_type=flow.source_type, source_id=ctx.source_id)
        known = {"type": ref.target_type, "id": ref.target_id} if ref else None
        since = s.get(SyncJob, job_id).created_at.isoformat()
    label = ctx.source.spec.title
    what = "debit note" if purchase.kind == "return" else "purchase voucher"
    if purchase.undone or (purchase.optional and known):
        how = "deleted" if purchase.deleted else "cancelled" if purchase.cancelled else "made optional"
        reason = f"{what} {purchase.number or ctx.source_id} was {how} in {label}"
        if not module.holds(_row(ctx.target.id), ctx.key, known, since, purchase.number):
            finish(job_id, ctx.revision, JobStatus.CANCELLED,
                   error=f"{reason} before it reached {ctx.target.spec.title}; nothing to cancel")
            return None
        payload = module.cancel_payload(_row(ctx.target.id), purchase, key=ctx.key, known=known, since=since,
                                        reason=reason)
    elif purchase.optional:
        finish(job_id, ctx.revision, JobStatus.DONE,
               warnings=[f"{what} {purchase.number} is optional (a memorandum) in {label}: nothing sent"])
        return None
    else:
        payload = module.purchase_payload(_row(ctx.target.id), purchase, key=ctx.key, known=known, since=since,
                                          source_label=label)
    hand_to_target(job_id, ctx.revision, payload)
    return payload


def _row(connection_id: int) -> Connection:
    """The connection row ``connection_id``, detached (for a target module's look-ups)."""
    with session_scope(runtime.settings().database_url) as s:
        conn = s.get(Connection, connection_id)
        s.expunge(conn)
        return conn
