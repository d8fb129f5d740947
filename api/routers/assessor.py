"""The assessor's web page: server-rendered Jinja2, a little vanilla JS for the keyboard, the lease and drafts.

The page authenticates with the assessor's API key, typed once into a login form and kept in a cookie
that is HttpOnly (scripts cannot read it) and SameSite=Strict (other sites cannot make the browser send
it, which is the CSRF defence for the page's form posts). Not part of the OpenAPI document: it is a UI,
the JSON API under ``/queue`` is the contract.

Every form works without the script (plain posts and redirects). With it, the page saves a draft of the
levels and rationales in the browser as they are typed, renews the lease while the assessor is active,
and submits with ``fetch`` (``Accept: application/json``), so a network failure or an expired lease keeps
the typed work on screen instead of replacing the page.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.context import AppContext
from api.deps import COOKIE, RATING_NEEDS_ASSESSOR, ctx
from api.evidence import field_views
from scoring.errors import (
    AlreadyScored,
    Forbidden,
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
HIGHLIGHTS = 3  # supporting and counter highlights per criterion on non-blind items
_WARM = ThreadPoolExecutor(1, thread_name_prefix="assessor-warm")  # the next item's highlights
MESSAGES = {
    "saved": ("ok", "Scores saved."),
    "released": ("ok", "Item returned to the queue."),
    "skipped": ("ok", "Item skipped; it will not be offered to you again."),
    "expired": ("warn", "That item is no longer yours: another assessor holds it or it was scored."),
    "scored": ("warn", "That item was already scored."),
    "notyours": ("warn", "That item is not yours: you never claimed it. Claim from the list or with Claim next item."),
    "mine": ("warn", "You already submitted that item (in another tab or window): the first submit was recorded, "
                     "the later one was not."),
    "baditem": ("warn", "That is not a valid item number, so nothing was claimed. Claim from the list or with "
                        "Claim next item."),
    "gone": ("warn", "That item can no longer be claimed: someone else took it, it was scored, or it is not one "
                     "you may rate. Pick another from the list."),
    "empty": ("ok", "Nothing left to claim. Thank you!"),
    "nomatch": ("ok", "Nothing matches those filters for you right now."),
}
ROUTES = ("human", "double", "audit")
AGES = {"": None, "1h": 3600, "1d": 86_400, "7d": 7 * 86_400}


class _Login(Exception):
    """Raised by :func:`page_key` to send the browser to the login form."""


class _Refused(Exception):
    """Raised by a page's key check for a logged-in key whose role may not use that page (an admin on the
    rating pages, an assessor on the lead's): said in words, 403, with a link to the pages the key may use."""

    def __init__(self, key: ApiKey, message: str, home: str) -> None:
        super().__init__(message)
        self.key, self.message, self.home = key, message, home


def cookie_key(request: Request, c: AppContext) -> ApiKey:
    """The page's logged-in key (the cookie), any role; :class:`_Login` when there is none or it is not valid."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        raise _Login()
    try:
        return keys.authenticate(c.store, raw)
    except Unauthorized:
        raise _Login() from None


def page_key(request: Request, c: AppContext = Depends(ctx)) -> ApiKey:
    """An assessor's key: the rating pages. An admin (a lead) never rates, and is told so."""
    key = cookie_key(request, c)
    if key.role == "admin":
        raise _Refused(key, f"{RATING_NEEDS_ASSESSOR}; key {key.name!r} has role 'admin'", "/assessor/adjudications")
    if key.role != "assessor":
        raise _Login()
    return key


def refused(request: Request, exc: _Refused) -> Response:
    if _wants_json(request):
        return JSONResponse({"ok": False, "message": exc.message}, status_code=403)
    return templates.TemplateResponse(request, "refused.html", {
        "key": exc.key, "lead": exc.key.role == "admin", "message": exc.message, "home": exc.home}, status_code=403)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _filters(params: Any) -> queue.QueueFilter:
    route = str(params.get("route") or "")
    age = str(params.get("age") or "")
    return queue.QueueFilter(rubric_id=str(params.get("rubric") or "") or None,
                             criterion=str(params.get("criterion") or "") or None,
                             route=route if route in ROUTES else None, min_age_s=AGES.get(age))


def _filter_query(f: queue.QueueFilter, params: Any) -> str:
    """The assessor's filters as a query string (empty when none): they follow the assessor from the list
    to the item page and into the submit form, so "submit and next" claims within the same filters."""
    q = {"rubric": f.rubric_id or "", "criterion": f.criterion or "", "route": f.route or "",
         "age": str(params.get("age") or "") if f.min_age_s else ""}
    return urlencode({k: v for k, v in q.items() if v})


