"""The service's use cases, between the routers (HTTP) and the store/pipeline (domain).

Scoring one submission: store it (duplicate external id with other content -> 409), pre-score every
criterion, route each one (``scoring.routing`` with the served policy; without a policy every criterion
goes to a human), record the machine scores in the audit log, and queue the rater slots the routes need.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from api import schemas as S
from api.context import AppContext
from models.artifact import ScoringModel
from rubrics.schema import Rubric
from scoring.errors import ExternalIdTaken, InvalidRequest, NotFound
from scoring.evidence import has_text
from scoring.prescore import ScoredSubmission, prescore
from scoring.store import MachineScoreIn, SubmissionRecord, jobs, queue

log = logging.getLogger("api")
NO_POLICY = "no routing policy loaded: every criterion goes to a human"


def resolve_version(ctx: AppContext, rubric_id: str, version: int | None) -> int:
    """The named version, else the version a model serves for the rubric, else the newest registered one."""
    if version is not None:
        ctx.store.rubric(rubric_id, version)  # NotFound (cached by the store after the first read)
        return version
    newest = ctx.store.rubric(rubric_id).version  # always asked: NotFound for an unknown rubric
    served = ctx.models.served_version(rubric_id)
    if served is not None:
        ctx.store.rubric(rubric_id, served)  # the served model's rubric must be registered too
        return served
    return newest


def check_evidence(rubric: Rubric, evidence: dict[str, str], max_chars: int) -> None:
    unknown = [k for k in evidence if k not in rubric.evidence]
    if unknown:
        raise InvalidRequest(f"rubric {rubric.key} declares evidence fields {list(rubric.evidence)}; "
                             f"found unknown field(s) {unknown}")
    if not any(has_text(v) for v in evidence.values()):
        raise InvalidRequest(f"evidence is empty: expected text in at least one of {list(rubric.evidence)}")
    long = {k: len(v) for k, v in evidence.items() if len(v) > max_chars}
    if long:
        raise InvalidRequest(f"evidence longer than {max_chars} characters is rejected, found {long}")


def route(ctx: AppContext, model: ScoringModel, items: list[ScoredSubmission]) -> str | None:
    """Add route/reason/prediction_set to every criterion result; returns the policy version used."""
    if ctx.policy is not None:
        from scoring.routing import routing_hook

        routing_hook(model, ctx.policy, ctx.store)(items, [None] * len(items))
        return str(ctx.policy.policy_version)
    for it in items:
        for res in it.criteria.values():
            res.extra.update(route="human", reason=NO_POLICY)
    return None


def _routes_of(item: ScoredSubmission) -> tuple[dict[str, str], dict[str, str]]:
    routes = {c: str(r.extra.get("route", "human")) for c, r in item.criteria.items()}
    reasons = {c: str(r.extra.get("reason") or "") for c, r in item.criteria.items()}
    return routes, reasons


def record_scored(ctx: AppContext, model: ScoringModel, subs: Sequence[SubmissionRecord],
                  items: Sequence[ScoredSubmission], policy_version: str | None,
                  owner: str) -> list[list[queue.QueueItem]]:
    """Machine scores (one audited transaction), then queue slots and ownership per submission."""
    rows = [MachineScoreIn(sub.id, cid, r.score, probabilities={str(k): v for k, v in r.probabilities.items()},
                           prediction_set=r.extra.get("prediction_set"), route=r.extra.get("route"),
                           reason=r.extra.get("reason"), model_version=model.version,
                           policy_version=policy_version)
            for sub, it in zip(subs, items, strict=True) for cid, r in it.criteria.items()]
    ctx.store.record_machine_scores(rows)
    slots = []
    for sub, it in zip(subs, items, strict=True):
        routes, reasons = _routes_of(it)
        slots.append(queue.enqueue(ctx.store, sub.id, routes, reasons=reasons))
        jobs.set_owner(ctx.store, sub.id, owner)
    return slots


def fresh_result(sub: SubmissionRecord, model: ScoringModel, item: ScoredSubmission, policy_version: str | None,
                 slots: list[queue.QueueItem]) -> S.SubmissionResult:
    """The response for a just-scored submission, from what was just written (no read-back queries)."""
    crit = {cid: S.CriterionResultOut(score=r.score, probabilities={str(k): v for k, v in r.probabilities.items()},
                                      route=r.extra.get("route"), reason=r.extra.get("reason"),
                                      prediction_set=r.extra.get("prediction_set"))
            for cid, r in item.criteria.items()}
    return S.SubmissionResult(
        submission_id=sub.id, external_id=sub.external_id, rubric_id=sub.rubric_id, rubric_version=sub.rubric_version,
        model_version=model.version, policy_version=policy_version, created=True, criteria=crit,
        queue=[S.QueueRef(id=q.id, kind=q.kind, criteria=q.criteria, status=q.status) for q in slots],
        human_scores=[])


def result(ctx: AppContext, sub: SubmissionRecord, *, created: bool) -> S.SubmissionResult:
    """A submission's latest machine score per criterion, its queue slots and human scores, from the store."""
    latest: dict[str, Any] = {}
    for m in ctx.store.machine_scores(submission_id=sub.id):
        latest[m.criterion] = m
    crit = {c: S.CriterionResultOut(score=m.score, probabilities=m.probabilities, route=m.route, reason=m.reason,
                                    prediction_set=m.prediction_set) for c, m in latest.items()}
    any_m = next(iter(latest.values()), None)
    return S.SubmissionResult(
        submission_id=sub.id, external_id=sub.external_id, rubric_id=sub.rubric_id,
        rubric_version=sub.rubric_version, model_version=any_m.model_version if any_m else None,
        policy_version=any_m.policy_version if any_m else None, created=created, criteria=crit,
        queue=[S.QueueRef(id=q.id, kind=q.kind, criteria=q.criteria, status=q.status)
               for q in queue.items_for_submission(ctx.store, sub.id)],
        human_scores=[S.HumanScoreOut(criterion=h.criterion, score=h.score, kind=h.kind, blind=h.blind,
                                      created_at=h.created_at)
                      for h in ctx.store.human_scores(submission_id=sub.id)],
    )


