"""The audit log's trust anchors, read-only: signed checkpoints and inclusion proofs of single entries.

A researcher should not have to trust this server: the checkpoints are files signed with a key the
server never holds in its database, and a proof is checked with the public key alone
(``scoring audit check-proof``), so serving them here adds convenience, not trust.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from api import schemas as S
from api.context import AppContext
from api.deps import ctx, require
from scoring.errors import NotFound
from scoring.store.checkpoints import checkpoint_files, is_checkpoint_name

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[Depends(require("researcher", "admin"))],
                   responses=S.problems(401, 403))


class CheckpointOut(BaseModel):
    name: str
    size: int


class ProofOut(BaseModel):
    entry: dict[str, Any]
    leaf_index: int
    tree_size: int
    root: str
    path: list[str]
    checkpoint_name: str
    checkpoint: str


@router.get("/checkpoints", response_model=list[CheckpointOut], summary="Signed checkpoints of the audit log",
            description="Oldest first. Copy them elsewhere; verify the log against them with "
                        "`scoring audit verify --checkpoints DIR --public-key PEM`.")
def checkpoints(c: AppContext = Depends(ctx)) -> list[CheckpointOut]:
    d = c.settings.resolved_checkpoint_dir()
    if not d.is_dir():
        return []
    return [CheckpointOut(name=p.name, size=int(p.name.split("-")[1])) for p in checkpoint_files(d)]


@router.get("/checkpoints/{name}", response_class=PlainTextResponse, responses={
            200: {"content": {"text/plain": {}}, "description": "The signed note, byte for byte"}, **S.problems(404)},
            summary="One signed checkpoint (a C2SP signed note)")
def checkpoint(name: str = Path(max_length=100), c: AppContext = Depends(ctx)) -> PlainTextResponse:
    path = c.settings.resolved_checkpoint_dir() / name
    if not is_checkpoint_name(name) or not path.is_file():
        raise NotFound(f"no checkpoint named {name!r}")
    return PlainTextResponse(path.read_text(encoding="utf-8"))


@router.get("/proofs/{seq}", response_model=ProofOut, responses=S.problems(404, 500),
            summary="Inclusion proof of one audit entry in the newest checkpoint that covers it",
            description="Check it with the audit public key alone: `scoring audit check-proof FILE`. 404 when no "
                        "checkpoint covers the entry yet; 500 `audit_chain_broken` when the log no longer matches.")
def proof(seq: int = Path(ge=1, le=2**31 - 1), c: AppContext = Depends(ctx)) -> Any:
    from scoring.usecases import audit_trust

    return audit_trust.prove(c.store, seq, c.settings.resolved_checkpoint_dir(), None)