def _narrowed(f: queue.QueueFilter) -> bool:
    return any((f.rubric_id, f.criterion, f.route, f.min_age_s))


def store_now() -> datetime:
    return datetime.now(UTC)


def _age(created: datetime, now: datetime) -> str:
    s = max(0, int((now - created).total_seconds()))
    return f"{s // 86_400} d" if s >= 86_400 else f"{s // 3600} h" if s >= 3600 else f"{s // 60} min"


def _dashboard(request: Request, c: AppContext, key: ApiKey, msg: str | None, status: int = 200,
               note: str | None = None) -> HTMLResponse:
    n = queue.counts(c.store, key.name)
    held = queue.held_by(c.store, key.name)
    f = _filters(request.query_params)
    items = queue.available(c.store, key.name, f)
    labels = queue.submission_labels(c.store, [it.submission_id for it in items])
    now = store_now()
    rows = [{"pos": i + 1, "item": it, "external_id": labels.get(it.submission_id, ("?", "?", 0))[0],
             "rubric": labels.get(it.submission_id, ("?", "?", 0))[1], "age": _age(it.created_at, now)}
            for i, it in enumerate(items)]
    rubrics = sorted({r.rubric_id for r in c.store.rubrics()})
    crits = sorted({cr.id for r in c.store.rubrics() for cr in c.store.rubric(r.rubric_id, r.version).criteria})
    message = MESSAGES.get(msg or "")
    if note:
        message = ("warn", note)
    return templates.TemplateResponse(request, "queue.html", {
        "key": key, "counts": n, "held": held, "message": message, "rows": rows,
        "waiting": queue.count_available(c.store, key.name),
        "filters": {"rubric": f.rubric_id or "", "criterion": f.criterion or "", "route": f.route or "",
                    "age": str(request.query_params.get("age") or "")},
        "rubric_ids": rubrics, "criterion_ids": crits, "routes": ROUTES, "ages": [a for a in AGES if a],
    }, status_code=status)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"error": None})


KEY_MAX = 200  # an API key is far shorter: a longer paste is something else (a paragraph, a whole file)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, api_key: str = Form(""), c: AppContext = Depends(ctx)) -> Response:
    if len(api_key.strip()) > KEY_MAX:  # the form again, in words (a Form(max_length) answers raw JSON)
        return templates.TemplateResponse(request, "login.html", {
            "error": f"That is not an API key: it is {len(api_key.strip())} characters long, and a key is at most "
                     f"{KEY_MAX}. Paste only the key your administrator gave you."}, status_code=422)
    try:
        key = keys.authenticate(c.store, api_key)
    except Unauthorized:
        return templates.TemplateResponse(request, "login.html", {"error": "That key is not valid."}, status_code=401)
    if key.role not in ("assessor", "admin"):
        return templates.TemplateResponse(request, "login.html", {
            "error": f"Key {key.name!r} has role {key.role!r}; this page is for assessors, and for leads (admin keys) "
                     "who resolve disagreements."}, status_code=403)
    resp = _redirect("/assessor/adjudications" if key.role == "admin" else "/assessor")  # a lead never rates
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
async def claim(request: Request, c: AppContext = Depends(ctx), key: ApiKey = Depends(page_key)) -> Response:
    """Claim the next item (matching the queue list's filters), or the one item the list's row names."""
    form = await request.form()
    held = queue.held_by(c.store, key.name)
    if held:  # finish what you hold first: the page works one item at a time
        return _redirect(f"/assessor/items/{held[0].id}")
    f = _filters(form)
    fq = _filter_query(f, form)
    back = f"&{fq}" if fq else ""  # the list comes back under the filters the assessor chose, not reset to "any"
    raw = str(form.get("item") or "").strip()
    item_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None
    if raw and item_id is None:  # a bad item number is said, never read as "the next item"
        return _redirect("/assessor?msg=baditem" + back)
    it = queue.claim(c.store, key.name, c.settings.lease_seconds, where=f, item_id=item_id)
    if it is None:
        if item_id is not None:
            return _redirect("/assessor?msg=gone" + back)
        return _redirect("/assessor?msg=" + ("nomatch" if _narrowed(f) else "empty") + back)
    return _redirect(f"/assessor/items/{it.id}" + (f"?{fq}" if fq else ""))


