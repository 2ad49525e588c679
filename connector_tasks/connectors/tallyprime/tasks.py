"""TallyPrime tasks, run by the local agent ``tally_worker`` on queue ``tally.<connection>``.

The agent holds no database credentials: it talks to TallyPrime and reports each outcome back
through the broker (``connector.record_post_result`` on the ``default`` queue).
"""
from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from connector_tasks import runtime
from connector_tasks.connectors.tallyprime.client import TallyClient
from connector_tasks.core.errors import ConnectorError
from connector_tasks.core.locks import leased_lock
from connector_tasks.core.retry import countdown
from connector_tasks.domain.model import JournalEntry, LedgerMaster
from connector_tasks.jobs import describe
from connector_tasks.store.models import utcnow

log = logging.getLogger(__name__)


def _report(job_id: int, outcome: dict) -> None:
    from connector_tasks.celery_app import app

    app.send_task("connector.record_post_result", args=[job_id, outcome], queue="default")


@shared_task(name="tally.post_journal", bind=True, acks_late=True, max_retries=8)
def post_journal(self, job_id: int, payload: dict) -> None:
    """Post the journal of job ``job_id`` to TallyPrime exactly once.

    ``payload``: ``{"entry": JournalEntry.to_dict(), "company": str, "ledgers": [LedgerMaster
    dicts], "cost_centres": [[category, centre], ...]}``. Asks Tally whether the voucher's
    REMOTEID exists first, creates missing ledgers and cost centres, imports the voucher, and
    reports ``ok`` with the voucher's id, ``retry`` (Tally down, company not loaded, timeout:
    retried with countdown) or ``failed`` with Tally's own text (LINEERROR, nothing created).
    """
    started = utcnow().isoformat()
    base = {"task_id": self.request.id, "worker": self.request.hostname, "started_at": started,
            "phase": "post", "source_system": payload.get("source_system", "gusto"),
            "source_type": payload.get("source_type", "payroll"),
            "target_system": "tallyprime", "target_type": "voucher"}
    try:
        entry = JournalEntry.from_dict(payload["entry"])
        settings = runtime.settings()
        url = settings.tally_url
        client = TallyClient(url, payload["company"], timeout=(5, settings.tally_timeout))
        # One request in flight per Tally instance, even with two agents on one queue; and the
        # look-up, the masters and the import happen under one hold, so no one posts between.
        with leased_lock(runtime.redis_client(), f"lock:tally:{url}", system="tallyprime"):
            existing = client.find_journal(entry.key)
            if existing:
                _report(job_id, {**base, "outcome": "ok", "target_id": existing,
                                 "detail": {"already_in_tally": True, "remote_id": entry.key}})
                return
            ledgers = [LedgerMaster(**m) for m in payload.get("ledgers", [])]
            centres = [tuple(c) for c in payload.get("cost_centres", [])]
            created = client.ensure_ledgers(ledgers, centres)
            voucher_id = client.post_journal(entry)
        _report(job_id, {**base, "outcome": "ok", "target_id": voucher_id,
                         "detail": {"remote_id": entry.key, "masters_created": created}})
    except (ConnectorError, SoftTimeLimitExceeded) as exc:
        # A soft time limit means Tally was slow: nothing known about the effect, so retry
        # (the look-up by REMOTEID comes first next time).
        retryable = exc.retryable if isinstance(exc, ConnectorError) else True
        retries = self.request.retries or 0
        if retryable and retries < self.max_retries:
            _report(job_id, {**base, "outcome": "retry", "error": describe(exc)})
            raise self.retry(countdown=countdown(retries, getattr(exc, "retry_after", None),
                                                base=runtime.settings().retry_base), exc=exc)
        _report(job_id, {**base, "outcome": "failed", "error": describe(exc),
                         "detail": {"lines": list(getattr(exc, "lines", []) or [])}})
    except Exception as exc:  # a bug or a malformed payload: park it, never lose it silently
        log.exception("tally.post_journal failed for job %s", job_id)
        _report(job_id, {**base, "outcome": "failed", "error": describe(exc)})
