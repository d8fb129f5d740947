"""The issuer's revocation status lists, signed, where verifiers fetch them (no key: anyone may check)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from api import schemas as S
from api.context import AppContext
from api.deps import ctx, signing_key
from scoring.errors import NotFound

router = APIRouter(tags=["status lists"])
MEDIA = "application/vc+jwt"  # VC-JOSE-COSE: a credential secured as a compact JWS


@router.get("/status/{list_number}", response_class=Response,
            responses={200: {"content": {MEDIA: {"schema": {"type": "string"}}},
                             "description": "The signed BitstringStatusListCredential (compact VC-JWT)"},
                       **S.problems(404, 503)},
            summary="The issuer's revocation status list (W3C Bitstring Status List), signed",
            description="The list credential that a credential's `credentialStatus.statusListCredential` names "
                        "(`{issuer id}/status/{list_number}`), signed with the server's issuer key as it stands "
                        "now: a revocation shows here as soon as it is recorded. No API key: verifiers fetch it, "
                        "and one list covers many credentials, so the server does not learn which one is checked. "
                        "List 1 exists before anything is issued; a list the issuer does not have is 404; 503 "
                        "`credentials_unconfigured` without `SCORING_CREDENTIAL_KEY`/`SCORING_CREDENTIAL_ISSUER_ID`.")
def status_list(list_number: int = Path(ge=1, le=2**31 - 1), c: AppContext = Depends(ctx)) -> Response:
    from scoring.usecases import revocation

    signing, issuer_id = signing_key(c)
    token = revocation.signed_list(c.store, issuer_id, signing, list_number)
    if token is None:
        raise NotFound(f"status list {list_number} does not exist")
    return Response(token, media_type=MEDIA, headers={"Cache-Control": "no-cache"})
