"""FastAPI dependencies: the app context, the caller's API key, and role checks.

Keys are accepted as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, exactly one per request; the assessor page sends
its key in an HttpOnly cookie instead (see ``api/routers/assessor.py``). Both header schemes are
declared as OpenAPI security schemes, so ``/docs`` has an Authorize button.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.context import AppContext
from scoring.errors import AmbiguousCredentials, Forbidden, Unauthorized
from scoring.store import keys
from scoring.store.keys import ApiKey

COOKIE = "rs_key"
# why an admin key may not rate (the queue API's 403 and the assessor page's rating routes say the same)
RATING_NEEDS_ASSESSOR = ("claiming, reading and scoring queue items needs an assessor key: scores are recorded under a "
                         "person's name, as one independent rater (an admin who rates uses an assessor key of their "
                         "own, e.g. scoring keys create --role assessor)")
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer rsk_...`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: rsk_...`")


def ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def current_key(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header: str | None = Depends(_header),
) -> ApiKey:
    """The caller's active key; 401 problem+json when none is sent or it does not verify, 400 when both
    headers are sent (which one should win is exactly what a client or proxy could get wrong)."""
    if "x-api-key" in request.headers and "authorization" in request.headers:
        raise AmbiguousCredentials("send the API key in exactly one header, 'Authorization: Bearer <key>' or "
                                   "'X-API-Key: <key>'; this request sent both")
    presented = header or (bearer.credentials if bearer is not None else None)
    if not presented:
        raise Unauthorized("no API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    key = keys.authenticate(ctx(request).store, presented)
    request.state.key = key
    return key


def require(*roles: str, why: str | None = None) -> Callable[..., ApiKey]:
    """A dependency admitting only keys with one of ``roles`` (403 problem+json otherwise). ``why``: the
    reason said to a refused key, for a rule a client would not guess (an admin may not rate)."""

    def check(key: ApiKey = Depends(current_key)) -> ApiKey:
        if key.role not in roles:
            need = why or f"this endpoint needs role {' or '.join(roles)}"
            raise Forbidden(f"{need}; key {key.name!r} has role {key.role!r}")
        return key

    check.__name__ = f"require_{'_'.join(roles)}"
    return check


def signing_key(c: AppContext) -> tuple[Any, str]:
    """The server's issuer key and issuer id; 503 ``credentials_unconfigured`` when it has none."""
    from scoring.badges import load_key
    from scoring.errors import CredentialsUnconfigured

    s = c.settings
    if s.credential_key is None or not s.credential_issuer_id:
        raise CredentialsUnconfigured("this server signs no credentials: set SCORING_CREDENTIAL_KEY and "
                                      "SCORING_CREDENTIAL_ISSUER_ID (see `scoring credentials keygen`)")
    return load_key(s.credential_key, private=True), s.credential_issuer_id
