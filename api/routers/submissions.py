"""Submissions: score and route one synchronously (safe to retry with ``Idempotency-Key``); read results."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from api import idempotency, views
from api import schemas as S
from api.context import AppContext
from api.deps import ctx, require, signing_key
from scoring.errors import NotFound
from scoring.store import canonical_json, jobs
from scoring.store.keys import ApiKey
from scoring.usecases import intake
from scoring.usecases.registry import resolve_version

router = APIRouter(prefix="/submissions", tags=["submissions"], responses=S.problems(401, 403))


@router.post(
    "", response_model=S.SubmissionResult, status_code=201,
    responses={200: {"model": S.SubmissionResult, "description": "Already scored (replay or identical resend)"},
               **S.problems(400, 404, 409, 413, 422, 503)},
    summary="Score and route one submission",
    description="Stores the submission, pre-scores every criterion, routes each (auto / audit / human / "
                "double) and queues what people must score. Re-sending the same external id with the same "
                "content returns the stored result (200); with other content 409 `duplicate_submission`. "
                "With an `Idempotency-Key` header a retry replays the first response exactly; the same key "
                "with another body is 409 `idempotency_key_reused`.",
)
def create(
    body: S.SubmissionIn,
    c: AppContext = Depends(ctx),
    key: ApiKey = Depends(require("issuer", "admin")),
    idempotency_key: str | None = idempotency.KEY_HEADER,
) -> JSONResponse:
    def make() -> tuple[int, dict[str, Any]]:
        status, res = _score(c, key.name, body)
        return status, res.model_dump(mode="json")

    digest = hashlib.sha256(canonical_json(body.model_dump(mode="json")).encode()).hexdigest()
    return idempotency.respond_once(c.store, key.name, idempotency_key, digest, make)


def _score(c: AppContext, owner: str, body: S.SubmissionIn) -> tuple[int, S.SubmissionResult]:
    """201 with the new result, or 200 with the stored one when this exact submission was already scored."""
    version = resolve_version(c.store, c.models, body.rubric_id, body.rubric_version)
    model = c.models.get(body.rubric_id, version)
    meta = dict(body.metadata) | ({intake.REVISES: body.revises} if body.revises else {})
    out = intake.submit(c.store, model, owner, intake.NewSubmission(body.external_id, dict(body.evidence), meta),
                        policy=c.policy_for(model.rubric.id), max_chars=c.settings.max_text_chars,
                        score=lambda m, ids, evs: [c.prescorer.score(m, ids[0], evs[0])])
    return (201 if out.created else 200), views.submission_result(c.store, out)


@router.get("/lookup", response_model=S.SubmissionResult, responses=S.problems(404),
            summary="A submission found by your own id for it (the external id you sent) and its rubric",
            description="As `GET /submissions/{id}`, for a client that kept its own ids rather than the store's. "
                        "Another issuer's submission answers exactly as an unknown id does (404).")
def lookup(rubric_id: str = Query(..., max_length=80), external_id: str = Query(..., min_length=1, max_length=200),
           c: AppContext = Depends(ctx), key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    try:
        sub = c.store.find_submission(rubric_id, external_id)
        return views.stored_result(c.store, _own_submission(c, key, sub.id).id)
    except NotFound:
        raise NotFound(f"no submission {external_id!r} for rubric {rubric_id}") from None


@router.get("/{submission_id}", response_model=S.SubmissionResult, responses=S.problems(404),
            summary="A submission's machine scores, routes, queue slots and human scores",
            description="Issuers read only submissions they sent; admins read all. Another issuer's submission "
                        "answers exactly as an unknown id does (404), so ids cannot be probed.")
def read(submission_id: int = Path(ge=1, le=2**31 - 1), c: AppContext = Depends(ctx),
         key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    return views.stored_result(c.store, _own_submission(c, key, submission_id).id)


def _own_submission(c: AppContext, key: ApiKey, submission_id: int) -> Any:
    """The submission when the caller may see it; otherwise the same NotFound an unknown id gets.

    Why not 403: a different answer for "exists but not yours" lets an issuer enumerate other issuers'
    submissions (and a message naming the owner would tell who they are)."""
    if key.role != "admin" and jobs.owner_of(c.store, submission_id) != key.name:
        raise NotFound(f"submission {submission_id} does not exist")
    return c.store.submission(submission_id)


@router.post("/{submission_id}/credential", response_model=S.CredentialOut, status_code=201,
             responses=S.problems(404, 409, 503),
             summary="Sign the Open Badges 3.0 credential of an earned submission",
             description="A VC-JWT (Ed25519) OpenBadgeCredential whose achievement is the rubric and whose "
                         "results are the criterion levels; no evidence text. The submission's earlier valid "
                         "credential, if any, is revoked in the same transaction (reason 'replaced by <new id>'). "
                         "409 `invalid_credential` when the submission has not earned it, "
                         "`credential_revoked_before` when the credential of this same decision was revoked (a "
                         "revocation is final; `scoring credentials issue --despite-revocation` signs it again), "
                         "`credential_held_by_another_attempt` when another attempt of the educator's "
                         "resubmission chain holds a valid credential (one educator, one credential); "
                         "503 when the server has no issuer key configured "
                         "(`SCORING_CREDENTIAL_KEY`, `SCORING_CREDENTIAL_ISSUER_ID`).")
def credential(submission_id: int = Path(ge=1, le=2**31 - 1), c: AppContext = Depends(ctx),
               key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    from scoring.badges import Issuer
    from scoring.usecases import credentials

    _own_submission(c, key, submission_id)
    s = c.settings
    signing, issuer_id = signing_key(c)
    token, vc = credentials.issue(c.store, submission_id, signing,
                                  Issuer(issuer_id, s.credential_issuer_name or issuer_id),
                                  actor=key.name)
    return S.CredentialOut(jwt=token, credential=vc)


@router.post("/{submission_id}/credential/revoke", response_model=S.RevocationOut, responses=S.problems(404, 409, 422, 503),
             summary="Revoke the submission's issued credential(s); verifiers see it in the served status list",
             description="Logs who (the API key's owner), which and why (`credential_revoked`) and sets each "
                         "credential's bit in the issuer's status list, which `GET /status/{list_number}` serves "
                         "signed at once. Body `{reason, credential_id?}`: without `credential_id`, every credential "
                         "of the submission not yet revoked. A credential revoked earlier is answered with its "
                         "earlier entry (`already_revoked`) and nothing new is recorded. 404 for an unknown "
                         "submission (and, for an issuer, another issuer's) or a `credential_id` not of this "
                         "submission; 409 `no_credential` when none was issued; 422 an empty reason; 503 without "
                         "an issuer key configured.")
def revoke(body: S.RevokeIn, submission_id: int = Path(ge=1, le=2**31 - 1), c: AppContext = Depends(ctx),
           key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    from scoring.errors import InvalidRequest
    from scoring.usecases import revocation

    _own_submission(c, key, submission_id)
    if not body.reason.strip():
        raise InvalidRequest("say why the credential is revoked (reason): the record must show it")
    signing, _ = signing_key(c)
    out = revocation.revoke_submission(c.store, submission_id, reason=body.reason, by=key.name,
                                       kid=signing.thumbprint(), credential_id=body.credential_id)
    return S.RevocationOut(submission_id=submission_id, revoked=[S.RevokedOut(
        credential_id=r.credential.credential_id, entry=r.seq, already_revoked=r.already, by=r.by, reason=r.reason,
        at=r.at, status_list_credential=r.list_url if r.visible else None,
        status_list_index=r.credential.status_index) for r in out])


@router.get("/{submission_id}/feedback", responses={**S.problems(404, 409),
            200: {"content": {"text/html": {}}, "description": "JSON, or HTML with ?format=html"}},
            summary="Feedback for a 'not yet' decision: the level reached and what the next level asks")
def feedback(submission_id: int = Path(ge=1, le=2**31 - 1), format: str = Query("json", pattern="^(json|html)$"),
             c: AppContext = Depends(ctx), key: ApiKey = Depends(require("issuer", "admin"))) -> Any:
    from fastapi.responses import HTMLResponse

    from scoring.usecases import credentials

    sub = _own_submission(c, key, submission_id)
    try:
        model = c.models.get(sub.rubric_id, sub.rubric_version)
    except Exception:  # noqa: BLE001 - without the model the feedback quotes no passages
        model = None
    fb = credentials.feedback(c.store, submission_id, model)
    if format == "html":
        return HTMLResponse(credentials.feedback_html(fb, sub.evidence))
    return fb


@router.post("/{submission_id}/feedback/release", status_code=201, responses=S.problems(404, 409, 422),
             summary="Release (possibly edited) feedback to the educator; recorded in the audit log",
             description="Body: the feedback JSON as `GET .../feedback` returns it, edited as the assessor sees fit. "
                         "Only a 'not yet' decision has feedback to release. An assessor may release it only for a "
                         "submission they rated, adjudicated or hold a queue slot of (others get 404, as an unknown "
                         "id does); an admin for any.")
def release_feedback(body: dict[str, Any], submission_id: int = Path(ge=1, le=2**31 - 1),
                     c: AppContext = Depends(ctx), key: ApiKey = Depends(require("assessor", "admin"))) -> Any:
    from scoring.usecases import assessment, credentials

    if key.role != "admin" and not assessment.has_worked_on(c.store, submission_id, key.name):
        raise NotFound(f"submission {submission_id} does not exist")  # as unknown: ids cannot be probed
    return credentials.release_feedback(c.store, submission_id, body, actor=key.name)
