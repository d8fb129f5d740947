"""The lead's pages on the assessor web app: the disagreements waiting for a resolved score, and one of them
to resolve (adjudication).

A lead logs in at ``/assessor/login`` with an admin key and lands here; an admin never rates, so the rating
pages refuse the key (:func:`api.routers.assessor.page_key`), and these pages refuse every other role. What
is shown and what is recorded goes through ``scoring.usecases.assessment`` (``pending_adjudications``,
``disagreement``, ``adjudicate``), as the JSON API under ``/adjudications`` does. The item page reuses the
assessor page's evidence partial and script: keyboard digits, a draft kept in the browser, and a submit
that keeps the typed work through a lost connection or a server error.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.context import AppContext
from api.deps import ctx
from api.evidence import field_views
from api.routers.assessor import _age, _level, _Refused, _wants_json, cookie_key, store_now, templates
from scoring.errors import (
    AlreadyAdjudicated,
    InvalidRequest,
    NotFound,
    NothingToAdjudicate,
    SameRater,
    ScoreOutOfScale,
)
from scoring.store import queue
from scoring.store.keys import ApiKey
from scoring.usecases import assessment

router = APIRouter(prefix="/assessor/adjudications", include_in_schema=False)
SLOTS = {"first": "first rater", "second": "second rater", "audit": "blind audit"}
MESSAGES = {
    "unknown": ("warn", "There is no such submission or criterion. Pick a disagreement from the list."),
}


def lead_key(request: Request, c: AppContext = Depends(ctx)) -> ApiKey:
    """A lead's (admin) key: resolving disagreements. Anyone else is told so in words."""
    key = cookie_key(request, c)
    if key.role != "admin":
        raise _Refused(key, f"resolving disagreements needs a lead's key (role admin); key {key.name!r} has role "
                            f"{key.role!r}", "/assessor")
    return key


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _item_url(submission_id: int, criterion: str) -> str:
    return f"/assessor/adjudications/{submission_id}/{quote(criterion, safe='')}"


def _resolved_message(c: AppContext, params: Any) -> tuple[str, str] | None:
    """What the list says after a resolved score was recorded, read back from the store (never from the URL)."""
    try:
        sid = int(str(params.get("sub") or ""))
        sub = c.store.submission(sid)
    except (ValueError, NotFound):
        return ("ok", "Resolved score recorded.")
    crit = str(params.get("criterion") or "")
    a = next((a for a in c.store.adjudications(submission_id=sid) if a.criterion == crit), None)
    if a is None:
        return ("ok", "Resolved score recorded.")
    return ("ok", f"Resolved score recorded: {sub.external_id} · {crit} at level {a.score}.")


@router.get("", response_class=HTMLResponse)
def pending_list(request: Request, msg: str | None = None, c: AppContext = Depends(ctx),
                 key: ApiKey = Depends(lead_key)) -> Response:
    ps = assessment.pending_adjudications(c.store, None, policy_for=c.policy_for)
    ps.sort(key=lambda p: (p.since.timestamp() if p.since else 0.0, p.submission_id, p.criterion))  # oldest first
    labels = queue.submission_labels(c.store, [p.submission_id for p in ps])
    titles: dict[tuple[str, int], dict[str, str]] = {}
    now = store_now()
    rows = []
    for p in ps:
        ext, rubric_id, version = labels.get(p.submission_id, ("?", "?", 0))
        if (rubric_id, version) not in titles:
            try:
                titles[rubric_id, version] = {cr.id: cr.title for cr in c.store.rubric(rubric_id, version).criteria}
            except NotFound:
                titles[rubric_id, version] = {}
        rows.append({"p": p, "external_id": ext, "rubric": rubric_id, "url": _item_url(p.submission_id, p.criterion),
                     "title": titles[rubric_id, version].get(p.criterion, p.criterion),
                     "ratings": [(lv, SLOTS.get(k, k)) for lv, k in zip(p.human_scores, p.kinds, strict=False)],
                     "age": _age(p.since, now) if p.since else "?"})
    message = _resolved_message(c, request.query_params) if msg == "resolved" else MESSAGES.get(msg or "")
    return templates.TemplateResponse(request, "adjudications.html", {
        "key": key, "lead": True, "rows": rows, "message": message}, status_code=200)


def _render(request: Request, c: AppContext, key: ApiKey, submission_id: int, criterion: str, *,
            error: str | None = None, form: dict[str, str] | None = None, status: int = 200) -> Response:
    try:
        sub = c.store.submission(submission_id)
        d = assessment.disagreement(c.store, c.models, c.policy_for(sub.rubric_id), submission_id, criterion)
    except NotFound:
        return _redirect("/assessor/adjudications?msg=unknown")
    return templates.TemplateResponse(request, "adjudication.html", {
        "key": key, "lead": True, "d": d, "sub": d.submission, "c": d.criterion, "slots": SLOTS,
        "fields": field_views(d.rubric, d.submission.evidence), "error": error, "form": form or {},
        "action": _item_url(submission_id, criterion), "now": store_now(), "age": _age,
        "item_key": f"adj-{submission_id}-{criterion}",
    }, status_code=status)


@router.get("/{submission_id}/{criterion}", response_class=HTMLResponse)
def show(request: Request, submission_id: int, criterion: str, c: AppContext = Depends(ctx),
         key: ApiKey = Depends(lead_key)) -> Response:
    return _render(request, c, key, submission_id, criterion)


@router.post("/{submission_id}/{criterion}", response_class=HTMLResponse)
async def resolve(request: Request, submission_id: int, criterion: str, c: AppContext = Depends(ctx),
                  key: ApiKey = Depends(lead_key)) -> Response:
    """Record the resolved score. The script posts with ``Accept: application/json`` and reads ``ok`` and
    ``next`` or ``message`` (keeping the typed level and rationale on a refusal); a plain form is redirected
    to the list, or shown the page again with the refusal in words and what was typed."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    level = _level(form.get("score", ""))
    try:
        if level is None:
            raise InvalidRequest("choose the resolved level")
        sub = c.store.submission(submission_id)
        assessment.adjudicate(c.store, submission_id, criterion, level, adjudicator=key.name,
                              rationale=form.get("rationale", "").strip(), policy=c.policy_for(sub.rubric_id),
                              require_rationale=True)
    except NotFound as exc:
        return _refusal(request, c, key, submission_id, criterion, str(exc), 404, form)
    except (AlreadyAdjudicated, NothingToAdjudicate, SameRater) as exc:
        return _refusal(request, c, key, submission_id, criterion, str(exc), 409, form)
    except (InvalidRequest, ScoreOutOfScale) as exc:
        return _refusal(request, c, key, submission_id, criterion, str(exc), 422, form)
    nxt = "/assessor/adjudications?" + urlencode({"msg": "resolved", "sub": submission_id, "criterion": criterion})
    if _wants_json(request):
        return JSONResponse({"ok": True, "next": nxt})
    return _redirect(nxt)


def _refusal(request: Request, c: AppContext, key: ApiKey, submission_id: int, criterion: str, message: str,
             status: int, form: dict[str, str]) -> Response:
    message = message[:1].upper() + message[1:]
    if _wants_json(request):
        return JSONResponse({"ok": False, "message": message}, status_code=status)
    return _render(request, c, key, submission_id, criterion, error=message, form=form, status=status)
