"""Put the served routing policy in charge of the stored work still waiting for people.

``POST /routing/apply`` runs what ``scoring policy apply`` runs (:mod:`scoring.usecases.reroute`) with the
model and policy this server scores the rubric with: after a promotion or a restart under a newer policy,
the submissions nobody has started take that policy's routes and queue slots.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api import schemas as S
from api.context import AppContext
from api.deps import ctx, require
from scoring.errors import InvalidRequest
from scoring.store.keys import ApiKey
from scoring.usecases.registry import resolve_version
from scoring.usecases.reroute import apply_policy

router = APIRouter(prefix="/routing", tags=["queue"], responses=S.problems(401, 403))


class ApplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rubric_id: str = Field(max_length=80)
    rubric_version: int | None = Field(None, ge=1, le=S.INT32)
    dry_run: bool = Field(False, description="Say what would change; record nothing.")


class AppliedOut(BaseModel):
    policy_version: str
    model_version: str
    rubric: str
    dry_run: bool
    submissions: int = Field(description="Stored submissions of the rubric version (an issuer's own only).")
    rerouted: int = Field(description="Routes or policy changed: new machine-score rows, decision, queue slots.")
    requeued: int = Field(description="Routes already the policy's; queue slots another model left brought in line.")
    unchanged: int
    in_progress: int = Field(description="Kept: a person has claimed, scored or adjudicated something.")
    settled: int = Field(description="Kept: no first or second slot open (the machine's scores stand).")
    selected: int = Field(description="Kept: queued by selection to teach the model.")
    not_scored: int = Field(description="Kept: not scored by the served model.")
    newer_model: int = Field(description="Kept: scored by another model after the served one (its routes stand).")
    routes_before: dict[str, int]
    routes_after: dict[str, int]
    slots_withdrawn: int
    slots_opened: int
    decisions: int


@router.post("/apply", response_model=AppliedOut, responses=S.problems(404, 422, 503),
             summary="Re-route the submissions nobody has started under the served routing policy")
def apply(body: ApplyIn, c: AppContext = Depends(ctx), key: ApiKey = Depends(require("admin", "issuer"))) -> Any:
    version = resolve_version(c.store, c.models, body.rubric_id, body.rubric_version)
    model = c.models.get(body.rubric_id, version)
    policy = c.policy_for(body.rubric_id)
    if policy is None:
        raise InvalidRequest(f"no routing policy serves rubric {body.rubric_id}: every criterion already goes to a "
                             "person; start the server with --policy, or keep a policy.yaml with the model")
    owner = None if key.role == "admin" else key.name  # an issuer re-routes only its own submissions
    res = apply_policy(c.store, model, policy, by=key.name, issuer=owner, dry_run=body.dry_run)
    return AppliedOut(**res.as_dict())
