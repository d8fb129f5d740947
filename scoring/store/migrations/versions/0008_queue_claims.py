"""Every claim of a queue slot, kept after the slot is given back or taken over (blind-slot eligibility).

Revision ID: 0008_queue_claims
Revises: 0007_credential_status
Create Date: 2026-12-03

A slot's ``holder`` is cleared when it is released and replaced when an expired lease is taken over, so
the queue alone forgets who has seen a submission. A person who held a slot that showed the machine's
scores must never be offered a blind slot of that submission later (a later policy may turn the same slot
blind, or add a blind one): this table remembers each claim and whether the slot was blind at the time.
Slots claimed when the migration runs are copied in; earlier, released claims were never recorded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_queue_claims"
down_revision = "0007_credential_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_claims",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("queue_items.id"), nullable=False),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("assessor", sa.String(200), nullable=False),
        sa.Column("blind", sa.Boolean, nullable=False),
        sa.Column("claimed_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_queue_claims_submission_assessor", "queue_claims", ["submission_id", "assessor"])
    op.execute(
        "INSERT INTO queue_claims (item_id, submission_id, assessor, blind, claimed_at) "
        "SELECT id, submission_id, holder, blind, created_at FROM queue_items "
        "WHERE status = 'claimed' AND holder IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_queue_claims_submission_assessor", "queue_claims")
    op.drop_table("queue_claims")
