"""Liveness and readiness (no key needed: load balancers and orchestrators call these)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api import schemas as S
from api.context import AppContext
from api.deps import ctx
from scoring.store.store import schema_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=S.Health, summary="Liveness: the process answers")
def healthz() -> S.Health:
    return S.Health(status="ok")


@router.get("/readyz", response_model=S.Health, summary="Readiness: database reachable and migrated",
            responses={503: {"model": S.Health, "description": "Database unreachable"}})
def readyz(c: AppContext = Depends(ctx)) -> S.Health | JSONResponse:
    try:
        with c.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        rev = schema_revision(c.store.engine)
    except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
        body = S.Health(status="unavailable", database=c.store.dialect, detail=f"database unreachable: {exc}")
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    return S.Health(status="ok", database=c.store.dialect, schema_revision=rev, models_loaded=c.models.loaded())
