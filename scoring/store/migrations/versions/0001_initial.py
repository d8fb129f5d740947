"""Initial store schema: rubrics, submissions, machine/human scores, adjudications, models, suspensions,
and the hash-chained audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rubrics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rubric_id", sa.String(80), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("registered_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("rubric_id", "version", name="uq_rubrics_id_version"),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rubric_id", sa.String(80), nullable=False),
        sa.Column("rubric_version", sa.Integer, nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("rubric_id", "external_id", name="uq_submissions_rubric_external"),
    )
    op.create_table(
        "machine_scores",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("criterion", sa.String(80), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("probabilities", sa.JSON, nullable=True),
        sa.Column("prediction_set", sa.JSON, nullable=True),
        sa.Column("route", sa.String(40), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("model_version", sa.String(120), nullable=True),
        sa.Column("policy_version", sa.String(80), nullable=True),
        sa.Column("rubric_id", sa.String(80), nullable=False),
        sa.Column("rubric_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("audit_seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_machine_scores_sub_crit", "machine_scores", ["submission_id", "criterion"])
    op.create_table(
        "human_scores",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("criterion", sa.String(80), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("assessor", sa.String(200), nullable=False),
        sa.Column("rationale", sa.Text, nullable=False),
        sa.Column("blind", sa.Boolean, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("audit_seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_human_scores_sub_crit", "human_scores", ["submission_id", "criterion"])
    op.create_table(
        "adjudications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
        sa.Column("criterion", sa.String(80), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("adjudicator", sa.String(200), nullable=False),
        sa.Column("rationale", sa.Text, nullable=False),
        sa.Column("human_score_ids", sa.JSON, nullable=False),
        sa.Column("machine_score_id", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("audit_seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.String(120), nullable=False, unique=True),
        sa.Column("rubric_id", sa.String(80), nullable=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("registered_at", sa.DateTime, nullable=False),
        sa.Column("promoted_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "suspensions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rubric_id", sa.String(80), nullable=False),
        sa.Column("criterion", sa.String(80), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("suspended_at", sa.DateTime, nullable=False),
        sa.Column("lifted_at", sa.DateTime, nullable=True),
        sa.Column("lifted_by", sa.String(120), nullable=True),
        sa.Column("audit_seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for name in ("audit_log", "suspensions", "models", "adjudications", "human_scores", "machine_scores",
                 "submissions", "rubrics"):
        op.drop_table(name)
