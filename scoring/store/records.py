"""The store's records: what a read returns (frozen dataclasses) and what a bulk write takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scoring.store.clock import aware as _aware

HUMAN_KINDS = ("first", "second", "audit", "adjudication")



@dataclass(frozen=True)
class RubricRecord:
    rubric_id: str
    version: int
    title: str
    fingerprint: str
    registered_at: datetime

    @property
    def key(self) -> str:
        return f"{self.rubric_id}@{self.version}"


@dataclass(frozen=True)
class SubmissionRecord:
    id: int
    rubric_id: str
    rubric_version: int
    external_id: str
    evidence: dict[str, Any]
    metadata: dict[str, Any]
    content_hash: str
    created_at: datetime


@dataclass(frozen=True)
class MachineScore:
    id: int
    submission_id: int
    criterion: str
    score: int
    probabilities: dict[str, float] | None
    prediction_set: list[int] | None
    route: str | None
    reason: str | None
    model_version: str | None
    policy_version: str | None
    rubric_id: str
    rubric_version: int
    created_at: datetime
    audit_seq: int


@dataclass(frozen=True)
class HumanScore:
    id: int
    submission_id: int
    criterion: str
    score: int
    assessor: str
    rationale: str
    blind: bool
    kind: str
    created_at: datetime
    audit_seq: int


@dataclass(frozen=True)
class HumanScoreIn:
    """One human score to record in bulk (see :meth:`Store.record_human_scores`)."""

    submission_id: int
    criterion: str
    score: int
    assessor: str
    kind: str = "first"
    blind: bool = True
    rationale: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class MachineScoreIn:
    """One machine score to record in bulk (see :meth:`Store.record_machine_scores`)."""

    submission_id: int
    criterion: str
    score: int
    probabilities: dict[str, float] | Sequence[float] | None = None
    prediction_set: Sequence[int] | None = None
    route: str | None = None
    reason: str | None = None
    model_version: str | None = None
    policy_version: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Adjudication:
    id: int
    submission_id: int
    criterion: str
    score: int
    adjudicator: str
    rationale: str
    human_score_ids: list[int]
    machine_score_id: int | None
    created_at: datetime
    audit_seq: int


@dataclass(frozen=True)
class ModelRecord:
    version: str
    rubric_id: str | None
    path: str
    card: dict[str, Any]
    status: str
    registered_at: datetime
    promoted_at: datetime | None


@dataclass(frozen=True)
class Suspension:
    id: int
    rubric_id: str
    criterion: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    suspended_at: datetime | None = None
    lifted_at: datetime | None = None
    lifted_by: str | None = None

    @property
    def active(self) -> bool:
        return self.lifted_at is None


# ------------------------------------------------------------------------------------------ row -> record

def _rubric_rec(r: Any) -> RubricRecord:
    return RubricRecord(r.rubric_id, r.version, r.title, r.fingerprint, _aware(r.registered_at))  # type: ignore[arg-type]


def _sub_rec(r: Any) -> SubmissionRecord:
    return SubmissionRecord(r.id, r.rubric_id, r.rubric_version, r.external_id, r.evidence, r.meta, r.content_hash,
                            _aware(r.created_at))  # type: ignore[arg-type]


def _machine_rec(r: Any) -> MachineScore:
    return MachineScore(r.id, r.submission_id, r.criterion, r.score, r.probabilities, r.prediction_set, r.route,
                        r.reason, r.model_version, r.policy_version, r.rubric_id, r.rubric_version,
                        _aware(r.created_at), r.audit_seq)  # type: ignore[arg-type]


def _human_rec(r: Any) -> HumanScore:
    return HumanScore(r.id, r.submission_id, r.criterion, r.score, r.assessor, r.rationale, bool(r.blind), r.kind,
                      _aware(r.created_at), r.audit_seq)  # type: ignore[arg-type]


def _adj_rec(r: Any) -> Adjudication:
    return Adjudication(r.id, r.submission_id, r.criterion, r.score, r.adjudicator, r.rationale,
                        list(r.human_score_ids), r.machine_score_id, _aware(r.created_at), r.audit_seq)  # type: ignore[arg-type]


def _model_rec(r: Any) -> ModelRecord:
    return ModelRecord(r.version, r.rubric_id, r.path, r.card, r.status, _aware(r.registered_at),  # type: ignore[arg-type]
                       _aware(r.promoted_at))


def _susp_rec(r: Any) -> Suspension:
    return Suspension(r.id, r.rubric_id, r.criterion, r.reason, r.details, _aware(r.suspended_at),
                      _aware(r.lifted_at), r.lifted_by)
