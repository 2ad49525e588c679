"""Tenants and operator API tokens.

* ``tenant`` (id, unique name); row 1 ``default`` is created here and owns every existing
  connection and job.
* ``api_token``: hashed operator tokens (SHA-256 hex, unique), role ``operator``/``admin``,
  revocation time. ``API_TOKEN`` from the environment, if set, keeps working as an admin of
  the default tenant (checked by the web app; nothing is stored for it).
* ``connection.tenant_id`` (foreign key, indexed) and ``sync_job.tenant_id`` (the source
  connection's, copied at insert; indexed with ``id`` for the operator's newest-first list;
  no foreign key, like ``inbound_event.connection_id`` in 0003). Events, attempts, state,
  mappings and external references belong to the tenant of their connection or job.

Revision ID: 0005
Revises: 0004
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

DEFAULT_TENANT_ID = 1


def upgrade() -> None:
    tenant = op.create_table('tenant',
                             sa.Column('id', sa.Integer(), nullable=False),
                             sa.Column('name', sa.String(length=64), nullable=False),
                             sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                             sa.PrimaryKeyConstraint('id'),
                             sa.UniqueConstraint('name'))
    op.bulk_insert(tenant, [{"id": DEFAULT_TENANT_ID, "name": "default",
                             "created_at": dt.datetime.now(dt.timezone.utc)}])
    if op.get_bind().dialect.name == "postgresql":  # the explicit id above does not move the sequence
        op.execute("SELECT setval(pg_get_serial_sequence('tenant', 'id'), (SELECT max(id) FROM tenant))")
    op.create_table('api_token',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('tenant_id', sa.Integer(), nullable=False),
                    sa.Column('role', sa.String(length=16), nullable=False),
                    sa.Column('token_hash', sa.String(length=64), nullable=False),
                    sa.Column('label', sa.String(length=128), nullable=True),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
                    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('token_hash'))
    op.create_index('ix_api_token_tenant_id', 'api_token', ['tenant_id'])

    for table in ('connection', 'sync_job'):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column('tenant_id', sa.Integer(), nullable=True))
        op.execute(f"UPDATE {table} SET tenant_id = {DEFAULT_TENANT_ID}")
    with op.batch_alter_table('connection') as batch_op:
        batch_op.alter_column('tenant_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key('fk_connection_tenant_id_tenant', 'tenant', ['tenant_id'], ['id'])
        batch_op.create_index('ix_connection_tenant_id', ['tenant_id'])
    with op.batch_alter_table('sync_job') as batch_op:
        batch_op.alter_column('tenant_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_index('ix_sync_job_tenant_id_id', ['tenant_id', 'id'])


def downgrade() -> None:
    with op.batch_alter_table('sync_job') as batch_op:
        batch_op.drop_index('ix_sync_job_tenant_id_id')
        batch_op.drop_column('tenant_id')
    with op.batch_alter_table('connection') as batch_op:
        batch_op.drop_index('ix_connection_tenant_id')
        batch_op.drop_constraint('fk_connection_tenant_id_tenant', type_='foreignkey')
        batch_op.drop_column('tenant_id')
    op.drop_index('ix_api_token_tenant_id', table_name='api_token')
    op.drop_table('api_token')
    op.drop_table('tenant')
