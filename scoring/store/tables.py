"""Table definitions of the store (SQLAlchemy Core), the single source the queries are written against.

The schema itself is created and evolved only by the Alembic migrations in ``migrations/versions``; a test
(``test_store_schema.py``) checks that the migrated database matches these definitions, so the two cannot
drift apart silently.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

rubrics = sa.Table(
    "rubrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("rubric_id", sa.String(80), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("registered_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("rubric_id", "version", name="uq_rubrics_id_version"),
)

submissions = sa.Table(
    "submissions",
    metadata,
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

machine_scores = sa.Table(
    "machine_scores",
    metadata,
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
    sa.Index("ix_machine_scores_sub_crit", "submission_id", "criterion"),
)

human_scores = sa.Table(
    "human_scores",
    metadata,
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
    sa.Index("ix_human_scores_sub_crit", "submission_id", "criterion"),
)

adjudications = sa.Table(
    "adjudications",
    metadata,
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

decisions = sa.Table(  # credential decisions (rubrics with an award rule): appended, never updated
    "decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
    sa.Column("rubric_id", sa.String(80), nullable=False),
    sa.Column("rubric_version", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),  # earned | not_yet | needs_human
    sa.Column("basis", sa.String(20), nullable=False),  # machine | final (from the resolved criterion levels)
    sa.Column("p_earned", sa.Float, nullable=True),
    sa.Column("levels", sa.JSON, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("model_version", sa.String(120), nullable=True),
    sa.Column("policy_version", sa.String(160), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("audit_seq", sa.Integer, nullable=False),
    sa.Index("ix_decisions_submission", "submission_id", "id"),
)

credential_status = sa.Table(  # the revocation status list slot of every credential issued with one
    "credential_status",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("credential_id", sa.String(200), nullable=False, unique=True),
    sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False),
    sa.Column("decision_id", sa.Integer, nullable=False),
    sa.Column("issuer_id", sa.String(500), nullable=False),
    sa.Column("list_number", sa.Integer, nullable=False),  # published at {issuer_id}/status/{list_number}
    sa.Column("status_index", sa.Integer, nullable=False),
    sa.Column("issued_seq", sa.Integer, nullable=False),  # the credential_issued entry that logged the slot
    sa.Column("revoked_seq", sa.Integer, nullable=True),  # the credential_revoked entry, once revoked
    sa.UniqueConstraint("issuer_id", "list_number", "status_index", name="uq_credential_status_slot"),
    sa.Index("ix_credential_status_submission", "submission_id"),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.String(120), nullable=False, unique=True),
    sa.Column("rubric_id", sa.String(80), nullable=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("card", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("registered_at", sa.DateTime, nullable=False),
    sa.Column("promoted_at", sa.DateTime, nullable=True),
)

suspensions = sa.Table(
    "suspensions",
    metadata,
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

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_event", "event", "seq"),  # the latest entry of a kind (policies, released feedback)
)

audit_tiles = sa.Table(  # cache of complete 1024-leaf Merkle subtrees (derived data; proofs re-check it)
    "audit_tiles",
    metadata,
    sa.Column("tile", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

store_settings = sa.Table(  # facts fixed when the store was created (the audit log's canonical form)
    "store_settings",
    metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)
