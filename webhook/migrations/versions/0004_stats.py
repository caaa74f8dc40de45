"""anonymised contact statistics: episodes, year keys, serious-incident reports; case fields the
counsellor sets for statistics (GBVIMS type, consent to be counted)

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "stat_year_keys",
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("salt", sa.String(64), nullable=True),        # NULL once the year is closed
        sa.Column("closed_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "stat_episodes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("person", sa.String(32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("locality", sa.String(64), nullable=True),
        sa.Column("former_district", sa.String(32), nullable=True),
        sa.Column("topic", sa.String(32), nullable=True),
        sa.Column("gbv_type", sa.String(24), nullable=False),
        sa.Column("reporter", sa.String(24), nullable=False),
        sa.Column("age_group", sa.String(8), nullable=False),
        sa.Column("sex", sa.String(8), nullable=False),
        sa.Column("relationship", sa.String(32), nullable=True),
        sa.Column("risk", sa.String(16), nullable=False),
        sa.Column("sought_help", sa.Boolean(), nullable=False),
        sa.Column("needed_help", sa.Boolean(), nullable=False),
        sa.Column("helped", sa.Boolean(), nullable=True),
        sa.Column("consent", sa.String(12), nullable=False),
        sa.UniqueConstraint("person", "year", "month", name="uq_episode_person_month"),
    )
    op.create_index("ix_episodes_period", "stat_episodes", ["year", "month"])
    op.create_table(
        "incident_reports",
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("opened_day", sa.Date(), nullable=False),
        sa.Column("due_day", sa.Date(), nullable=False),
        sa.Column("drafted_at", sa.Float(), nullable=True),
        sa.Column("submitted_at", sa.Float(), nullable=True),
        sa.Column("submitted_by", sa.String(64), nullable=True),
    )
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("gbv_type", sa.String(24), nullable=True))
        batch.add_column(sa.Column("stats_consent", sa.String(12), nullable=True))


def downgrade():
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("stats_consent")
        batch.drop_column("gbv_type")
    op.drop_table("incident_reports")
    op.drop_index("ix_episodes_period", "stat_episodes")
    op.drop_table("stat_episodes")
    op.drop_table("stat_year_keys")
