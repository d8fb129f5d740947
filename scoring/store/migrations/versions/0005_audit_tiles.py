"""Merkle tile cache of the audit log (complete 1024-leaf subtrees) for fast inclusion proofs, and an
index of the log by event kind.

Revision ID: 0005_audit_tiles
Revises: 0004_decisions
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_audit_tiles"
down_revision = "0004_decisions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_tiles",
        sa.Column("tile", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_event", "audit_log", ["event", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_event", "audit_log")
    op.drop_table("audit_tiles")
