"""Queue rank (the policy's order within a priority) and batch-job work folders (resume after restart).

Revision ID: 0003_one_core
Revises: 0002_api
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_one_core"
down_revision = "0002_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_items") as b:
        b.add_column(sa.Column("rank", sa.Float, nullable=False, server_default="0"))
    with op.batch_alter_table("batch_jobs") as b:
        b.add_column(sa.Column("workdir", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batch_jobs") as b:
        b.drop_column("workdir")
    with op.batch_alter_table("queue_items") as b:
        b.drop_column("rank")
