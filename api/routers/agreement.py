"""Agreement and export data for researchers: numbers and scores, never evidence text."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Depends, Query

from api import schemas as S
from api.context import AppContext
from api.deps import ctx, require
from scoring.store.keys import ApiKey

router = APIRouter(tags=["agreement"], responses=S.problems(401, 403))
Researcher = Depends(require("researcher", "admin"))


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        return _clean(v.item())
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _rows(df: Any) -> list[dict[str, Any]]:
    return [] if df is None or len(df) == 0 else [_clean(r) for r in df.to_dict(orient="records")]


@router.get("/agreement", summary="Agreement tables: human-human, human-machine (QWK, kappa, SMD, PRMSE...), "
            "automation from recorded routes, credential decisions and agreement on them",
            response_model=dict[str, list[dict[str, Any]]])
def agreement(rubric_id: str | None = Query(None, max_length=80),
              window: str | None = Query(None, pattern=r"^(D|W|M|Q|Y)$", description="Pandas period: D W M Q Y"),
              c: AppContext = Depends(ctx), _k: ApiKey = Researcher) -> Any:
    from eval.agreement import automation_table, human_human_table, human_machine_table, load_frames
    from eval.decisions import decision_agreement, decision_summary

    if rubric_id is not None:
        c.store.rubric(rubric_id)  # 404 for an unknown rubric, rather than empty tables that look like "no data yet"
    frames = load_frames(c.store, rubric_id=rubric_id)
    return {"human_human": _rows(human_human_table(frames, window=window)),
            "human_machine": _rows(human_machine_table(frames, window=window)),
            "automation": _rows(automation_table(frames, window=window)),
            "decisions": _rows(decision_summary(c.store, rubric_id)),
            "decision_agreement": _rows(decision_agreement(c.store, rubric_id))}


@router.get("/exports/scores", summary="Machine and human scores per submission x criterion (no evidence)",
            response_model=list[dict[str, Any]])
def export_scores(rubric_id: str | None = Query(None, max_length=80), c: AppContext = Depends(ctx),
                  _k: ApiKey = Researcher) -> Any:
    from eval.agreement import load_frames

    if rubric_id is not None:
        c.store.rubric(rubric_id)  # 404 for an unknown rubric
    m = load_frames(c.store, rubric_id=rubric_id).machines
    keep = ["submission_id", "rubric_id", "rubric_version", "criterion", "model_version", "machine", "route",
            "h1", "h2", "audit", "human"]
    return _rows(m[[k for k in keep if k in m.columns]] if len(m) else None)
