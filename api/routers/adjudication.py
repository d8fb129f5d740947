"""Adjudication (admin): list human-score disagreements beyond the gap, record the resolved score."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from api import schemas as S
from api.context import AppContext
from api.deps import ctx, require
from scoring.store.keys import ApiKey
from scoring.usecases import assessment

router = APIRouter(prefix="/adjudications", tags=["adjudication"], responses=S.problems(401, 403))


@router.get("/pending", response_model=list[S.PendingAdjudication],
            summary="Submission x criterion pairs whose human scores disagree beyond the gap, unresolved")
def pending(rubric_id: str | None = Query(None, max_length=80), c: AppContext = Depends(ctx),
            _k: ApiKey = Depends(require("admin"))) -> Any:
    return [S.PendingAdjudication(submission_id=p.submission_id, criterion=p.criterion, human_scores=p.human_scores,
                                  human_score_ids=p.human_score_ids, gap=p.gap)
            for p in assessment.pending_adjudications(c.store, None, rubric_id, policy_for=c.policy_for)]


@router.post("", response_model=S.AdjudicationOut, status_code=201, responses=S.problems(400, 404, 409, 422),
             summary="Record the resolved score of a disagreement")
def adjudicate(body: S.AdjudicationIn, c: AppContext = Depends(ctx), key: ApiKey = Depends(require("admin"))) -> Any:
    a = assessment.adjudicate(c.store, body.submission_id, body.criterion, body.score, adjudicator=key.name,
                              rationale=body.rationale,  # 404 / 422 / 409 already_adjudicated
                              policy=c.policy_for(c.store.submission(body.submission_id).rubric_id))
    return S.AdjudicationOut(id=a.id, submission_id=a.submission_id, criterion=a.criterion, score=a.score,
                             adjudicator=a.adjudicator, human_score_ids=a.human_score_ids,
                             machine_score_id=a.machine_score_id, created_at=a.created_at)
