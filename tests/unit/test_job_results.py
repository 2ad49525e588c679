"""Recording an outcome of an older revision than the job's (``jobs.results.record_outcome``) on
a real SQLite store: the newest payload is sent again when the job holds it; when the job holds
an older revision's payload (its newest revision was never prepared: the prepare step found the
job posting) the job is queued and prepared, never the old payload sent round again (that loop
was seen: 5,000 identical posts in 90 s). The broker is replaced by recorders."""
from __future__ import annotations

import pytest

from config.settings import Settings, set_settings
from connector_tasks.connections import open_connection
from connector_tasks.jobs import results
from connector_tasks.jobs.runner import Outcome, Result
from connector_tasks.jobs.states import JobStatus, transition
from connector_tasks.pipeline import tasks as pipeline_tasks
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope, upgrade
from connector_tasks.store.models import DEFAULT_TENANT_ID, SyncJob

DISPATCH = {"task": "tally.sync_employee", "queue": "tally.books"}


@pytest.fixture
def store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    set_settings(Settings.from_env({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": url})
                 .with_overrides(redis_url="redis://unused"))
    upgrade(url)
    sent = {"dispatch": [], "prepare": []}
    monkeypatch.setattr(results, "dispatch", lambda job_id, payload: sent["dispatch"].append((job_id, payload)))
    monkeypatch.setattr(pipeline_tasks, "publish_prepare", lambda job_id, producer=None: sent["prepare"].append(job_id))
    return url, sent


def _posting_job(url, *, revision: int, payload_revision: int) -> int:
    with session_scope(url) as s:
        conn = open_connection(s, "books", "tallyprime", tenant_id=DEFAULT_TENANT_ID)
        job, _ = repo.claim_job(s, flow="employee_to_master", connection_id=conn.id, target_id=None,
                                source_id="emp-1", key="k-emp-1")
        job.revision = revision
        job.payload = {"dispatch": DISPATCH, "revision": payload_revision}
        transition(job, JobStatus.RUNNING, lease=60)
        transition(job, JobStatus.POSTING, lease=60)
        return job.id


def _stale_ok(job_id: int) -> Outcome:
    return Outcome(job_id=job_id, result=Result.OK, target_type="cost_centre", revision=3, target_id="42")


def test_an_older_revisions_outcome_sends_the_newest_payload_again(store):
    url, sent = store
    job_id = _posting_job(url, revision=4, payload_revision=4)
    results.record_outcome(_stale_ok(job_id))
    assert sent["dispatch"] == [(job_id, {"dispatch": DISPATCH, "revision": 4})]
    assert sent["prepare"] == []
    with session_scope(url) as s:
        assert s.get(SyncJob, job_id).status == JobStatus.POSTING


def test_when_the_job_holds_an_older_payload_it_is_prepared_again_not_sent_round(store):
    url, sent = store
    job_id = _posting_job(url, revision=4, payload_revision=3)
    results.record_outcome(_stale_ok(job_id))
    assert sent["dispatch"] == []                  # the old payload is not sent again
    assert sent["prepare"] == [job_id]             # the newest revision gets its prepare step
    with session_scope(url) as s:
        job = s.get(SyncJob, job_id)
        assert job.status == JobStatus.QUEUED and job.target_ref is None