def _taken(rubric_id: str, external_id: str) -> ExternalIdTaken:
    return ExternalIdTaken(f"external id {external_id!r} for rubric {rubric_id} was already used by another issuer; "
                           "ids are shared per rubric, so prefix yours (e.g. with your organisation)")


def check_not_taken(ctx: AppContext, rubric_id: str, external_id: str, owner: str) -> None:
    """Refuse an external id another issuer already used for this rubric (before anything is compared)."""
    try:
        existing = ctx.store.find_submission(rubric_id, external_id)
    except NotFound:
        return
    first = jobs.owner_of(ctx.store, existing.id)
    if first is not None and first != owner:
        raise _taken(rubric_id, external_id)


def claim_owner(ctx: AppContext, sub: SubmissionRecord, owner: str) -> None:
    """Record the submission's owner as soon as it is stored (first writer wins), then check it is us.

    Why at once and not after scoring: until the owner is recorded, another issuer's request for the same
    id would pass ``check_not_taken`` and be answered with this submission.
    """
    jobs.set_owner(ctx.store, sub.id, owner)
    if jobs.owner_of(ctx.store, sub.id) != owner:
        raise _taken(sub.rubric_id, sub.external_id)


def score_one(ctx: AppContext, owner: str, body: S.SubmissionIn) -> tuple[int, S.SubmissionResult]:
    """201 with the new result, or 200 with the stored one when this exact submission was already scored."""
    version = resolve_version(ctx, body.rubric_id, body.rubric_version)
    model = ctx.models.get(body.rubric_id, version)
    check_evidence(model.rubric, body.evidence, ctx.settings.max_text_chars)
    with ctx.submission_lock(body.rubric_id, body.external_id):
        check_not_taken(ctx, body.rubric_id, body.external_id, owner)
        sub = ctx.store.add_submission(body.rubric_id, version, body.external_id, dict(body.evidence),
                                       dict(body.metadata))  # DuplicateSubmission -> 409
        claim_owner(ctx, sub, owner)
        if ctx.store.machine_scores(submission_id=sub.id, model_version=model.version):
            return 200, result(ctx, sub, created=False)
        items = [ctx.prescorer.score(model, body.external_id, dict(body.evidence))]
        pv = route(ctx, model, items)
        slots = record_scored(ctx, model, [sub], items, pv, owner)
    return 201, fresh_result(sub, model, items[0], pv, slots[0])


