"""Agreement and export data for researchers: numbers and scores, never evidence text."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query

from api import schemas as S
from api.context import AppContext
from api.deps import ctx, require
from scoring.errors import InvalidRequest
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


ISO_TIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?$"
# a string with a pattern, not a datetime: pydantic would take "0.5" for a Unix time, a silent surprise
SINCE = Query(None, pattern=ISO_TIME, description="Only pairs completed at or after this time (ISO 8601, e.g. "
              "2026-03-01 or 2026-03-01T08:00:00+01:00; no offset = UTC), as `scoring report --since`")
UNTIL = Query(None, pattern=ISO_TIME, description="Only pairs completed before this time, as `scoring report --until`")


def _window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """The window's bounds as UTC times; 422 (in words) for a date that does not exist or an empty window."""
    def parse(name: str, v: str | None) -> datetime | None:
        if v is None:
            return None
        try:
            t = datetime.fromisoformat(v)
        except ValueError as exc:
            raise InvalidRequest(f"{name} {v!r} is not a time: {exc}") from None
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)

    lo, hi = parse("since", since), parse("until", until)
    if lo is not None and hi is not None and hi <= lo:
        raise InvalidRequest(f"until ({until}) must be after since ({since})")
    return lo, hi


@router.get("/agreement", summary="Agreement tables: human-human, human-machine (QWK, kappa, SMD, PRMSE...), "
            "automation from recorded routes, credential decisions and agreement on them",
            response_model=dict[str, list[dict[str, Any]]], responses=S.problems(404, 422))
def agreement(rubric_id: str | None = Query(None, max_length=80),
              window: str | None = Query(None, pattern=r"^(D|W|M|Q|Y)$", description="Pandas period: D W M Q Y"),
              since: str | None = SINCE, until: str | None = UNTIL,
              c: AppContext = Depends(ctx), _k: ApiKey = Researcher) -> Any:
    """The tables `scoring report` writes, for the same ``since``/``until`` window (pairs, not single scores:
    see the researcher's report in docs/audit.md)."""
    from eval.agreement import automation_table, human_human_table, human_machine_table, load_frames
    from eval.decisions import decision_agreement, decision_summary

    lo, hi = _window(since, until)
    if rubric_id is not None:
        c.store.rubric(rubric_id)  # 404 for an unknown rubric, rather than empty tables that look like "no data yet"
    frames = load_frames(c.store, rubric_id=rubric_id, since=lo, until=hi)
    return {"human_human": _rows(human_human_table(frames, window=window)),
            "human_machine": _rows(human_machine_table(frames, window=window)),
            "automation": _rows(automation_table(frames, window=window)),
            "decisions": _rows(decision_summary(c.store, rubric_id, since=lo, until=hi)),
            "decision_agreement": _rows(decision_agreement(c.store, rubric_id, since=lo, until=hi))}


@router.get("/exports/scores", summary="Machine and human scores per submission x criterion (no evidence)",
            response_model=list[dict[str, Any]], responses=S.problems(404, 422))
def export_scores(rubric_id: str | None = Query(None, max_length=80), since: str | None = SINCE,
                  until: str | None = UNTIL, c: AppContext = Depends(ctx), _k: ApiKey = Researcher) -> Any:
    """One row per machine score that stands (latest per submission, criterion and model), with the human
    scores: ``h1_blind``/``h2_blind`` say which ratings were given without the machine's or the other
    rater's score in view, so the report's human-human pairs (both blind) and its reference (``human``) can
    be rebuilt from this alone."""
    from eval.agreement import load_frames

    lo, hi = _window(since, until)
    if rubric_id is not None:
        c.store.rubric(rubric_id)  # 404 for an unknown rubric
    m = load_frames(c.store, rubric_id=rubric_id, since=lo, until=hi).machines
    keep = ["submission_id", "rubric_id", "rubric_version", "criterion", "model_version", "machine", "route",
            "h1", "h1_blind", "h2", "h2_blind", "audit", "human"]
    return _rows(m[[k for k in keep if k in m.columns]] if len(m) else None)
