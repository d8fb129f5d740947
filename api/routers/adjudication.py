"""Adjudication (admin): list human-score disagreements beyond the gap, record the resolved score."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from api import schemas as S
from api import service
from api.context import AppContext
from api.deps import ctx, require
from scoring.errors import InvalidRequest
from scoring.store.keys import ApiKey

router = APIRouter(prefix="/adjudications", tags=["adjudication"], responses=S.problems(401, 403))


@router.get("/pending", response_model=list[S.PendingAdjudication],
            summary="Submission x criterion pairs whose human scores disagree beyond the gap, unresolved")
def pending(rubric_id: str | None = Query(None, max_length=80), c: AppContext = Depends(ctx),
            _k: ApiKey = Depends(require("admin"))) -> Any:
    done = {(a.submission_id, a.criterion) for a in c.store.adjudications()}
    groups: dict[tuple[int, str], list[Any]] = {}
    for h in c.store.human_scores(rubric_id=rubric_id):
        if h.kind in ("first", "second", "audit"):
            groups.setdefault((h.submission_id, h.criterion), []).append(h)
    out = []
    for (sid, crit), hs in sorted(groups.items()):
        scores = [h.score for h in hs]
        gap = service.adjudication_gap(c, crit)
        if (sid, crit) not in done and len(scores) >= 2 and max(scores) - min(scores) > gap:
            out.append(S.PendingAdjudication(submission_id=sid, criterion=crit, human_scores=scores,
                                             human_score_ids=[h.id for h in hs], gap=gap))
    return out


@router.post("", response_model=S.AdjudicationOut, status_code=201, responses=S.problems(400, 404, 409, 422),
             summary="Record the resolved score of a disagreement")
def adjudicate(body: S.AdjudicationIn, c: AppContext = Depends(ctx), key: ApiKey = Depends(require("admin"))) -> Any:
    c.store.submission(body.submission_id)  # 404
    hs = [h for h in c.store.human_scores(submission_id=body.submission_id, criterion=body.criterion)
          if h.kind != "adjudication"]
    if not hs:
        raise InvalidRequest(f"submission {body.submission_id} has no human scores for {body.criterion!r} "
                             "to adjudicate")
    ms = c.store.machine_scores(submission_id=body.submission_id, criterion=body.criterion)
    a = c.store.record_adjudication(body.submission_id, body.criterion, body.score, adjudicator=key.name,
                                    rationale=body.rationale, human_score_ids=[h.id for h in hs],
                                    machine_score_id=ms[-1].id if ms else None)  # 409 already_adjudicated
    return S.AdjudicationOut(id=a.id, submission_id=a.submission_id, criterion=a.criterion, score=a.score,
                             adjudicator=a.adjudicator, human_score_ids=a.human_score_ids,
                             machine_score_id=a.machine_score_id, created_at=a.created_at)
