"""Rubrics: register a new version (immutable once registered), list, read."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Path
from fastapi.responses import JSONResponse

from api import schemas as S
from api.context import AppContext
from api.deps import ctx, current_key, require
from rubrics.schema import parse_rubric
from scoring.errors import InvalidRequest, NotFound
from scoring.store import tables as t

router = APIRouter(prefix="/rubrics", tags=["rubrics"], responses=S.problems(401, 403))


def _detail(c: AppContext, rubric_id: str, version: int | None) -> S.RubricDetail:
    rub = c.store.rubric(rubric_id, version)
    rec = next((r for r in c.store.rubrics() if r.rubric_id == rub.id and r.version == rub.version), None)
    if rec is None:  # pragma: no cover - rubric() found it
        raise NotFound(f"rubric {rubric_id}@{version} is not registered")
    return S.RubricDetail(rubric_id=rec.rubric_id, version=rec.version, title=rec.title, fingerprint=rec.fingerprint,
                          registered_at=rec.registered_at, body=rub.model_dump(mode="json"))


_LEVEL = {"type": "object", "required": ["score"], "properties": {
    "score": {"type": "integer"}, "label": {"type": "string"}, "descriptor": {"type": "string"},
    "exemplars": {"type": "array", "items": {"type": "string"}}}}
# The body's shape for clients and generators; the full rules (ids, scales, award rules) are the rubric
# schema's (rubrics/schema.py), whose errors come back as 422 `invalid_rubric` naming the field.
RUBRIC_BODY = {
    "type": "object",
    "required": ["id", "version", "title", "evidence", "criteria"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 80},
        "version": {"type": "integer", "minimum": 1, "maximum": S.INT32},
        "title": {"type": "string", "minLength": 1, "maxLength": 300},
        "description": {"type": "string"},
        "evidence": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "criteria": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["id", "title"],
            "description": "Each criterion has either `levels` (at least 2) or `scale` ({min, max}).",
            "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 80}, "title": {"type": "string"},
                           "description": {"type": "string"},
                           "evidence": {"type": "array", "items": {"type": "string"}},
                           "levels": {"type": "array", "minItems": 2, "items": _LEVEL},
                           "scale": {"type": "object", "required": ["min", "max"],
                                     "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}}}}},
        "award": {"anyOf": [{"type": "object"}, {"type": "null"}],
                  "description": "Credential award rule (see docs/credentials.md); null or absent: no award."},
    },
}


@router.post("", response_model=S.RubricDetail, status_code=201,
             responses={200: {"model": S.RubricDetail, "description": "This exact version was already registered"},
                        **S.problems(409, 422)},
             openapi_extra={"requestBody": {"content": {"application/json": {"schema": RUBRIC_BODY}}}},
             summary="Register a rubric version",
             description="201 for a new version, 200 when the identical version is already registered, 409 "
                         "(`rubric_immutable`) when the id+version exists with other content: bump `version`.")
def create(
    body: dict[str, Any] = Body(..., examples=[S.RUBRIC_EXAMPLE]),
    c: AppContext = Depends(ctx),
    _key: Any = Depends(require("admin", "issuer")),
) -> JSONResponse:
    try:
        S.check_text(body, "body")
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    rub = parse_rubric(body, "request body")  # RubricError -> 422 naming the field
    if rub.version > S.INT32:
        raise InvalidRequest(f"rubric version must be at most {S.INT32}, found {rub.version}")
    with c.store.engine.connect() as conn:
        existed = conn.execute(sa.select(t.rubrics.c.id).where(t.rubrics.c.rubric_id == rub.id,
                                                               t.rubrics.c.version == rub.version)).first()
    c.store.register_rubric(rub)
    out = _detail(c, rub.id, rub.version)
    return JSONResponse(json.loads(out.model_dump_json()), status_code=200 if existed else 201)


@router.get("", response_model=list[S.RubricOut], summary="List registered rubric versions")
def list_(c: AppContext = Depends(ctx), _key: Any = Depends(current_key)) -> list[S.RubricOut]:
    return [S.RubricOut(rubric_id=r.rubric_id, version=r.version, title=r.title, fingerprint=r.fingerprint,
                        registered_at=r.registered_at) for r in c.store.rubrics()]


@router.get("/{rubric_id}", response_model=S.RubricDetail, summary="The newest version of a rubric",
            responses=S.problems(404))
def latest(rubric_id: str = Path(max_length=80), c: AppContext = Depends(ctx),
           _key: Any = Depends(current_key)) -> S.RubricDetail:
    return _detail(c, rubric_id, None)


@router.get("/{rubric_id}/versions/{version}", response_model=S.RubricDetail, summary="One rubric version",
            responses=S.problems(404))
def one(rubric_id: str = Path(max_length=80), version: int = Path(ge=1, le=1_000_000),
        c: AppContext = Depends(ctx), _key: Any = Depends(current_key)) -> S.RubricDetail:
    return _detail(c, rubric_id, version)
