"""Use-case results -> response schemas. Mapping only: no store writes, no scoring decisions."""

from __future__ import annotations

from api import schemas as S
from scoring.store import MachineScore, Store, SubmissionRecord, jobs, queue
from scoring.usecases.assessment import ItemDetails
from scoring.usecases.intake import Outcome


def _criterion(m: MachineScore) -> S.CriterionResultOut:
    return S.CriterionResultOut(score=m.score, probabilities=m.probabilities, route=m.route, reason=m.reason,
                                prediction_set=m.prediction_set)


def _slots(items: list[queue.QueueItem]) -> list[S.QueueRef]:
    return [S.QueueRef(id=q.id, kind=q.kind, criteria=q.criteria, status=q.status) for q in items]


def submission_result(store: Store, o: Outcome, model_version: str | None = None) -> S.SubmissionResult:
    """A fresh outcome from what was just written; an earlier one from the store."""
    sub = o.submission
    assert sub is not None  # an outcome without a submission is an error, raised before mapping
    if o.created and o.scored is not None:
        crit = {cid: S.CriterionResultOut(score=r.score, probabilities={str(k): v for k, v in r.probabilities.items()},
                                          route=r.extra.get("route"), reason=r.extra.get("reason"),
                                          prediction_set=r.extra.get("prediction_set"))
                for cid, r in o.scored.criteria.items()}
        return S.SubmissionResult(
            submission_id=sub.id, external_id=sub.external_id, rubric_id=sub.rubric_id,
            rubric_version=sub.rubric_version, model_version=o.scored.model_version, policy_version=o.policy_version,
            created=True, criteria=crit, queue=_slots(o.slots), human_scores=[], decision=_decision(store, sub.id),
            revises=_revises(sub))
    return stored_result(store, sub.id, created=False)


def stored_result(store: Store, submission_id: int, *, created: bool = False) -> S.SubmissionResult:
    """A submission's latest machine score per criterion, its queue slots, human scores and resolved scores."""
    sub = store.submission(submission_id)
    latest: dict[str, MachineScore] = {}
    for m in store.machine_scores(submission_id=sub.id):
        latest[m.criterion] = m
    any_m = next(iter(latest.values()), None)
    return S.SubmissionResult(
        submission_id=sub.id, external_id=sub.external_id, rubric_id=sub.rubric_id,
        rubric_version=sub.rubric_version, model_version=any_m.model_version if any_m else None,
        policy_version=any_m.policy_version if any_m else None, created=created,
        criteria={c: _criterion(m) for c, m in latest.items()},
        queue=_slots(queue.items_for_submission(store, sub.id)),
        human_scores=[S.HumanScoreOut(criterion=h.criterion, score=h.score, kind=h.kind, blind=h.blind,
                                      created_at=h.created_at) for h in store.human_scores(submission_id=sub.id)],
        adjudications=[S.ResolvedScoreOut(criterion=a.criterion, score=a.score, created_at=a.created_at)
                       for a in store.adjudications(submission_id=sub.id)],
        decision=_decision(store, sub.id),
        revises=_revises(sub),
    )


def _revises(sub: SubmissionRecord) -> str | None:
    prev = (sub.metadata or {}).get("revises")
    return str(prev) if prev else None


def _decision(store: Store, submission_id: int) -> S.DecisionOut | None:
    d = store.latest_decision(submission_id)
    if d is None:
        return None
    return S.DecisionOut(outcome=d.outcome, basis=d.basis, p_earned=d.p_earned, levels=d.levels,  # type: ignore[arg-type]
                         reason=d.reason)


def job_out(j: jobs.BatchJob) -> S.BatchJobOut:
    total = max(j.total, 1)
    return S.BatchJobOut(id=j.id, status=j.status, rubric_id=j.rubric_id, rubric_version=j.rubric_version,  # type: ignore[arg-type]
                         total=j.total, done=j.done, rejected=j.rejected,
                         progress=round(min(1.0, (j.done + j.rejected) / total), 4) if j.total else 1.0,
                         error=j.error, created_at=j.created_at, updated_at=j.updated_at, owner=j.owner,
                         resumes=j.resumes, cancelled_by=j.cancelled_by, cancelled_at=j.cancelled_at)


def item_view(d: ItemDetails) -> S.QueueItemView:
    it, sub = d.item, d.submission
    views = [S.CriterionView(
        id=cd.criterion.id, title=cd.criterion.title, description=cd.criterion.description,
        levels=[S.LevelOut(score=lv.score, label=lv.label, descriptor=lv.descriptor) for lv in cd.criterion.levels],
        machine=None if cd.machine is None else _criterion(cd.machine), highlights=cd.highlights)
        for cd in d.criteria]
    return S.QueueItemView(id=it.id, submission_id=sub.id, external_id=sub.external_id, kind=it.kind, route=it.route, reason=d.reason,
                           blind=it.blind, lease_token=it.lease_token, lease_expires=it.lease_expires,  # type: ignore[arg-type]
                           position=d.position, waiting=d.waiting, rubric_id=sub.rubric_id,
                           rubric_version=sub.rubric_version, evidence=sub.evidence, criteria=views,
                           previous=d.previous)