# ------------------------------------------------------------------------------------------ batch jobs


def run_batch_job(ctx: AppContext, job_id: int, owner: str, rubric_id: str, version: int,
                  rows: list[tuple[str, dict[str, Any], dict[str, Any], str | None]], block: int = 32) -> None:
    """Score ``(external_id, evidence, metadata, reject_reason)`` rows block by block, updating progress.

    A row that cannot be stored or scored is recorded with its error and the job goes on; only a
    failure of the whole block machinery marks the job ``failed``.
    """
    store = ctx.store
    try:
        model = ctx.models.get(rubric_id, version)
        jobs.update_job(store, job_id, status="running")
        for start in range(0, len(rows), block):
            chunk = rows[start:start + block]
            results: list[jobs.BatchResult] = []
            good: list[tuple[int, str, dict[str, Any], dict[str, Any]]] = []
            for i, (ext, ev, meta, reject) in enumerate(chunk, start):
                if reject is None:
                    try:
                        check_evidence(model.rubric, ev, ctx.settings.max_text_chars)
                    except InvalidRequest as exc:
                        reject = str(exc)
                if reject is not None:
                    results.append(jobs.BatchResult(i, ext, None, reject))
                else:
                    good.append((i, ext, ev, meta))
            subs: list[tuple[int, SubmissionRecord]] = []
            for i, ext, ev, meta in good:
                try:
                    check_not_taken(ctx, rubric_id, ext, owner)
                    sub = store.add_submission(rubric_id, version, ext, ev, meta)
                    claim_owner(ctx, sub, owner)
                    subs.append((i, sub))
                except Exception as exc:  # noqa: BLE001 - a bad row is reported, the job goes on
                    results.append(jobs.BatchResult(i, ext, None, f"{getattr(exc, 'code', 'error')}: {exc}"))
            fresh = [(i, s) for i, s in subs
                     if not store.machine_scores(submission_id=s.id, model_version=model.version)]
            if fresh:
                evid = {s.id: s.evidence for _, s in fresh}
                items = prescore(model, [s.external_id for _, s in fresh], [evid[s.id] for _, s in fresh])
                pv = route(ctx, model, items)
                record_scored(ctx, model, [s for _, s in fresh], items, pv, owner)
            results += [jobs.BatchResult(i, s.external_id, s.id, None) for i, s in subs]
            jobs.update_job(store, job_id, results=sorted(results, key=lambda r: r.position))
        jobs.update_job(store, job_id, status="done")
    except Exception as exc:  # noqa: BLE001 - the job's record must say why it stopped
        log.exception("batch job %s failed", job_id)
        jobs.update_job(store, job_id, status="failed", error=f"{getattr(exc, 'code', type(exc).__name__)}: {exc}")


def rows_from_file(ctx: AppContext, rubric: Rubric, path: Path) -> list[tuple[str, dict[str, Any], dict[str, Any], str | None]]:
    """Read an uploaded backlog (CSV/TSV/JSONL/Parquet) with the same reader as ``scoring score``."""
    from scoring.ingest import ColumnMap, infer_columns, read_records

    cols = infer_columns(rubric, ColumnMap(id="id"))
    out: list[tuple[str, dict[str, Any], dict[str, Any], str | None]] = []
    for r in read_records(path, rubric, cols, max_chars=ctx.settings.max_text_chars):
        ev = {k: (v if isinstance(v, str) else str(v)) for k, v in (r.evidence or {}).items()}
        reject = r.reject.replace(" or pass --encoding", "") if r.reject else None  # a CLI option, not an API one
        out.append((str(r.id or f"row-{r.number}"), ev, {}, reject))
    return out


