"""A batch job can be cancelled, and says how often a server restart interrupted it.

Revision ID: 0009_batch_job_control
Revises: 0008_queue_claims
Create Date: 2026-12-04

``cancelled_by`` / ``cancelled_at``: who stopped a queued or running job, and when (the rows it recorded
before it stopped stay recorded). ``resumes``: how many times a server found the job running when it
started and resumed it, so an issuer polling a job that paused for a while can see why.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_batch_job_control"
down_revision = "0008_queue_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch_jobs") as b:
        b.add_column(sa.Column("cancelled_by", sa.String(200), nullable=True))
        b.add_column(sa.Column("cancelled_at", sa.DateTime, nullable=True))
        b.add_column(sa.Column("resumes", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("batch_jobs") as b:
        b.drop_column("resumes")
        b.drop_column("cancelled_at")
        b.drop_column("cancelled_by")
