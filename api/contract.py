"""The OpenAPI document as a contract: every status an operation can answer is documented, with its type.

Why one pass over the generated document instead of ``responses=`` on every route: the statuses that
come from the edge (malformed JSON 400, an ambiguous credential 400, a missing key 401, a body too
large 413, a body that is not JSON 415, a parameter that fails validation 422) apply to every route of
a kind, and a route that forgot one would make the contract lie. Every 4xx/5xx is
``application/problem+json`` with the :class:`~api.schemas.Problem` schema, as the one handler in
``api/problems.py`` sends it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import schemas as S

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
EDGE = {
    "400": "Malformed JSON body, or both `X-API-Key` and `Authorization` sent (send exactly one)",
    "401": "Missing, unknown or revoked API key",
    "403": "The key's role may not do this",
    "404": "Unknown id (or one the caller may not see: the same answer)",
    "413": "Body over the size limit",
    "415": "Body not sent as application/json",
    "422": "A parameter or the body fails validation (the problem names the field)",
    "503": "The store (database) is unavailable: nothing was completed; retry later (`Retry-After`)",
}


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the edge statuses each operation can answer and make every error response problem+json."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in schemas:
        schemas["Problem"] = S.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            responses = op.setdefault("responses", {})
            body = "requestBody" in op
            params = bool(op.get("parameters"))
            codes = []
            if op.get("security"):
                codes += ["400", "401", "403"]
            if body:
                json_body = "application/json" in op["requestBody"].get("content", {})
                codes += ["400", "404", "413", "422"] + (["415"] if json_body else [])
            if params:
                codes += ["404", "422"]
            if path != "/healthz":  # every other operation reads or writes the store
                codes.append("503")
            for code in codes:
                responses.setdefault(code, {"description": EDGE[code]})
            for code, resp in responses.items():
                if code[:1] in ("4", "5"):
                    resp["content"] = problem
    return doc


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(get_openapi(title=app.title, version=app.version,
                                                      description=app.description, routes=app.routes,
                                                      tags=app.openapi_tags))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