def _render_item(request: Request, c: AppContext, key: ApiKey, it: queue.QueueItem, *, error: str | None = None,
                 form: dict[str, str] | None = None, status: int = 200, note: str | None = None,
                 filters: Any = None) -> HTMLResponse:
    d = assessment.item_details(c.store, c.models, it, highlights=0 if it.blind else HIGHLIGHTS)
    hls = {cd.criterion.id: cd.highlights for cd in d.criteria if cd.highlights}
    common, differing = d.why_person
    rule = assessment.rationale_rule(d.rubric, c.settings.rationale_required)
    waiting = queue.count_available(c.store, key.name)
    return templates.TemplateResponse(request, "item.html", {
        "key": key, "item": it, "d": d, "sub": d.submission, "fields": field_views(d.rubric, d.submission.evidence, hls),
        "has_highlights": bool(hls), "why_common": common, "why_differs": differing, "rule": rule,
        "counts": queue.counts(c.store, key.name), "waiting_for_me": waiting, "error": error, "note": note,
        "form": form or {}, "lease_seconds": c.settings.lease_seconds,
        "filters": _filter_fields(filters if filters is not None else request.query_params),
        "lease_left": max(0, int((it.lease_expires - store_now()).total_seconds())) if it.lease_expires else 0,
    }, status_code=status)


def _filter_fields(params: Any) -> dict[str, str]:
    """The assessor's filters, carried as hidden fields of the score form (see :func:`_filter_query`)."""
    f = _filters(params)
    return {k: v for k, v in (("rubric", f.rubric_id or ""), ("criterion", f.criterion or ""), ("route", f.route or ""),
                              ("age", str(params.get("age") or "") if f.min_age_s else "")) if v}


def _take_back(c: AppContext, key: ApiKey, it: queue.QueueItem) -> queue.QueueItem | None:
    """The item again when this assessor's lease expired and nobody else holds it now (a reload after a
    break); None when it is gone to someone else or scored."""
    if it.holder != key.name or it.lease_token is None:
        return None
    try:
        return queue.reclaim(c.store, it.id, key.name, it.lease_token, c.settings.lease_seconds)
    except (LeaseExpired, AlreadyScored, NotFound):
        return None


@router.get("/items/{item_id}", response_class=HTMLResponse)
def show(request: Request, item_id: int, c: AppContext = Depends(ctx), key: ApiKey = Depends(page_key)) -> Response:
    try:
        it = queue.item(c.store, item_id)
    except NotFound:
        return _redirect("/assessor")
    if it.status == "claimed" and it.holder == key.name and it.id not in {h.id for h in queue.held_by(c.store, key.name)}:
        again = _take_back(c, key, it)  # expired, still ours: renew rather than throw the work away
        if again is None:
            return _redirect("/assessor?msg=expired")
        return _render_item(request, c, key, again, note="Your lease had expired; nobody else took the item, "
                                                          "so it is yours again.")
    if it.holder != key.name or it.status != "claimed":
        return _redirect("/assessor?msg=expired")
    page = _render_item(request, c, key, it)
    _WARM.submit(assessment.warm_next, c.store, c.models, key.name, HIGHLIGHTS)  # while they read this one
    return page


@router.post("/items/{item_id}/renew")
async def renew(request: Request, item_id: int, c: AppContext = Depends(ctx), key: ApiKey = Depends(page_key)) -> Response:
    """Extend the lease while the assessor works (the page calls this on activity); an expired lease
    nobody took over is taken back. JSON for the page's script."""
    form = await request.form()
    token = str(form.get("lease_token") or "")
    try:
        it = queue.renew(c.store, item_id, key.name, token, c.settings.lease_seconds)
    except Forbidden as exc:  # never claimed by this person: nothing of theirs to renew
        return JSONResponse({"ok": False, "message": str(exc)}, status_code=403)
    except (LeaseExpired, AlreadyScored, NotFound) as exc:
        return JSONResponse({"ok": False, "message": str(exc)}, status_code=409)
    assert it.lease_expires is not None
    return JSONResponse({"ok": True, "lease_token": it.lease_token, "lease_expires": it.lease_expires.isoformat(),
                         "seconds_left": int((it.lease_expires - store_now()).total_seconds())})


def _level(raw: str) -> int | None:
    """A level typed in the form, or None: ASCII digits with an optional sign, short enough to be a level
    (``str.isdigit`` also accepts superscripts like "²", which ``int`` refuses)."""
    raw = raw.strip()
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 9):
        return None
    return int(raw)


def _problem(request: Request, message: str, status: int, then: str | None = None) -> Response:
    if _wants_json(request):
        return JSONResponse({"ok": False, "message": message, "then": then}, status_code=status)
    return _redirect(then or "/assessor")


