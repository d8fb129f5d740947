"""Revocation status list slots of issued credentials (W3C Bitstring Status List), each logged.

Revision ID: 0007_credential_status
Revises: 0006_canonical_form
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_credential_status"
down_revision = "0006_canonical_form"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_status",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("credential_id", sa.String(200), nullable=False, unique=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("decision_id", sa.Integer, nullable=False),
        sa.Column("issuer_id", sa.String(500), nullable=False),
        sa.Column("list_number", sa.Integer, nullable=False),
        sa.Column("status_index", sa.Integer, nullable=False),
        sa.Column("issued_seq", sa.Integer, nullable=False),
        sa.Column("revoked_seq", sa.Integer, nullable=True),
        sa.UniqueConstraint("issuer_id", "list_number", "status_index", name="uq_credential_status_slot"),
    )
    op.create_index("ix_credential_status_submission", "credential_status", ["submission_id"])


def downgrade() -> None:
    op.drop_index("ix_credential_status_submission", "credential_status")
    op.drop_table("credential_status")
