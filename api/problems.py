"""Every error leaves the service as ``application/problem+json`` (RFC 9457), from ONE handler.

The body is ``{"type", "title", "status", "detail", "code", "instance"}``; ``code`` is the stable
identifier of the domain error (``scoring.errors``), so clients switch on it rather than on prose.
Request validation problems also carry ``errors`` (pydantic's list: location, message, input type).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rubrics.schema import RubricError
from scoring import errors as E

log = logging.getLogger("api")
PROBLEM = "application/problem+json"

# Most specific first: the first class in an error's MRO found here decides the status.
STATUS: dict[type[BaseException], int] = {
    E.AmbiguousCredentials: 400,
    E.Unauthorized: 401,
    E.Forbidden: 403,
    E.NotFound: 404,
    E.LeaseExpired: 409,
    E.AlreadyScored: 409,
    E.IdempotencyKeyReused: 409,
    E.DuplicateSubmission: 409,
    E.RubricImmutable: 409,
    E.Conflict: 409,
    E.PayloadTooLarge: 413,
    E.ScoreOutOfScale: 422,
    E.InvalidScoreKind: 422,
    E.InvalidRequest: 422,
    E.TranscriptError: 422,
    E.ModelUnavailable: 503,
    E.CredentialsUnconfigured: 503,
    E.AuditChainBroken: 500,
    RubricError: 422,
}
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 413: "Payload too large", 415: "Unsupported media type", 422: "Unprocessable content",
          500: "Internal server error", 503: "Service unavailable"}


def problem(status: int, code: str, detail: str, instance: str = "", **extra: Any) -> JSONResponse:
    body = {"type": f"https://rubric-scoring.invalid/problems/{code}", "title": TITLES.get(status, "Error"),
            "status": status, "detail": detail, "code": code, "instance": instance, **extra}
    headers = {"WWW-Authenticate": 'Bearer realm="rubric-scoring"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_for(exc: BaseException) -> int | None:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    if isinstance(exc, E.ScoringError):
        return 422
    return None


def _json_safe_errors(errs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # pydantic errors carry the raw input and ctx objects; send only what a client can act on
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in errs[:20]]


async def handle(request: Request, exc: Exception) -> JSONResponse:
    """The one exception handler: domain errors, request validation, HTTP errors, and the unexpected."""
    path = request.url.path
    if isinstance(exc, RequestValidationError):
        errs = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errs):
            return problem(400, "malformed_json", "the request body is not valid JSON: "
                           + "; ".join(str(e.get("msg")) for e in errs[:3]), path, errors=_json_safe_errors(errs))
        first = errs[0] if errs else {}
        ctype = request.headers.get("content-type", "").lower()
        if tuple(first.get("loc", ())) == ("body",) and "json" not in ctype and "form" not in ctype \
                and request.method in ("POST", "PUT", "PATCH"):
            return problem(415, "unsupported_media_type", f"send the body as application/json (Content-Type was "
                           f"{ctype or 'missing'})", path)
        where = ".".join(str(x) for x in first.get("loc", ()))
        return problem(422, "validation_error", f"{where}: {first.get('msg', 'invalid request')}"
                       + (f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""), path,
                       errors=_json_safe_errors(errs))
    if isinstance(exc, StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden",
                413: "payload_too_large", 400: "bad_request"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 405:  # RFC 9110: a 405 names the methods the resource does allow
            allowed = _allowed_methods(request, exc)
            resp = problem(405, code, f"{request.method} is not allowed on {path}; allowed: {allowed}", path)
            resp.headers["Allow"] = allowed
            return resp
        if exc.status_code == 400 and detail == "There was an error parsing the body":  # FastAPI's words
            return problem(400, "malformed_json", "the request body could not be parsed: it must be JSON encoded as "
                           "UTF-8 (invalid bytes, or nesting too deep, also end here)", path)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no endpoint at {path}; see /docs for the API"
        return problem(exc.status_code, code, detail, path)
    if store_unavailable(exc):  # the database is down, full, read-only or locked: say so, and that nothing happened
        log.error("store unavailable on %s %s: %s", request.method, path, _first_line(exc))
        resp = problem(503, "store_unavailable", "the store (database) is unavailable: it did not answer, or "
                       "could not write (full, read-only or locked); this request was not completed. Retry it "
                       "later: a retried POST with the same Idempotency-Key (or a resent identical submission) "
                       "is recorded once", path)
        resp.headers["Retry-After"] = str(RETRY_AFTER_S)
        return resp
    status = status_for(exc)
    if status is not None:
        code = getattr(exc, "code", "invalid_rubric" if isinstance(exc, RubricError) else "error")
        if status >= 500:
            log.error("%s on %s: %s", type(exc).__name__, path, exc)
        return problem(status, code, str(exc), path)
    log.exception("unexpected error on %s", path)
    return problem(500, "internal_error", "an unexpected error occurred; it has been logged", path)


RETRY_AFTER_S = 5


def store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not serve the request (not a bug in the request or the code):
    a connection refused or lost, a pool exhausted, a disk full, a read-only or locked database."""
    import sqlalchemy as sa

    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError))