@router.post("/items/{item_id}/submit", response_class=HTMLResponse)
async def submit(request: Request, item_id: int, c: AppContext = Depends(ctx),
                 key: ApiKey = Depends(page_key)) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    token = form.get("lease_token", "")
    try:
        it = queue.item(c.store, item_id)
    except NotFound:
        return _problem(request, f"queue item {item_id} does not exist", 404, "/assessor")
    scores: dict[str, tuple[int, str]] = {}
    missing = []
    for cid in it.criteria:
        level = _level(form.get(f"score__{cid}", ""))
        if level is None:
            missing.append(cid)
            continue
        scores[cid] = (level, form.get(f"rationale__{cid}", "").strip())
    try:
        if missing:
            raise InvalidRequest(f"choose a level for: {', '.join(missing)}")
        assessment.submit_item(c.store, c.policy_of_item(it), item_id, key.name, token, scores,
                               rationale=c.settings.rationale_required, lease_seconds=c.settings.lease_seconds)
    except Forbidden as exc:  # an item this person never claimed
        return _problem(request, str(exc), 403, "/assessor?msg=notyours")
    except LeaseExpired as exc:  # someone else holds it now: the page keeps the draft and says who
        if _wants_json(request):
            return JSONResponse({"ok": False, "message": str(exc), "lost": True}, status_code=409)
        return _dashboard(request, c, key, None, status=409, note=str(exc))
    except AlreadyScored:
        cur = queue.item(c.store, item_id)
        if cur.holder == key.name:  # two tabs (or windows) on one item: the other one submitted first
            return _problem(request, _already_yours(c, cur), 409, "/assessor?msg=mine")
        return _problem(request, "That item was already scored.", 409, "/assessor?msg=scored")
    except (InvalidRequest, ScoreOutOfScale, SameRater) as exc:
        if _wants_json(request):
            return JSONResponse({"ok": False, "message": str(exc)}, status_code=422)
        cur = queue.item(c.store, item_id)
        if cur.holder != key.name or cur.status != "claimed":
            return _redirect("/assessor?msg=expired")
        return _render_item(request, c, key, cur, error=str(exc), form=form, status=422, filters=form)
    f = _filters(form)  # the filters the assessor claimed under (hidden fields of the form)
    fq = _filter_query(f, form)
    if form.get("then") == "stop":
        nxt_url = "/assessor?msg=saved" + (f"&{fq}" if fq else "")
    else:
        nxt = queue.claim(c.store, key.name, c.settings.lease_seconds, where=f)  # on to the next matching item
        if nxt:
            nxt_url = f"/assessor/items/{nxt.id}?msg=saved" + (f"&{fq}" if fq else "")
        else:
            nxt_url = "/assessor?msg=" + quote("nomatch" if _narrowed(f) else "empty") + (f"&{fq}" if fq else "")
    if _wants_json(request):
        return JSONResponse({"ok": True, "next": nxt_url})
    return _redirect(nxt_url)


def _already_yours(c: AppContext, it: queue.QueueItem) -> str:
    """What a second submit of an item this person already scored says: which submit counted, and the
    levels it recorded (the assessor's own, so nothing leaks on blind items)."""
    mine = {h.criterion: h.score for h in c.store.human_scores(submission_id=it.submission_id)
            if h.assessor == it.holder and h.kind == it.kind and h.criterion in it.criteria}
    levels = ", ".join(f"{cid} {mine[cid]}" for cid in it.criteria if cid in mine)
    return ("You already submitted this item (in another tab or window): that submit was recorded"
            + (f" (levels {levels})" if levels else "") + ", and the levels on this page were not. "
            "Nothing more is needed for this item")


@router.post("/items/{item_id}/release")
def release(request: Request, item_id: int, lease_token: str = Form(""), skip: str = Form(""),
            c: AppContext = Depends(ctx), key: ApiKey = Depends(page_key)) -> Response:
    """Give the item back (or skip it: never offered to this person again). The script posts with
    ``Accept: application/json`` and clears its local draft only on ``ok``; a plain form is redirected."""
    try:
        queue.release(c.store, item_id, key.name, lease_token, skip=bool(skip))
    except Forbidden as exc:
        return _problem(request, str(exc), 403, "/assessor?msg=notyours")
    except (LeaseExpired, AlreadyScored, NotFound) as exc:
        return _problem(request, str(exc), 409, "/assessor?msg=expired")
    nxt = "/assessor?" + urlencode({"msg": "skipped" if skip else "released"})
    if _wants_json(request):
        return JSONResponse({"ok": True, "next": nxt})
    return _redirect(nxt)
