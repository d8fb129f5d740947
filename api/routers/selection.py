"""Fill the assessors' queue with the submissions whose human scores teach the model most.

For a new rubric (a cold-start model, no scores yet) the first scores should be chosen, not taken in
arrival order: ``POST /selection`` runs the same selection as ``scoring select`` over the rubric's stored
submissions that nobody has scored or started (unqueued, or queued by routing and still waiting), and puts
them ahead of ordinary items.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api import schemas as S
from api.context import AppContext
from api.deps import ctx, require
from scoring.store.keys import ApiKey
from scoring.usecases.registry import resolve_version
from scoring.usecases.selection import fill_queue

router = APIRouter(prefix="/selection", tags=["queue"], responses=S.problems(401, 403))


class SelectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rubric_id: str = Field(max_length=80)
    rubric_version: int | None = Field(None, ge=1, le=S.INT32)
    n: int = Field(30, ge=1, le=1000, description="How many submissions to queue.")
    seed: int | None = Field(None, ge=0, le=S.INT32, description="Seed of the first pick (default: the server's).")


class SelectedOut(BaseModel):
    submission_id: int
    external_id: str
    rank: int
    uncertainty: float
    machine_scores: dict[str, int]


class SelectionOut(BaseModel):
    selected: list[SelectedOut]
    candidates: int = Field(description="Stored submissions of the rubric that nobody has scored or started: "
                                        "unqueued, or queued by routing and still waiting (an issuer's own "
                                        "submissions only; every issuer's for an admin).")
    slots_created: int = Field(description="Queue slots made for selected submissions that had none.")
    slots_moved: int = Field(0, description="Waiting slots of selected submissions moved ahead of ordinary items.")
    method: str


@router.post("", response_model=SelectionOut, status_code=201, responses=S.problems(404, 422, 503),
             summary="Queue the N submissions whose human scores teach the model most (diverse, uncertain)")
def create(body: SelectionIn, c: AppContext = Depends(ctx), key: ApiKey = Depends(require("admin", "issuer"))) -> Any:
    version = resolve_version(c.store, c.models, body.rubric_id, body.rubric_version)
    model = c.models.get(body.rubric_id, version)
    owner = None if key.role == "admin" else key.name  # an issuer sees and queues only its own submissions
    res = fill_queue(c.store, model, body.n, seed=c.settings.seed if body.seed is None else body.seed, owner=owner)
    return SelectionOut(selected=[SelectedOut(**s) for s in res.selected], candidates=res.candidates,
                        slots_created=res.slots_created, slots_moved=res.slots_moved,
                        method=res.method)
