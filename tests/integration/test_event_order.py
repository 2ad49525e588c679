"""Events in a hostile order — a reversal before the payroll it undoes, a duplicate, a payroll
cancelled and processed again — and the books end in the source's current state. Each step
reads Gusto now, so the order the webhooks arrive in does not decide what is posted. Real
processes and emulators, SQLite and PostgreSQL."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from connector_tasks.store.db import session_scope
from connector_tasks.store.models import SyncJob

pytestmark = pytest.mark.integration


def _new_payroll(dep) -> str:
    r = dep.gusto("POST", "/_sandbox/payrolls", json={"compensations": 2})
    assert r.status_code == 201
    return r.json()["payroll_uuid"]


def _act(dep, pid: str, action: str) -> str:
    r = dep.gusto("POST", f"/_sandbox/payrolls/{pid}/{action}")
    assert r.status_code == 200
    return r.json()["event"]["uuid"]


def _deliver(dep, event_uuid: str) -> None:
    r = dep.gusto("POST", f"/_sandbox/deliveries/redeliver/{event_uuid}", params={"times": 1})
    assert r.status_code == 200


def _job(dep, flow: str, pid: str) -> SyncJob | None:
    with session_scope(dep.settings.database_url) as s:
        job = s.scalar(select(SyncJob).where(SyncJob.flow == flow, SyncJob.source_id == pid))
        if job is not None:
            s.expunge(job)
        return job


def _settled(dep, flow: str, pid: str, *, revision: int = 1, timeout: float = 90) -> SyncJob:
    deadline = time.monotonic() + timeout
    while True:
        job = _job(dep, flow, pid)
        if job and job.revision >= revision and job.status in ("done", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"{flow} of {pid} did not settle: {job and (job.status, job.revision)}"
        time.sleep(0.2)


def _books(dep, pid: str) -> dict[str, int]:
    """remote id → vouchers carrying it, for the payroll's keys."""
    out: dict[str, int] = {}
    for v in dep.vouchers():
        if pid in (v["remote_id"] or ""):
            out[v["remote_id"]] = out.get(v["remote_id"], 0) + 1
    return out


def test_reversal_first_then_processed_then_a_duplicate_leaves_the_books_untouched(deployment):
    dep = deployment
    pid = _new_payroll(dep)
    assert dep.gusto("POST", "/_sandbox/deliveries/drop", json={"count": 2}).status_code == 201
    processed = _act(dep, pid, "process")   # recorded at Gusto, not delivered yet
    reversed_ = _act(dep, pid, "reverse")
    _deliver(dep, reversed_)                # the reversal arrives first
    reversal = _settled(dep, "payroll_reversal", pid)
    assert reversal.status == "done" and "never posted" in " ".join(reversal.warnings)
    _deliver(dep, processed)                # then the payroll it undoes
    job = _settled(dep, "payroll_to_journal", pid)
    assert job.status == "cancelled" and "reversed at the source" in job.last_error
    _deliver(dep, processed)                # and a duplicate
    time.sleep(2)
    again = _job(dep, "payroll_to_journal", pid)
    assert (again.status, again.revision, again.attempts) == ("cancelled", 1, job.attempts)
    assert _books(dep, pid) == {}           # Gusto says reversed: nothing stands in the books


def test_a_payroll_cancelled_and_processed_again_stands_once_in_the_books(deployment):
    dep = deployment
    pid = _new_payroll(dep)
    _act(dep, pid, "process")
    first = _settled(dep, "payroll_to_journal", pid)
    assert first.status == "done"
    _act(dep, pid, "cancel")                # back to unprocessed at Gusto: the journal is reversed
    assert _settled(dep, "payroll_reversal", pid).status == "done"
    assert _books(dep, pid) == {f"gusto-payroll-{pid}": 1, f"gusto-payroll-{pid}-reversal": 1}
    _act(dep, pid, "process")               # processed anew: a newer event, a new revision
    second = _settled(dep, "payroll_to_journal", pid, revision=2)
    assert second.status == "done" and second.revision == 2
    assert _books(dep, pid) == {f"gusto-payroll-{pid}": 1, f"gusto-payroll-{pid}-reversal": 1,
                                f"gusto-payroll-{pid}-r2": 1}
    vouchers = {v["remote_id"]: v for v in dep.vouchers()}
    assert second.target_ref == str(vouchers[f"gusto-payroll-{pid}-r2"]["master_id"])
