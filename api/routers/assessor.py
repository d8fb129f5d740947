"""The assessor's web page: server-rendered Jinja2, a little vanilla JS for keyboard shortcuts.

The page authenticates with the assessor's API key, typed once into a login form and kept in a cookie
that is HttpOnly (scripts cannot read it) and SameSite=Strict (other sites cannot make the browser send
it, which is the CSRF defence for the page's form posts). Not part of the OpenAPI document: it is a UI,
the JSON API under ``/queue`` is the contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api import views
from api.context import AppContext
from api.deps import COOKIE, ctx
from scoring.errors import (
    AlreadyScored,
    InvalidRequest,
    LeaseExpired,
    NotFound,
    SameRater,
    ScoreOutOfScale,
    Unauthorized,
)
from scoring.store import keys, queue
from scoring.store.keys import ApiKey
from scoring.usecases import assessment

router = APIRouter(prefix="/assessor", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
MESSAGES = {
    "saved": ("ok", "Scores saved."),
    "released": ("ok", "Item returned to the queue."),
    "skipped": ("ok", "Item skipped; it will not be offered to you again."),
    "expired": ("warn", "Your lease on that item expired or it was taken over; nothing was saved. Claim again."),
    "scored": ("warn", "That item was already scored."),
    "empty": ("ok", "Nothing left to claim. Thank you!"),
}


class _Login(Exception):
    """Raised by :func:`page_key` to send the browser to the login form."""


def page_key(request: Request, c: AppContext = Depends(ctx)) -> ApiKey:
    raw = request.cookies.get(COOKIE)
    if not raw:
        raise _Login()
    try:
        key = keys.authenticate(c.store, raw)
    except Unauthorized:
        raise _Login() from None
    if key.role != "assessor":
        raise _Login()
    return key


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _segments(text: str, hls: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """Cut ``text`` into plain and highlighted pieces (non-overlapping highlights of one field, in order)."""
    spans = sorted((h for h in hls if h.get("field", field) in ("", field)), key=lambda h: h["start"])
    out: list[dict[str, Any]] = []
    pos = 0
    for h in spans:
        s, e = int(h["start"]), int(h["end"])
        if s < pos or e <= s or e > len(text):
            continue
        if s > pos:
            out.append({"text": text[pos:s]})
        out.append({"text": text[s:e], "kind": h.get("kind"), "strength": h.get("strength")})
        pos = e
    if pos < len(text):
        out.append({"text": text[pos:]})
    return out


def _dashboard(request: Request, c: AppContext, key: ApiKey, msg: str | None, status: int = 200) -> HTMLResponse:
    n = queue.counts(c.store, key.name)
    held = queue.held_by(c.store, key.name)
    return templates.TemplateResponse(request, "queue.html", {
        "key": key, "counts": n, "held": held, "message": MESSAGES.get(msg or ""),
    }, status_code=status)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, api_key: str = Form("", max_length=200), c: AppContext = Depends(ctx)) -> Response:
    try:
        key = keys.authenticate(c.store, api_key)
    except Unauthorized:
        return templates.TemplateResponse(request, "login.html", {"error": "That key is not valid."}, status_code=401)
    if key.role != "assessor":
        return templates.TemplateResponse(request, "login.html", {
            "error": f"Key {key.name!r} has role {key.role!r}; this page is for assessors."}, status_code=403)
    resp = _redirect("/assessor")
    resp.set_cookie(COOKIE, api_key.strip(), httponly=True, samesite="strict", path="/assessor",
                    secure=request.url.scheme == "https", max_age=12 * 3600)
    return resp


@router.post("/logout")
def logout() -> Response:
    resp = _redirect("/assessor/login")
    resp.delete_cookie(COOKIE, path="/assessor")
    return resp


@router.get("", response_class=HTMLResponse)
def home(request: Request, msg: str | None = None, c: AppContext = Depends(ctx),
         key: ApiKey = Depends(page_key)) -> Response:
    return _dashboard(request, c, key, msg)


@router.post("/claim")
def claim(c: AppContext = Depends(ctx), key: ApiKey = Depends(page_key)) -> Response:
    held = queue.held_by(c.store, key.name)
    if held:  # finish what you hold first: the page works one item at a time
        return _redirect(f"/assessor/items/{held[0].id}")
    it = queue.claim(c.store, key.name, c.settings.lease_seconds)
    return _redirect("/assessor?msg=empty" if it is None else f"/assessor/items/{it.id}")


def _render_item(request: Request, c: AppContext, key: ApiKey, it: queue.QueueItem, *, error: str | None = None,
                 form: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    view = views.item_view(assessment.item_details(c.store, c.models, it, highlights=3))
    fields = list(view.evidence)
    plain = {f: str(view.evidence[f]) for f in fields}
    per_crit = {}
    for cv in view.criteria:
        if cv.highlights:
            per_crit[cv.id] = {f: _segments(plain[f], cv.highlights, f) for f in fields}
    return templates.TemplateResponse(request, "item.html", {
        "key": key, "item": view, "plain": plain, "highlighted": per_crit, "counts": queue.counts(c.store, key.name),
        "error": error, "form": form or {},
    }, status_code=status)


@router.get("/items/{item_id}", response_class=HTMLResponse)
def show(request: Request, item_id: int, c: AppContext = Depends(ctx), key: ApiKey = Depends(page_key)) -> Response:
    try:
        it = queue.item(c.store, item_id)
    except NotFound:
        return _redirect("/assessor")
    if it.holder != key.name or it.status != "claimed" or it.id not in {h.id for h in queue.held_by(c.store, key.name)}:
        return _redirect("/assessor?msg=expired")
    return _render_item(request, c, key, it)


def _level(raw: str) -> int | None:
    """A level typed in the form, or None: ASCII digits with an optional sign, short enough to be a level
    (``str.isdigit`` also accepts superscripts like "²", which ``int`` refuses)."""
    raw = raw.strip()
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 9):
        return None
    return int(raw)


@router.post("/items/{item_id}/submit", response_class=HTMLResponse)
async def submit(request: Request, item_id: int, c: AppContext = Depends(ctx),
                 key: ApiKey = Depends(page_key)) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    token = form.get("lease_token", "")
    try:
        it = queue.item(c.store, item_id)
    except NotFound:
        return _redirect("/assessor")
    scores: dict[str, tuple[int, str]] = {}
    missing = []
    for cid in it.criteria:
        raw, why = form.get(f"score__{cid}", ""), form.get(f"rationale__{cid}", "").strip()
        level = _level(raw)
        if level is None or not why:
            missing.append(cid)
            continue
        scores[cid] = (level, why)
    try:
        if missing:
            raise InvalidRequest(f"choose a level and write a rationale for: {', '.join(missing)}")
        assessment.submit_item(c.store, c.policy, item_id, key.name, token, scores)
    except LeaseExpired:
        return _redirect("/assessor?msg=expired")
    except AlreadyScored:
        return _redirect("/assessor?msg=scored")
    except (InvalidRequest, ScoreOutOfScale, SameRater) as exc:
        if it.holder != key.name or it.status != "claimed":
            return _redirect("/assessor?msg=expired")
        return _render_item(request, c, key, it, error=str(exc), form=form, status=422)
    if form.get("then") == "stop":
        return _redirect("/assessor?msg=saved")
    nxt = queue.claim(c.store, key.name, c.settings.lease_seconds)  # straight on to the next item
    return _redirect(f"/assessor/items/{nxt.id}?msg=saved" if nxt else "/assessor?msg=" + quote("empty"))


@router.post("/items/{item_id}/release")
def release(item_id: int, lease_token: str = Form(""), skip: str = Form(""), c: AppContext = Depends(ctx),
            key: ApiKey = Depends(page_key)) -> Response:
    try:
        queue.release(c.store, item_id, key.name, lease_token, skip=bool(skip))
    except (LeaseExpired, AlreadyScored, NotFound):
        return _redirect("/assessor?msg=expired")
    return _redirect("/assessor?msg=" + ("skipped" if skip else "released"))
