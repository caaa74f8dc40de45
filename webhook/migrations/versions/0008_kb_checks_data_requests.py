"""knowledge-base checks recorded in the console ("checked by phone on …") and a person's
requests to see their data, with the deadlines of Decree 356/2025 Art. 5; canned responses that
gave the counselling line as digits now give it as the marker rendered from the directory (it is
left out while the line is not verified), and 111 is offered for trafficking too

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "kb_checks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item_id", sa.String(300), nullable=False),
        sa.Column("checked_on", sa.Date(), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("hours", sa.String(120), nullable=True),
        sa.Column("note", sa.String(300), nullable=True),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_kb_checks_item", "kb_checks", ["kind", "item_id"])
    op.create_table(
        "data_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contacts.id"), nullable=False, index=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("asked_at", sa.Float(), nullable=False),
        sa.Column("reply_due", sa.Float(), nullable=False),
        sa.Column("due", sa.Float(), nullable=False),
        sa.Column("replied_at", sa.Float(), nullable=True),
        sa.Column("done_at", sa.Float(), nullable=True),
        sa.Column("actor", sa.String(64), nullable=True),
    )
    _canned()


OLD_CLOSING = "gọi 113; Trung tâm Công tác xã hội: 1800 1581."
NEW_CLOSING = "gọi 113.[[line: Trung tâm Công tác xã hội: @line (@hours).]]"
OLD_LINE = " Trung tâm Công tác xã hội: 1800 1581."
NEW_LINE = "[[line: Trung tâm Công tác xã hội: @line (@hours).]]"
OLD_111 = "Trẻ em gặp nguy hiểm: gọi 111 (miễn phí, 24/7)."
NEW_111 = "Trẻ em gặp nguy hiểm, hoặc báo tin mua bán người (mọi lứa tuổi): gọi 111 (miễn phí, 24/7)."


def _canned():
    table = sa.table("canned_responses", sa.column("body", sa.Text))
    for old, new in ((OLD_CLOSING, NEW_CLOSING), (OLD_LINE, NEW_LINE), (OLD_111, NEW_111)):
        op.execute(table.update().where(table.c.body.contains(old))
                   .values(body=sa.func.replace(table.c.body, old, new)))


def downgrade():
    op.drop_table("data_requests")
    op.drop_index("ix_kb_checks_item", "kb_checks")
    op.drop_table("kb_checks")
