"""statistics counts kept up to date at write time (webhook/stats/cube.py), filled from the
episodes already recorded

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "stat_counts",
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("period", sa.Integer(), primary_key=True),
        sa.Column("dim", sa.String(24), primary_key=True),
        sa.Column("value", sa.String(64), primary_key=True),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("survivors", sa.Integer(), nullable=False),
        sa.Column("sought", sa.Integer(), nullable=False),
        sa.Column("needed", sa.Integer(), nullable=False),
        sa.Column("helped", sa.Integer(), nullable=False),
        sa.Column("others", sa.Integer(), nullable=False),
    )
    from sqlalchemy.orm import Session

    from webhook.stats import cube

    session = Session(bind=op.get_bind())
    for year in cube.years(session):
        cube.rebuild(session, year)
    session.flush()


def downgrade():
    op.drop_table("stat_counts")
