"""Request and response bodies of the HTTP API, separate from the store's records.

Why separate: the store's dataclasses are the audit-facing truth and may grow columns; these are a
public contract with examples in the OpenAPI document, and they decide what each role gets to see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

INT32 = 2**31 - 1  # ids and versions are 32-bit integers in PostgreSQL; larger is a 422, never a 500


def text_problem(s: str) -> str | None:
    """Why a string cannot be stored as text, or None.

    JSON escapes can carry a lone UTF-16 surrogate ("\\ud800"), which is not Unicode text (UTF-8 cannot
    encode it), and NUL, which PostgreSQL text cannot hold; both must be a 422 here, not a 500 in the store.
    """
    if "\x00" in s:
        return "contains a NUL character (U+0000)"
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains a lone surrogate (U+{ord(s[exc.start]):04X}), which is not valid Unicode text"
    return None


def check_text(value: Any, where: str) -> None:
    """Raise ValueError naming the first string (key or value, at any depth) that cannot be stored."""
    if isinstance(value, str):
        why = text_problem(value)
        if why:
            raise ValueError(f"{where} {why}")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_text(k, f"{where} key {str(k).encode('utf-8', 'backslashreplace').decode()[:40]!r}")
            check_text(v, f"{where}.{str(k).encode('utf-8', 'backslashreplace').decode()[:40]}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_text(v, f"{where}[{i}]")


class RequestBody(BaseModel):
    """Base of every JSON request body: all its strings must be storable text (see ``text_problem``)."""

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        check_text(data, "body")
        return data
Role = Literal["assessor", "issuer", "researcher", "admin"]
Route = Literal["auto", "audit", "human", "double"]

_REFLECTION = ("I asked students to explain why a half is bigger than a third and called on several of them; "
               "when most said a third was bigger I stopped and used fraction strips.")


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is stable and machine-readable."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(examples=["lease_expired"])
    instance: str = ""
    errors: list[dict[str, Any]] | None = None


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem+json statuses an endpoint can return."""
    desc = {400: "Malformed JSON", 401: "Missing or invalid API key", 403: "Role not allowed",
            404: "Unknown id", 409: "Conflict", 413: "Body too large", 422: "Invalid request",
            503: "No model available"}
    return {c: {"model": Problem, "description": desc.get(c, "Error"),
                "content": {"application/problem+json": {}}} for c in codes}


# ------------------------------------------------------------------------------------------------ keys


class KeyIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "alice", "role": "assessor"}]})

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role


class KeyOut(BaseModel):
    name: str
    role: Role
    key_id: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself; shown only in this response, stored only as a hash.",
                     examples=["rsk_0123456789ab_" + "x" * 43])


# --------------------------------------------------------------------------------------------- rubrics


class RubricOut(BaseModel):
    rubric_id: str
    version: int
    title: str
    fingerprint: str
    registered_at: datetime


class RubricDetail(RubricOut):
    body: dict[str, Any] = Field(description="The rubric as registered (criteria, levels, descriptors).")


RUBRIC_EXAMPLE = {
    "id": "demo-rubric", "version": 1, "title": "Demo", "evidence": ["reflection"],
    "criteria": [{"id": "questioning", "title": "Uses questions", "levels": [
        {"score": 0, "label": "Not yet", "descriptor": "No open questions."},
        {"score": 1, "label": "Developing", "descriptor": "Some open questions."},
        {"score": 2, "label": "Proficient", "descriptor": "Open questions probe reasoning."}]}],
}


# ----------------------------------------------------------------------------------------- submissions


class SubmissionIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "rubric_id": "checking-for-understanding", "external_id": "portfolio-0042",
        "evidence": {"reflection": _REFLECTION}, "metadata": {"cohort": "2026-fall"}}]})

    rubric_id: str = Field(min_length=1, max_length=80)
    rubric_version: int | None = Field(default=None, ge=1, le=INT32, description="Default: the newest registered version.")
    external_id: str = Field(min_length=1, max_length=200, description="The caller's id; unique per rubric.")
    evidence: dict[str, str] = Field(description="Evidence field name -> text, as the rubric declares them.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    revises: str | None = Field(default=None, min_length=1, max_length=200,
                                description="A resubmission: the external id of your earlier submission it revises "
                                "(kept as metadata key `revises`; 422 if you sent no such submission).")


