"""The durable, auditable store (SQLite by default, PostgreSQL by URL). See :class:`Store`."""

from scoring.store.audit import AuditEntry, AuditVerification, canonical_json
from scoring.store.store import (
    HUMAN_KINDS,
    Adjudication,
    HumanScore,
    HumanScoreIn,
    MachineScore,
    MachineScoreIn,
    ModelRecord,
    RubricRecord,
    Store,
    SubmissionRecord,
    Suspension,
    content_hash,
)

# importing registers the service tables (API keys, queue, jobs) on the shared metadata
# isort: split
from scoring.store import jobs, keys, queue, service_tables  # noqa: E402,F401

__all__ = [
    "HUMAN_KINDS",
    "Adjudication",
    "AuditEntry",
    "AuditVerification",
    "HumanScore",
    "HumanScoreIn",
    "MachineScore",
    "MachineScoreIn",
    "ModelRecord",
    "RubricRecord",
    "Store",
    "SubmissionRecord",
    "Suspension",
    "canonical_json",
    "content_hash",
]
