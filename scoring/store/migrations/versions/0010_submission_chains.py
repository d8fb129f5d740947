"""Which first attempt each resubmission belongs to (a chain of attempts, metadata ``revises``).

Revision ID: 0010_submission_chains
Revises: 0009_batch_job_control
Create Date: 2026-12-05

A resubmission names the attempt it revises in its metadata; the chain of one educator's attempts is the
path of those links back to the first attempt. The queue must not give a BLIND slot of one attempt to a
person who claimed, rated or adjudicated another attempt of the same chain (they know how the earlier one
was judged), and that rule is one SQL condition when each resubmission carries its chain's first attempt.
Rows exist for resubmissions only (a first attempt is its own root). Filled here from the stored metadata.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_submission_chains"
down_revision = "0009_batch_job_control"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submission_chains",
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), primary_key=True),
        sa.Column("root_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
    )
    op.create_index("ix_submission_chains_root", "submission_chains", ["root_id"])
    subs = sa.table("submissions", sa.column("id", sa.Integer), sa.column("rubric_id", sa.String),
                    sa.column("external_id", sa.String), sa.column("meta", sa.JSON))
    chains = sa.table("submission_chains", sa.column("submission_id", sa.Integer), sa.column("root_id", sa.Integer))
    conn = op.get_bind()
    ids: dict[tuple[str, str], int] = {}
    root: dict[int, int] = {}
    for r in conn.execute(sa.select(subs.c.id, subs.c.rubric_id, subs.c.external_id, subs.c.meta).order_by(subs.c.id)):
        ids[(r.rubric_id, r.external_id)] = int(r.id)
        prev = (r.meta or {}).get("revises") if isinstance(r.meta, dict) else None
        first = ids.get((r.rubric_id, str(prev))) if prev else None
        if first is not None and first != int(r.id):
            root[int(r.id)] = root.get(first, first)
            conn.execute(chains.insert().values(submission_id=int(r.id), root_id=root[int(r.id)]))


def downgrade() -> None:
    op.drop_index("ix_submission_chains_root", "submission_chains")
    op.drop_table("submission_chains")
