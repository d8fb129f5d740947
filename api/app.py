"""``create_app(settings)``: the FastAPI application, one router per resource.

The app owns one :class:`~scoring.store.Store` (SQLite by default, PostgreSQL by URL) and the scoring
model(s). Serving a ``--model`` directory registers its rubric and its version in the store (as a
``candidate``; the registry's promoted model, when there is one, takes precedence).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api import contract, docs, problems
from api.context import AppContext
from api.routers import (
    adjudication,
    agreement,
    assessor,
    audit,
    batch,
    health,
    keys,
    lead,
    models,
    queue,
    routing,
    rubrics,
    selection,
    status,
    submissions,
)
from scoring.settings import Settings
from scoring.store import Store
from scoring.store.writelock import serialize_sqlite_writers
from scoring.usecases.batch_jobs import resume_unfinished
from scoring.usecases.registry import ModelProvider, serve_model_dir

log = logging.getLogger("api")
STATIC = Path(__file__).parent / "static"

DESCRIPTION = """
Pre-scores micro-credential evidence against rubrics, routes uncertain criteria to human assessors,
and keeps agreement auditable.

**Auth**: every endpoint except `/healthz`, `/readyz` and `/status/{n}` (the
signed revocation status lists verifiers fetch) needs an API key (`scoring keys create`), sent as
`Authorization: Bearer <key>` or `X-API-Key: <key>` (exactly one of them: both in one request is 400
`ambiguous_credentials`, so no proxy or client can make one silently win). Roles: `assessor` (the queue, only items it holds),
`issuer` (submit, read its own results), `researcher` (agreement and exports, never evidence text),
`admin` (everything, keys, model promotion, adjudication).

**Errors** are `application/problem+json` (RFC 9457) with a stable `code`.
The assessor's web page is at `/assessor`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    model_dir: Path | None = None,
    policy: Any | None = None,
    resume_jobs: bool = True,
) -> FastAPI:
    """Build the app. ``model_dir`` defaults to ``settings.model_dir``; ``policy`` is a
    ``scoring.policy.RoutingPolicy`` (None: every criterion is routed to a human)."""
    s = settings or Settings()
    st = store or Store(s.resolved_database_url())
    serialize_sqlite_writers(st.engine)  # request threads queue for the SQLite write slot without busy-sleeps
    provider = ModelProvider(st, s, model_dir or s.model_dir)
    serve_model_dir(st, provider)
    app = FastAPI(
        title="rubric-scoring", version="0.1.0", description=DESCRIPTION, docs_url=None, redoc_url=None,
        openapi_tags=[{"name": n} for n in ("health", "rubrics", "submissions", "batch jobs", "queue",
                                            "adjudication", "agreement", "models", "keys", "audit", "status lists")],
    )
    app.state.ctx = context = AppContext(settings=s, store=st, models=provider, policy=policy)
    if policy is not None:  # the thresholds this server automates with are an audit event
        from scoring.store.policy_log import record_policy

        for rubric_id, p in context.policies.items():  # one per rubric
            record_policy(st, p, by="serve", rubric_id=rubric_id)
    if resume_jobs:  # a job a previous server left running goes on where its progress file says
        resume_unfinished(st, lambda job_id: batch.start(context, job_id))
    problems.install(app)
    app.add_middleware(problems.BodyLimit, limit=s.max_request_bytes, upload_limit=s.max_upload_bytes,  # type: ignore[arg-type]
                       upload_prefixes=("/batch-jobs/upload",))
    app.add_middleware(problems.ServerTiming)  # type: ignore[arg-type]
    app.add_middleware(problems.NulInUrl)  # type: ignore[arg-type]
    for r in (health, rubrics, submissions, batch, queue, selection, routing, adjudication, agreement, models, keys, audit, status):
        app.include_router(r.router)
    app.include_router(assessor.router)
    app.include_router(lead.router)

    @app.exception_handler(assessor._Login)
    async def _to_login(request: Any, _exc: Exception) -> Response:
        # the page's script posts with Accept: application/json and would read a redirect to the login form
        # as a lost connection (retrying forever): it gets a 401 it can say in words instead
        if assessor._wants_json(request):
            return JSONResponse(status_code=401, content={
                "ok": False, "lost": False, "login": "/assessor/login",
                "message": "Your session has ended (you logged out elsewhere, or your key was revoked or expired). "
                           "Log in again at /assessor/login in another tab, then submit again: your levels and "
                           "rationales stay saved on this device"})
        return RedirectResponse("/assessor/login", status_code=303)

    @app.exception_handler(assessor._Refused)
    async def _refused(request: Any, exc: assessor._Refused) -> Response:
        return assessor.refused(request, exc)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    docs.install(app)  # /docs and /redoc from installed assets: they work without internet
    contract.install(app)
    return app
