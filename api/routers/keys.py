"""API keys (admin): create (the key is shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from api import schemas as S
from api.context import AppContext
from api.deps import ctx, require
from scoring.store import keys
from scoring.store.keys import ApiKey

router = APIRouter(prefix="/keys", tags=["keys"], dependencies=[Depends(require("admin"))],
                   responses=S.problems(401, 403))


def _out(k: keys.ApiKey) -> S.KeyOut:
    return S.KeyOut(name=k.name, role=k.role, key_id=k.key_id, created_at=k.created_at,  # type: ignore[arg-type]
                    revoked_at=k.revoked_at)


@router.post("", response_model=S.KeyCreated, status_code=201, summary="Create a key (shown once)",
             responses=S.problems(409, 422))
def create(body: S.KeyIn, c: AppContext = Depends(ctx), caller: ApiKey = Depends(require("admin"))) -> JSONResponse:
    rec, secret = keys.create_key(c.store, body.name, body.role, by=caller.name)
    out = S.KeyCreated(**_out(rec).model_dump(), key=secret)
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"})


@router.get("", response_model=list[S.KeyOut], summary="List keys (never the secrets)")
def list_(c: AppContext = Depends(ctx)) -> list[S.KeyOut]:
    return [_out(k) for k in keys.list_keys(c.store)]


@router.delete("/{name}", response_model=S.KeyOut, summary="Revoke a key (logged in the audit chain)",
               description="409 `last_admin_key` when it is the last active admin key: create another admin "
                           "key first, so the service is never left without one.",
               responses=S.problems(404, 409))
def revoke(name: str = Path(max_length=200), c: AppContext = Depends(ctx),
           caller: ApiKey = Depends(require("admin"))) -> S.KeyOut:
    return _out(keys.revoke_key(c.store, name, by=caller.name))
