"""campaign broadcasts: subscribers with their consent records, campaigns and one send row per
(campaign, subscriber)

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contacts.id"), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("locality", sa.String(32), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("consent_version", sa.String(16), nullable=True),
        sa.Column("consent_at", sa.Float(), nullable=True),
        sa.Column("pending_at", sa.Float(), nullable=True),
        sa.Column("opted_out_at", sa.Float(), nullable=True),
        sa.Column("opt_out_reason", sa.String(32), nullable=True),
        sa.Column("self_opted_in", sa.Boolean(), nullable=False),
        sa.Column("safe_start", sa.Integer(), nullable=True),
        sa.Column("safe_end", sa.Integer(), nullable=True),
        sa.Column("do_not_contact", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_subscribers_status", "subscribers", ["status", "id"])
    op.create_table(
        "consent_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("subscribers.id"), nullable=False, index=True),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("version", sa.String(16), nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("detail", sa.String(64), nullable=True),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("occasion", sa.String(32), nullable=True),
        sa.Column("content", sa.String(64), nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("locality", sa.String(32), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("channels", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("approved_at", sa.Float(), nullable=True),
        sa.Column("start_at", sa.Float(), nullable=True),
        sa.Column("planned_at", sa.Float(), nullable=True),
        sa.Column("planned", sa.Integer(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "campaign_sends",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_at", sa.Float(), nullable=True),
        sa.Column("claimed_until", sa.Float(), nullable=True),
        sa.Column("provider_msg_id", sa.String(128), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("campaign_id", "subscriber_id", name="uq_send_campaign_subscriber"),
    )
    op.create_index("ix_sends_work", "campaign_sends", ["campaign_id", "state", "id"])
    op.create_index("ix_sends_subscriber_day", "campaign_sends", ["subscriber_id", "sent_at"])
    op.create_index("ix_sends_provider", "campaign_sends", ["channel", "provider_msg_id"])


def downgrade():
    op.drop_table("campaign_sends")
    op.drop_table("campaigns")
    op.drop_table("consent_records")
    op.drop_index("ix_subscribers_status", "subscribers")
    op.drop_table("subscribers")
