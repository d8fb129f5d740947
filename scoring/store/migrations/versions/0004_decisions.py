"""Credential decisions per submission (machine and final), each logged in the audit chain.

Revision ID: 0004_decisions
Revises: 0003_one_core
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_decisions"
down_revision = "0003_one_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("rubric_id", sa.String(80), nullable=False),
        sa.Column("rubric_version", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("basis", sa.String(20), nullable=False),
        sa.Column("p_earned", sa.Float, nullable=True),
        sa.Column("levels", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("model_version", sa.String(120), nullable=True),
        sa.Column("policy_version", sa.String(160), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("audit_seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_decisions_submission", "decisions", ["submission_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_decisions_submission", "decisions")
    op.drop_table("decisions")