def _first_line(exc: BaseException) -> str:
    """The driver's message, first line: no SQL statement, no parameters (evidence text), no traceback."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _allowed_methods(request: Request, exc: StarletteHTTPException) -> str:
    """Every method the API serves at this path, from its OpenAPI document (Starlette's own ``Allow``
    names only the first route that matched the path), or Starlette's for pages outside the document."""
    import re

    paths = request.app.openapi().get("paths", {})
    exact = paths.get(request.url.path)  # a fixed path wins over a template (/batch-jobs/upload vs /{job_id})
    items = [exact] if exact is not None else [
        item for template, item in paths.items()
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), request.url.path)]
    methods = {m.upper() for item in items for m in item if m in ("get", "put", "post", "delete", "patch")}
    if "GET" in methods:
        methods.add("HEAD")
    if not methods:
        return str((exc.headers or {}).get("Allow", ""))
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    import sqlalchemy as sa

    # the store's errors by class too: Starlette re-raises what only the ``Exception`` handler caught, and the
    # server would log a traceback for every request while the database is down
    for cls in (RequestValidationError, StarletteHTTPException, E.ScoringError, RubricError,
                sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, Exception):
        app.add_exception_handler(cls, handle)  # type: ignore[arg-type]


class NulInUrl:
    """Pure ASGI middleware: a NUL (``%00``) in the path or query is a 422, before any id reaches the store.

    Why here: every path and query parameter would otherwise need its own check, and PostgreSQL text
    cannot hold NUL (the query would fail with a 500) while SQLite would quietly look it up.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope.get("path", "").encode()
            query = scope.get("query_string") or b""
            if b"%00" in raw or b"\x00" in raw or b"%00" in query or b"\x00" in query:
                resp = problem(422, "invalid_url", "the URL contains a NUL character (%00)", scope.get("path", ""))
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Pure ASGI middleware: 413 problem+json for bodies over the limit, by header or while streaming.

    Checking ``Content-Length`` alone would let a chunked body through; counting what ``receive`` hands
    the app catches both, before the app has buffered more than one chunk over the limit.
    """

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int, upload_prefixes: tuple[str, ...]):
        self.app, self.limit, self.upload_limit, self.upload_prefixes = app, limit, upload_limit, upload_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.upload_limit if path.startswith(self.upload_prefixes) else self.limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, send, limit, int(declared))
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge(seen)
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge as exc:
            if not started:
                await self._reject(scope, send, limit, exc.seen)

    async def _reject(self, scope: Scope, send: Send, limit: int, found: int) -> None:
        resp = problem(413, "payload_too_large", f"request body must be at most {limit} bytes; found "
                       f"{'at least ' if found > limit else ''}{found} bytes", scope.get("path", ""))
        await resp(scope, _drain, send)


class _TooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body parsing re-raises it (not a 400)."""

    def __init__(self, seen: int):
        super().__init__(413, f"request body over the limit (at least {seen} bytes read)")
        self.seen = seen


async def _drain() -> Message:
    return {"type": "http.disconnect"}


class ServerTiming:
    """Pure ASGI middleware adding ``Server-Timing: app;dur=<ms>`` (time inside the app, from the first
    byte of the request to the response start), so a client can tell server work from queueing."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import time

        t0 = time.perf_counter()

        async def timed_send(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                dur = (time.perf_counter() - t0) * 1000
                msg = {**msg, "headers": [*msg.get("headers", []), (b"server-timing", f"app;dur={dur:.1f}".encode())]}
            await send(msg)

        await self.app(scope, receive, timed_send)