class CriterionResultOut(BaseModel):
    score: int
    probabilities: dict[str, float] | None = None
    route: str | None = None
    reason: str | None = None
    prediction_set: list[int] | None = None


class QueueRef(BaseModel):
    id: int
    kind: str
    criteria: list[str]
    status: str


class HumanScoreOut(BaseModel):
    criterion: str
    score: int
    kind: str
    blind: bool
    created_at: datetime


class ResolvedScoreOut(BaseModel):
    """A lead's resolution of two ratings further apart than the policy's gap: the criterion's level of record."""

    criterion: str
    score: int
    created_at: datetime


class SubmissionResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "submission_id": 7, "external_id": "portfolio-0042", "rubric_id": "checking-for-understanding",
        "rubric_version": 1, "model_version": "checking-for-understanding-v1-20261123T114500-ab12cd34",
        "policy_version": "default-1", "created": True,
        "criteria": {"questioning": {"score": 2, "probabilities": {"0": 0.05, "1": 0.2, "2": 0.75},
                                     "route": "human", "reason": "policy default-1 has no enabled thresholds",
                                     "prediction_set": None}},
        "queue": [{"id": 3, "kind": "first", "criteria": ["questioning"], "status": "open"}],
        "human_scores": []}]})

    submission_id: int
    external_id: str
    rubric_id: str
    rubric_version: int
    model_version: str | None
    policy_version: str | None
    created: bool = Field(description="False when this exact submission was already stored (idempotent replay).")
    criteria: dict[str, CriterionResultOut]
    queue: list[QueueRef]
    human_scores: list[HumanScoreOut] = Field(default_factory=list)
    adjudications: list[ResolvedScoreOut] = Field(default_factory=list, description="Resolved scores of "
                                                  "disagreements (the level of record where two ratings differ).")
    revises: str | None = Field(None, description="For a resubmission: the external id of the attempt it revises")
    decision: DecisionOut | None = Field(default=None, description="The credential decision (rubrics with an "
                                         "award rule): the latest recorded, machine or final.")


class CredentialOut(BaseModel):
    jwt: str = Field(description="The signed OpenBadgeCredential, compact VC-JWT (alg EdDSA, Ed25519).")
    credential: dict[str, Any] = Field(description="The credential body as signed.")


class RevokeIn(RequestBody):
    reason: str = Field(max_length=2000, description="Why (kept in the audit log, shown by `scoring audit trace`); "
                        "not empty.")
    credential_id: str | None = Field(default=None, max_length=500, description="Revoke only this credential "
                                      "of the submission; default: every one not yet revoked.")


class RevokedOut(BaseModel):
    credential_id: str
    entry: int = Field(description="Audit log seq of the `credential_revoked` entry (the earlier one when "
                       "`already_revoked`).")
    already_revoked: bool = Field(description="Revoked earlier: nothing new recorded; `entry`, `by`, `reason` "
                                  "and `at` are the earlier revocation's.")
    by: str
    reason: str
    at: str
    status_list_credential: str | None = Field(description="The status list that shows it (null: issued without "
                                               "a status entry, so verifiers cannot see the revocation).")
    status_list_index: int | None


class RevocationOut(BaseModel):
    submission_id: int
    revoked: list[RevokedOut]


class DecisionOut(BaseModel):
    outcome: Literal["earned", "not_yet", "needs_human"]
    basis: Literal["machine", "final"] = Field(description="machine: from the model's scores and probabilities; "
                                               "final: every criterion resolved (people and accepted machine scores)")
    p_earned: float | None = Field(description="P(earned) from the criteria's calibrated probabilities (machine).")
    levels: dict[str, int]
    reason: str


# ------------------------------------------------------------------------------------------ batch jobs


class BatchItemIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=200)
    evidence: dict[str, str]
    metadata: dict[str, Any] = Field(default_factory=dict)


class BatchIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "rubric_id": "checking-for-understanding",
        "submissions": [{"external_id": "p-1", "evidence": {"reflection": _REFLECTION}},
                        {"external_id": "p-2", "evidence": {"reflection": "We reviewed the homework."}}]}]})

    rubric_id: str = Field(min_length=1, max_length=80)
    rubric_version: int | None = Field(default=None, ge=1, le=INT32)
    submissions: list[BatchItemIn] = Field(min_length=1, max_length=100_000)


JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]


