"""Agents: one row per enrolled agent (its connections, state, one-time code and broker
password as SHA-256, refused reports). See connector_tasks/agents/models.py.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('connections', sa.JSON(), nullable=False),
                    sa.Column('state', sa.String(length=16), nullable=False),
                    sa.Column('code_sha256', sa.String(length=64), nullable=True),
                    sa.Column('code_expires_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('password_sha256', sa.String(length=64), nullable=True),
                    sa.Column('refused_reports', sa.Integer(), nullable=False, server_default='0'),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('code_sha256', name='uq_agent_code_sha256'))


def downgrade() -> None:
    op.drop_table('agent')
