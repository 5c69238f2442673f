"""State tables: seen JWT ids, cards issued, feedback.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Before this store, the replay check kept seen_jti (same columns) in the SQLite file
    # CDS_STATE_DB: an upgraded service keeps it, so tokens seen just before stay refused.
    if not sa.inspect(op.get_bind()).has_table("seen_jti"):
        op.create_table(
            "seen_jti",
            sa.Column("iss", sa.String(512), primary_key=True),
            sa.Column("jti", sa.String(512), primary_key=True),
            sa.Column("exp", sa.Float, nullable=False),
        )
    op.create_index("ix_seen_jti_exp", "seen_jti", ["exp"])
    op.create_table(
        "cards_issued",
        sa.Column("card_uuid", sa.String(64), primary_key=True),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(128), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("issued_at", sa.DateTime, nullable=False),
        sa.Column("silent", sa.Boolean, nullable=False),
    )
    op.create_index("ix_cards_issued_issued_at", "cards_issued", ["issued_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("card_uuid", sa.String(256), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_at", sa.DateTime, nullable=False),
        sa.Column("accepted_suggestions", sa.Text, nullable=False),
        sa.Column("override_system", sa.String(512)),
        sa.Column("override_code", sa.String(256)),
        sa.Column("override_display", sa.String(512)),
        sa.Column("comment_given", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("card_known", sa.Boolean, nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("card_uuid", "outcome", "outcome_at", name="uq_feedback_item"),
    )
    op.create_index("ix_feedback_outcome_at", "feedback", ["outcome_at"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("cards_issued")
    op.drop_table("seen_jti")