class BatchJobOut(BaseModel):
    id: int
    status: JobStatus
    rubric_id: str
    rubric_version: int
    total: int
    done: int
    rejected: int
    progress: float = Field(description="(done + rejected) / total, 0..1")
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    owner: str = Field(description="The key that started the job")
    resumes: int = Field(0, description="Times a server restart interrupted the job and the next server resumed it "
                         "(nothing is recorded twice)")
    cancelled_by: str | None = Field(None, description="The key that cancelled the job; the rows it recorded before "
                                     "stay recorded")
    cancelled_at: datetime | None = None


class BatchResultOut(BaseModel):
    position: int
    external_id: str
    submission_id: int | None
    error: str | None


# ----------------------------------------------------------------------------------------------- queue


class LevelOut(BaseModel):
    score: int
    label: str
    descriptor: str


class CriterionView(BaseModel):
    id: str
    title: str
    description: str
    levels: list[LevelOut]
    machine: CriterionResultOut | None = Field(None, description="Absent on blind (double/audit) items.")
    highlights: list[dict[str, Any]] | None = Field(None, description="Absent on blind items.")


class QueueItemView(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 3, "submission_id": 7, "external_id": "T-5001", "kind": "second", "route": "double", "blind": True,
        "lease_token": "9f2c...", "lease_expires": "2026-11-23T12:15:00Z", "position": 1, "waiting": 12,
        "rubric_id": "checking-for-understanding", "rubric_version": 1,
        "evidence": {"reflection": _REFLECTION},
        "criteria": [{"id": "questioning", "title": "Uses questions", "description": "",
                      "levels": [{"score": 0, "label": "Not yet", "descriptor": "..."}],
                      "machine": None, "highlights": None}]}]})

    id: int
    submission_id: int
    external_id: str = Field(description="The issuer's own id of the submission (what `POST /submissions` was sent "
                             "as `external_id`): which entry the assessor holds, in the issuer's words.")
    kind: str
    route: str
    reason: str | None = Field(None, description="Why the item needs a person (absent on blind items).")
    blind: bool
    lease_token: str
    lease_expires: datetime
    position: int
    waiting: int
    rubric_id: str
    rubric_version: int
    evidence: dict[str, Any]
    previous: dict[str, Any] | None = Field(None, description="A resubmission (not on blind items): the submission "
                                            "it revises, its decision and the feedback released for it.")
    criteria: list[CriterionView]


class ScoreIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    score: StrictInt = Field(ge=-INT32, le=INT32)  # a level: true or "1" is a client's mistake, not level 1
    rationale: str = Field("", max_length=10_000)


class ScoresIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "lease_token": "9f2c0e...", "scores": {"questioning": {"score": 2, "rationale": "Probes reasoning twice."}}}]})

    lease_token: str = Field(min_length=1, max_length=64)
    scores: dict[str, ScoreIn]


class ScoresOut(BaseModel):
    item_id: int
    human_score_ids: list[int]
    needs_adjudication: list[str] = Field(description="Criteria whose human scores now disagree beyond the gap.")


class ReleaseIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"lease_token": "9f2c0e...",
                                                                               "skip": True}]})

    lease_token: str = Field(min_length=1, max_length=64)
    skip: bool = Field(False, description="Also never offer this item to me again.")


class ReleasedOut(BaseModel):
    item_id: int
    status: str


class QueueStats(BaseModel):
    open: int
    in_progress: int
    done: int
    mine_held: int
    mine_done: int


# ---------------------------------------------------------------------------------------- adjudication


class PendingAdjudication(BaseModel):
    submission_id: int
    criterion: str
    human_scores: list[int]
    human_score_ids: list[int]
    gap: int


class AdjudicationIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "submission_id": 7, "criterion": "questioning", "score": 1, "rationale": "Open questions, no probing."}]})

    submission_id: int = Field(ge=1, le=INT32)
    criterion: str = Field(min_length=1, max_length=80)
    score: StrictInt = Field(ge=-INT32, le=INT32)
    rationale: str = Field("", max_length=10_000)


class AdjudicationOut(BaseModel):
    id: int
    submission_id: int
    criterion: str
    score: int
    adjudicator: str
    human_score_ids: list[int]
    machine_score_id: int | None
    created_at: datetime


# ------------------------------------------------------------------------------------ models / health


class ModelOut(BaseModel):
    version: str
    rubric_id: str | None
    status: str
    registered_at: datetime
    promoted_at: datetime | None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str | None = None
    schema_revision: str | None = None
    models_loaded: list[str] = Field(default_factory=list)
    detail: str | None = None
