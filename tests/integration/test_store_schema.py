"""The store's schema and the hot path's durability, on a real SQLite file and PostgreSQL."""
from __future__ import annotations

import fcntl
import os

import pytest
from sqlalchemy import create_engine, inspect, text

from connector_tasks.store.db import upgrade

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store(request, tmp_path, postgres_admin_url):
    """The URL of an empty store (nothing migrated yet)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    from tests.harness import fresh_postgres_database

    url, drop = fresh_postgres_database(postgres_admin_url)
    yield url
    drop()


def test_migrations_build_exactly_the_model(empty_store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from connector_tasks.store.models import Base

    upgrade(empty_store)
    engine = create_engine(empty_store)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            assert inspect(conn).get_foreign_keys("inbound_event") == []
    finally:
        engine.dispose()


def test_dropping_the_event_foreign_key_keeps_every_row(empty_store):
    upgrade(empty_store, "0002")
    engine = create_engine(empty_store)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO connection (id, name, system, settings, status, created_at, updated_at) "
                              "VALUES (1, 'c', 'gusto', '{}', 'connected', :t, :t)"), {"t": "2026-01-01 00:00:00"})
            conn.execute(text("INSERT INTO inbound_event (id, system, connection_id, event_uuid, event_type, source, "
                              "payload, status, deliveries, received_at) VALUES (7, 'gusto', 1, 'u-7', "
                              "'payroll.processed', 'webhook', '{}', 'processed', 3, :t)"), {"t": "2026-01-01 00:00:00"})
            conn.execute(text("INSERT INTO sync_job (flow, connection_id, source_id, idempotency_key, status, event_id, warnings, "
                              "attempts, created_at, updated_at) VALUES ('payroll', 1, 'p', 'k', 'done', 7, '[]', 1, :t, :t)"),
                         {"t": "2026-01-01 00:00:00"})
        upgrade(empty_store)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT connection_id, deliveries FROM inbound_event WHERE id = 7")).one() == (1, 3)
            assert conn.execute(text("SELECT event_id FROM sync_job")).scalar() == 7
            schema = inspect(conn)
            assert "ix_inbound_event_status_id" in [i["name"] for i in schema.get_indexes("inbound_event")]
            assert [u["name"] for u in schema.get_unique_constraints("inbound_event")] == ["uq_inbound_event_system_uuid"]
            assert schema.get_foreign_keys("inbound_event") == []
    finally:
        engine.dispose()


def test_sqlite_hot_path_is_flushed_to_disk_after_the_writer_lock_is_released(tmp_path, monkeypatch):
    """SQLITE_SYNCHRONOUS=FULL: the hot connection commits at NORMAL and fdatasyncs the WAL
    itself, outside the writer lock, before ``ingest_event`` returns; at NORMAL it does not."""
    from config.settings import Settings, get_settings, set_settings
    from connector_tasks.store import db, repo

    before = get_settings()

    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    flushed: list[tuple[str, bool]] = []
    real = os.fdatasync

    def watching(fd):
        probe = os.open(f"{tmp_path / 'store.db'}-hotlock", os.O_RDWR)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the writer lock is held
            fcntl.flock(probe, fcntl.LOCK_UN)
            free = True
        except BlockingIOError:
            free = False
        finally:
            os.close(probe)
        flushed.append((os.readlink(f"/proc/self/fd/{fd}"), free))
        real(fd)

    monkeypatch.setattr(db.os, "fdatasync", watching)
    kw = dict(system="gusto", connection_id=None, payload={}, event_type="employee.updated", entity_type=None,
              entity_id=None)
    for level, uuid in (("FULL", "full-1"), ("NORMAL", "normal-1")):
        set_settings(Settings.from_env({"INSTANCE_PATH": str(tmp_path), "SQLITE_SYNCHRONOUS": level}))
        db.drop_hot_connection(url)
        flushed.clear()
        event_id, created = repo.ingest_event(url, event_uuid=uuid, **kw)
        assert created
        assert db.hot_connection(url).raw.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL either way
        if level == "FULL":
            assert flushed == [(f"{tmp_path / 'store.db'}-wal", True)]
        else:
            assert flushed == []
    db.drop_hot_connection(url)
    set_settings(before)


def test_two_writers_merging_different_settings_keys_both_keep_their_change(empty_store):
    """The reference-data job keeping pay schedules while an operator sets the target: each
    merge is one UPDATE in the database, so neither overwrites the other with a stale dict."""
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import Connection

    upgrade(empty_store)
    with session_scope(empty_store) as s:
        conn = Connection(name="g", system="gusto", settings={"webhook_status": "verified", "events_cursor": "e1"})
        s.add(conn)
        s.flush()
        conn_id = conn.id
    with session_scope(empty_store) as job:
        stale = job.get(Connection, conn_id).settings  # the job read the row first
        with session_scope(empty_store) as operator:
            repo.merge_settings(operator, conn_id, {"target": "acumatica"})
        repo.merge_settings(job, conn_id, {"pay_schedules": [{"uuid": "ps-1"}], "events_cursor": "e2"})
        assert "target" not in stale
    with session_scope(empty_store) as s:
        assert s.get(Connection, conn_id).settings == {
            "webhook_status": "verified", "events_cursor": "e2", "target": "acumatica",
            "pay_schedules": [{"uuid": "ps-1"}]}
    with session_scope(empty_store) as s, pytest.raises(ValueError):
        repo.merge_settings(s, conn_id, {"bad key": 1})


def test_tenants_migration_puts_existing_rows_in_the_default_tenant(empty_store):
    """0005 on a store with rows: the default tenant (id 1) owns every connection and job; a
    tenant added afterwards gets the next id (the PostgreSQL sequence moved past 1); a new job
    takes its source connection's tenant."""
    from connector_tasks.store import repo
    from connector_tasks.store.db import session_scope
    from connector_tasks.store.models import Connection, Tenant
    from connector_tasks.tenants import add_tenant

    upgrade(empty_store, "0004")
    engine = create_engine(empty_store)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO connection (name, system, settings, status, created_at, updated_at) "
                              "VALUES ('c', 'gusto', '{}', 'connected', :t, :t)"), {"t": "2026-01-01 00:00:00"})
            conn.execute(text("INSERT INTO sync_job (flow, connection_id, source_id, idempotency_key, status, warnings, "
                              "attempts, revision, created_at, updated_at) SELECT 'payroll', id, 'p', 'k', 'done', "
                              "'[]', 1, 1, :t, :t FROM connection"), {"t": "2026-01-01 00:00:00"})
        upgrade(empty_store)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id, name FROM tenant")).all() == [(1, "default")]
            assert conn.execute(text("SELECT tenant_id FROM connection")).scalar() == 1
            assert conn.execute(text("SELECT tenant_id FROM sync_job")).scalar() == 1
            assert "ix_sync_job_tenant_id_id" in [i["name"] for i in inspect(conn).get_indexes("sync_job")]
    finally:
        engine.dispose()
    with session_scope(empty_store) as s:
        other = add_tenant(s, "acme")
        assert other.id == 2
        s.add(Connection(name="acme-gusto", system="gusto", settings={}, tenant_id=other.id))
        s.flush()
        conn_id = s.scalar(text("SELECT id FROM connection WHERE name = 'acme-gusto'"))
        job, created = repo.claim_job(s, flow="payroll", connection_id=conn_id, target_id=None, source_id="p2",
                                      key="k2")
        assert created and job.tenant_id == 2
        assert s.get(Tenant, 2).name == "acme"
