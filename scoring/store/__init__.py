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

# --- issue #4 (service API): begin --- importing registers the service tables on the shared metadata
# isort: split
from scoring.store import jobs, keys, queue, service_tables  # noqa: E402,F401

# --- issue #4 (service API): end ---

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
