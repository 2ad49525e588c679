"""inbound_event.connection_id without a foreign key: the webhook hot path inserts one row per
delivery, and on PostgreSQL a foreign key makes each insert lock the connection's row
(``SELECT … FOR KEY SHARE``: concurrent webhooks of one connection share that lock through a
MultiXact, a WAL record each); measured ~10 % of ingest throughput (bench/README.md). The
column keeps the connection's id; connections are never deleted (a disconnected one keeps its
row and status), so the events' history stays readable.

Revision ID: 0003
Revises: 0002
"""
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# 0001 left the constraint unnamed: PostgreSQL named it itself; on SQLite batch mode finds it
# through this naming convention (Alembic, "Dropping Unnamed or Named Foreign Key Constraints").
_SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint('inbound_event_connection_id_fkey', 'inbound_event', type_='foreignkey')
    else:
        with op.batch_alter_table('inbound_event', naming_convention=_SQLITE_NAMES) as batch_op:
            batch_op.drop_constraint('fk_inbound_event_connection_id_connection', type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('inbound_event') as batch_op:
        batch_op.create_foreign_key('inbound_event_connection_id_fkey', 'connection', ['connection_id'], ['id'])
