"""case queue: priority, request flag, machine summary, claim, alert and outcome fields

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="3"))
        batch.add_column(sa.Column("requested", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("summary", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("alerted_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("notice_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("resolved_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=32), nullable=True))
        batch.create_index("ix_cases_queue", ["status", "priority", "created_at"])


def downgrade():
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_queue")
        for name in ("outcome", "resolved_at", "notice_at", "alerted_at", "claimed_at", "claimed_by", "summary", "requested",
                     "priority"):
            batch.drop_column(name)
