"""Tables of the service layer (issue #4): API keys, the assessors' work queue, idempotency keys, batch jobs.

They are attached to the store's one ``MetaData`` (``scoring.store.tables.metadata``) so the schema test
that compares migrations with table definitions covers them too; they are created by migration
``0002_api`` (``migrations/versions/0002_api.py``). None of them is audited: the score events they lead to
(human scores submitted through the queue) are written to the audit log by the store as usual.
"""

from __future__ import annotations

import sqlalchemy as sa

from scoring.store.tables import metadata

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key_id", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)

queue_items = sa.Table(
    "queue_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
    sa.Column("criteria", sa.JSON, nullable=False),
    sa.Column("route", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("blind", sa.Boolean, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("rank", sa.Float, nullable=False, server_default="0"),  # within a priority: lower is claimed first
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("holder", sa.String(200), nullable=True),
    sa.Column("lease_token", sa.String(64), nullable=True),
    sa.Column("lease_expires", sa.DateTime, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("done_at", sa.DateTime, nullable=True),
    sa.UniqueConstraint("submission_id", "kind", name="uq_queue_items_submission_kind"),
    sa.Index("ix_queue_items_status_priority", "status", "priority", "id"),
)

queue_skips = sa.Table(
    "queue_skips",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("queue_items.id"), primary_key=True),
    sa.Column("assessor", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

submission_chains = sa.Table(
    # a resubmission -> the first attempt of its chain (metadata ``revises``, followed back); first attempts
    # have no row. Lets the queue keep blind slots from people who saw another attempt; migration 0010
    "submission_chains",
    metadata,
    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("root_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
    sa.Index("ix_submission_chains_root", "root_id"),
)

queue_claims = sa.Table(
    # every claim, kept after release or takeover: who has seen which submission, and whether the slot showed
    # the machine's scores (not blind); migration 0008_queue_claims
    "queue_claims",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("queue_items.id"), nullable=False),
    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
    sa.Column("assessor", sa.String(200), nullable=False),
    sa.Column("blind", sa.Boolean, nullable=False),
    sa.Column("claimed_at", sa.DateTime, nullable=False),
    sa.Index("ix_queue_claims_submission_assessor", "submission_id", "assessor"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("response", sa.JSON, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("owner", "key", name="uq_idempotency_owner_key"),
)

submission_owners = sa.Table(
    "submission_owners",
    metadata,
    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
)

batch_jobs = sa.Table(
    "batch_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("rubric_id", sa.String(80), nullable=False),
    sa.Column("rubric_version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("workdir", sa.Text, nullable=True),  # input, outputs and progress file of the resumable run
    # migration 0009_batch_job_control: who cancelled the job and when; how often a restart resumed it
    sa.Column("cancelled_by", sa.String(200), nullable=True),
    sa.Column("cancelled_at", sa.DateTime, nullable=True),
    sa.Column("resumes", sa.Integer, nullable=False, server_default="0"),
)

batch_job_results = sa.Table(
    "batch_job_results",
    metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("batch_jobs.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)
