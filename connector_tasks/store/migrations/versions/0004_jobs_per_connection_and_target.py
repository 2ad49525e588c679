"""Jobs per (connection, target, flow, source id) with the source version and a revision;
external references per target connection; runtime state out of the settings JSON.

* ``sync_job``: ``target_id`` (the target connection; existing rows get their source
  connection's ``settings.target``), ``source_version``, ``revision`` (1); unique
  ``(connection_id, target_id, flow, source_id)`` replaces unique ``(flow, source_id)`` and
  unique ``idempotency_key`` (one key may now live in two targets' books); indexes on
  ``source_id``, ``idempotency_key`` and ``(status, lease_until)`` (the sweeper's scan).
* ``inbound_event.entity_version``.
* ``external_ref.connection_id`` is the target connection (existing rows were recorded under
  the source connection: moved to its target); unique per (target connection, source object).
* ``connection_state`` rows hold what the connector learns while it runs; the keys that used
  to sit in ``connection.settings`` move there, and ``settings.target`` becomes
  ``settings.targets`` (a list).

Revision ID: 0004
Revises: 0003
"""
import datetime as dt
import json

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

#: settings keys that are runtime state (moved to connection_state), and key endings that are
#: (a target's masters snapshot and its last request)
STATE_KEYS = ("events_cursor", "events_polled_at", "webhook_status", "webhook_subscription", "webhook_url",
              "pay_schedules", "earning_types")
STATE_ENDINGS = ("_masters", "_masters_request")

# 0001 left these unique constraints unnamed: PostgreSQL named them itself; on SQLite batch mode
# finds them through this naming convention (Alembic, "Dropping Unnamed or Named Foreign Key
# Constraints" and the same for unique constraints).
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _settings(raw):
    if raw is None:
        return {}
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    now = dt.datetime.now(dt.timezone.utc)

    op.create_table('connection_state',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('connection_id', sa.Integer(), nullable=False),
                    sa.Column('key', sa.String(length=64), nullable=False),
                    sa.Column('value', sa.JSON(), nullable=True),
                    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
                    sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], ),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('connection_id', 'key', name='uq_connection_state_conn_key'))

    with op.batch_alter_table('inbound_event') as batch_op:
        batch_op.add_column(sa.Column('entity_version', sa.BigInteger(), nullable=True))

    # runtime state out of the settings, target → targets
    connections = sa.table('connection', sa.column('id', sa.Integer), sa.column('name', sa.String),
                           sa.column('settings', sa.JSON))
    state = sa.table('connection_state', sa.column('connection_id', sa.Integer), sa.column('key', sa.String),
                     sa.column('value', sa.JSON), sa.column('updated_at', sa.DateTime(timezone=True)))
    by_name, target_of = {}, {}
    for cid, name, raw in bind.execute(sa.select(connections.c.id, connections.c.name, connections.c.settings)).all():
        by_name[name] = cid
        settings = _settings(raw)
        moved = {k: settings.pop(k) for k in list(settings) if k in STATE_KEYS or k.endswith(STATE_ENDINGS)}
        if "target" in settings:
            target = settings.pop("target")
            settings.setdefault("targets", [target] if target else [])
            if target:
                target_of[cid] = target
        elif settings.get("targets"):
            target_of[cid] = settings["targets"][0]
        for key, value in moved.items():
            bind.execute(state.insert().values(connection_id=cid, key=key, value=value, updated_at=now))
        bind.execute(connections.update().where(connections.c.id == cid).values(settings=settings))
    target_ids = {cid: by_name.get(name) for cid, name in target_of.items()}

    # sync_job: target, version, revision; the new unique key
    names = {} if postgres else {"naming_convention": _SQLITE_NAMES}
    with op.batch_alter_table('sync_job', **names) as batch_op:
        batch_op.add_column(sa.Column('target_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('source_version', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), nullable=False, server_default='1'))
    jobs = sa.table('sync_job', sa.column('id', sa.Integer), sa.column('connection_id', sa.Integer),
                    sa.column('target_id', sa.Integer))
    for cid, tid in target_ids.items():
        if tid is not None:
            bind.execute(jobs.update().where(jobs.c.connection_id == cid).values(target_id=tid))
    with op.batch_alter_table('sync_job', **names) as batch_op:
        batch_op.alter_column('revision', server_default=None)
        batch_op.drop_constraint('uq_sync_job_flow_source', type_='unique')
        batch_op.drop_constraint('sync_job_idempotency_key_key' if postgres else 'uq_sync_job_idempotency_key',
                                 type_='unique')
        batch_op.create_foreign_key('fk_sync_job_target_id_connection', 'connection', ['target_id'], ['id'])
        batch_op.create_unique_constraint('uq_sync_job_conn_target_flow_source',
                                          ['connection_id', 'target_id', 'flow', 'source_id'])
        batch_op.create_index('ix_sync_job_idempotency_key', ['idempotency_key'], unique=False)
        batch_op.create_index('ix_sync_job_source_id', ['source_id'], unique=False)
        batch_op.create_index('ix_sync_job_status_lease', ['status', 'lease_until'], unique=False)

    # external_ref: recorded under the target connection
    refs = sa.table('external_ref', sa.column('connection_id', sa.Integer))
    for cid, tid in target_ids.items():
        if tid is not None:
            bind.execute(refs.update().where(refs.c.connection_id == cid).values(connection_id=tid))
    with op.batch_alter_table('external_ref') as batch_op:
        batch_op.drop_constraint('uq_external_ref_source_target', type_='unique')
        batch_op.create_unique_constraint('uq_external_ref_target_source',
                                          ['connection_id', 'source_system', 'source_type', 'source_id'])


def downgrade() -> None:
    with op.batch_alter_table('external_ref') as batch_op:
        batch_op.drop_constraint('uq_external_ref_target_source', type_='unique')
        batch_op.create_unique_constraint('uq_external_ref_source_target',
                                          ['source_system', 'source_type', 'source_id', 'target_system'])
    with op.batch_alter_table('sync_job') as batch_op:
        batch_op.drop_index('ix_sync_job_status_lease')
        batch_op.drop_index('ix_sync_job_source_id')
        batch_op.drop_index('ix_sync_job_idempotency_key')
        batch_op.drop_constraint('uq_sync_job_conn_target_flow_source', type_='unique')
        batch_op.drop_constraint('fk_sync_job_target_id_connection', type_='foreignkey')
        batch_op.create_unique_constraint('uq_sync_job_flow_source', ['flow', 'source_id'])
        batch_op.create_unique_constraint('uq_sync_job_idempotency_key', ['idempotency_key'])
        batch_op.drop_column('revision')
        batch_op.drop_column('source_version')
        batch_op.drop_column('target_id')
    with op.batch_alter_table('inbound_event') as batch_op:
        batch_op.drop_column('entity_version')
    op.drop_table('connection_state')
