"""the conversation's context, carried from one message to the next (bot/context.py): its
highest risk so far (never lowered without a counsellor), its most salient topic, and the
question the bot's last reply asked; labels only, no text

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("conversations") as b:
        b.add_column(sa.Column("risk", sa.String(10), nullable=False, server_default="none"))
        b.add_column(sa.Column("topic", sa.String(32), nullable=True))
        b.add_column(sa.Column("asked", sa.String(16), nullable=True))


def downgrade():
    with op.batch_alter_table("conversations") as b:
        b.drop_column("asked")
        b.drop_column("topic")
        b.drop_column("risk")