def job_out(j: jobs.BatchJob) -> S.BatchJobOut:
    total = max(j.total, 1)
    return S.BatchJobOut(id=j.id, status=j.status, rubric_id=j.rubric_id, rubric_version=j.rubric_version,  # type: ignore[arg-type]
                         total=j.total, done=j.done, rejected=j.rejected,
                         progress=round(min(1.0, (j.done + j.rejected) / total), 4) if j.total else 1.0,
                         error=j.error, created_at=j.created_at, updated_at=j.updated_at)


# ------------------------------------------------------------------------------------------- queue view


def item_view(ctx: AppContext, it: queue.QueueItem, *, highlights: int = 0) -> S.QueueItemView:
    """What an assessor sees of a held item. Blind items carry no machine score, probabilities, routing
    reason or highlights (highlights are derived from the machine's reading, so they would cue it)."""
    if it.lease_token is None or it.lease_expires is None:
        raise NotFound(f"queue item {it.id} is not held")
    sub = ctx.store.submission(it.submission_id)
    rubric = ctx.store.rubric(sub.rubric_id, sub.rubric_version)
    machine: dict[str, Any] = {}
    if not it.blind:
        for ms in ctx.store.machine_scores(submission_id=sub.id):
            machine[ms.criterion] = ms
    model = None
    if not it.blind and highlights:
        try:
            model = ctx.models.get(sub.rubric_id, sub.rubric_version)
        except Exception:  # noqa: BLE001 - highlights are a help, never a reason to fail the page
            model = None
    views = []
    for cid in it.criteria:
        c = rubric.criterion(cid)
        m = machine.get(cid)
        hl = None
        if model is not None:
            try:
                from scoring.highlights import level_highlights

                level = m.score if m is not None else c.scores[0]
                hl = [h.to_dict() for h in level_highlights(model, cid, sub.evidence, level, highlights)]
            except Exception:  # noqa: BLE001
                log.warning("highlights failed for item %s criterion %s", it.id, cid, exc_info=True)
        views.append(S.CriterionView(
            id=c.id, title=c.title, description=c.description,
            levels=[S.LevelOut(score=lv.score, label=lv.label, descriptor=lv.descriptor) for lv in c.levels],
            machine=None if m is None else S.CriterionResultOut(score=m.score, probabilities=m.probabilities,
                                                                route=m.route, reason=m.reason,
                                                                prediction_set=m.prediction_set),
            highlights=hl))
    pos, waiting = queue.position(ctx.store, it.id)
    return S.QueueItemView(id=it.id, submission_id=sub.id, kind=it.kind, route=it.route,
                           reason=None if it.blind else it.reason, blind=it.blind, lease_token=it.lease_token,
                           lease_expires=it.lease_expires, position=pos, waiting=waiting, rubric_id=sub.rubric_id,
                           rubric_version=sub.rubric_version, evidence=sub.evidence, criteria=views)


def needs_adjudication(ctx: AppContext, submission_id: int, criteria: Sequence[str]) -> list[str]:
    out = []
    for c in criteria:
        scores = [h.score for h in ctx.store.human_scores(submission_id=submission_id, criterion=c)
                  if h.kind in ("first", "second", "audit")]
        if len(scores) >= 2 and max(scores) - min(scores) > adjudication_gap(ctx, c):
            out.append(c)
    return out


def adjudication_gap(ctx: AppContext, criterion: str) -> int:
    if ctx.policy is not None:
        return int(ctx.policy.gap_for(criterion))
    return 1
