"""inbound_event (status, id) index: the outbox relay and the sweeper find waiting events
without scanning the table (on SQLite the relay's claim holds the write lock while it looks)

Revision ID: 0002
Revises: 0001
"""
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_inbound_event_status_id', 'inbound_event', ['status', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbound_event_status_id', table_name='inbound_event')
