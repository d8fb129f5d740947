"""The model registry: list versions, promote one (the next submission of its rubric is scored with it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path

from api import schemas as S
from api.context import AppContext
from api.deps import ctx, require
from scoring.store import ModelRecord
from scoring.store.keys import ApiKey
from scoring.usecases.registry import promote_model

router = APIRouter(prefix="/models", tags=["models"], responses=S.problems(401, 403))


def _out(m: ModelRecord) -> S.ModelOut:
    return S.ModelOut(version=m.version, rubric_id=m.rubric_id, status=m.status, registered_at=m.registered_at,
                      promoted_at=m.promoted_at)


@router.get("", response_model=list[S.ModelOut], summary="Registered model versions")
def list_(c: AppContext = Depends(ctx), _k: ApiKey = Depends(require("admin", "researcher"))) -> Any:
    return [_out(m) for m in c.store.models()]


@router.post("/{version}/promote", response_model=S.ModelOut, responses=S.problems(404),
             summary="Promote a registered version (retires the previous one, lifts suspensions)")
def promote(version: str = Path(max_length=120), c: AppContext = Depends(ctx),
            key: ApiKey = Depends(require("admin"))) -> Any:
    return _out(promote_model(c.store, version, actor=key.name, models=c.models))
