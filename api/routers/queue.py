"""The assessors' queue: claim the next item under a lease, submit one score per criterion, release/skip.

Assessors see only items they hold; on blind (double/audit) items the machine score, probabilities,
routing reason, highlights and other raters' scores are withheld.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response

from api import schemas as S
from api import views
from api.context import AppContext
from api.deps import RATING_NEEDS_ASSESSOR, ctx, require
from scoring.store import queue
from scoring.store.keys import ApiKey
from scoring.usecases import assessment

router = APIRouter(prefix="/queue", tags=["queue"], responses=S.problems(401, 403))
# not admin: a score is one rater's, recorded under a person's name and kept independent of the other slots
Assessor = Depends(require("assessor", why=RATING_NEEDS_ASSESSOR))
HIGHLIGHTS = Query(0, ge=0, le=10, description="Up to N supporting and N counter evidence highlights per "
                   "criterion (non-blind items only; costs a model pass over the evidence's sentences).")


@router.post("/claim", response_model=S.QueueItemView,
             responses={204: {"description": "Nothing left to claim"}, **S.problems(409)},
             summary="Claim the next item (lease)",
             description="Atomically takes the next open item (or one whose lease expired) for the caller. "
                         "Double-scored submissions never give both slots to the same assessor. One assessor holds "
                         "at most `SCORING_MAX_HELD_ITEMS` (5) items at once: 409 `too_many_held` beyond.")
def claim(highlights: int = HIGHLIGHTS, c: AppContext = Depends(ctx), key: ApiKey = Assessor) -> Any:
    it = queue.claim(c.store, key.name, c.settings.lease_seconds, max_held=c.settings.max_held_items)
    if it is None:
        return Response(status_code=204)
    return views.item_view(assessment.item_details(c.store, c.models, it, highlights=highlights))


@router.get("/items/{item_id}", response_model=S.QueueItemView, responses=S.problems(404, 409),
            summary="An item the caller holds")
def read(item_id: int = Path(ge=1, le=2**31 - 1), highlights: int = HIGHLIGHTS, c: AppContext = Depends(ctx),
         key: ApiKey = Assessor) -> Any:
    it = assessment.held_item(c.store, item_id, key.name)
    return views.item_view(assessment.item_details(c.store, c.models, it, highlights=highlights))


@router.post("/items/{item_id}/scores", response_model=S.ScoresOut, status_code=201,
             responses=S.problems(400, 404, 409, 422),
             summary="Submit one score (with rationale) per criterion of a held item",
             description="403 `forbidden` for an item the caller never claimed (as `GET` of it answers), "
                         "409 `lease_expired` when the caller's lease ran out or passed to someone else, 409 "
                         "`already_scored` on a second submit, 422 `score_out_of_scale` for a level the "
                         "criterion does not have, 422 `invalid_request` when a criterion is missing.")
def submit(body: S.ScoresIn, item_id: int = Path(ge=1, le=2**31 - 1), c: AppContext = Depends(ctx),
           key: ApiKey = Assessor) -> Any:
    scores = {cid: (s.score, s.rationale) for cid, s in body.scores.items()}
    ids, pending = assessment.submit_item(c.store, c.policy_of_item(queue.item(c.store, item_id)), item_id, key.name,
                                          body.lease_token, scores,
                                          rationale=c.settings.rationale_required)
    return S.ScoresOut(item_id=item_id, human_score_ids=ids, needs_adjudication=pending)


@router.post("/items/{item_id}/release", response_model=S.ReleasedOut, responses=S.problems(400, 404, 409, 422),
             summary="Give a held item back (skip: and never offer it to me again)",
             description="403 `forbidden` for an item the caller never claimed (as `GET` of it answers), 409 "
                         "`lease_expired` when the caller's lease ran out or passed to someone else.")
def release(body: S.ReleaseIn, item_id: int = Path(ge=1, le=2**31 - 1), c: AppContext = Depends(ctx),
            key: ApiKey = Assessor) -> Any:
    it = queue.release(c.store, item_id, key.name, body.lease_token, skip=body.skip)
    return S.ReleasedOut(item_id=it.id, status=it.status)


@router.get("/stats", response_model=S.QueueStats, summary="Queue counts, and the caller's own")
def stats(c: AppContext = Depends(ctx), key: ApiKey = Depends(require("assessor", "admin"))) -> Any:
    n = queue.counts(c.store, key.name)
    return S.QueueStats(open=n.open, in_progress=n.claimed, done=n.done, mine_held=n.mine_held, mine_done=n.mine_done)
