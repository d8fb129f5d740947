"""Submit-score-route-record: the one path by which a submission enters the store.

The API (one submission or a batch job) and ``scoring score --store`` all end here, so a backlog scored
overnight and a submission sent through the API are indistinguishable afterwards: same rows, same audit
entries, same queue.

Why scoring happens *outside* the write transaction and recording *inside* one: scoring is slow (the
encoder) and must not hold the store's writer lock; recording is fast and must be all or nothing. So
:func:`record_scored` re-checks everything inside its transaction (the id may have been taken, or the
same submission recorded by a concurrent request, since it was scored) and then writes the submission,
its owner, its machine scores with their route decisions and reasons, their audit entries and its queue
slots together. A process killed at any point leaves either all of that or none of it; a re-run or a
resume records nothing twice, because a submission already scored by this model version is answered
from the store (``created=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from models.artifact import ScoringModel
from rubrics.schema import Rubric
from scoring import faults
from scoring.errors import DuplicateSubmission, ExternalIdTaken, InvalidRequest, ScoringError
from scoring.evidence import evidence_problem, has_text
from scoring.prescore import ScoredSubmission, prescore
from scoring.store import MachineScoreIn, Store, SubmissionRecord, content_hash, jobs, queue
from scoring.store import tables as t
from scoring.store.records import _sub_rec
from scoring.store.scores import machine_scores_in
from scoring.store.submissions import REVISES as REVISES_KEY
from scoring.store.submissions import add_submissions_in, evidence_pin

NO_POLICY = "no routing policy loaded: every criterion goes to a human"
ScoreFn = Callable[[ScoringModel, list[str], list[dict[str, Any]]], list[ScoredSubmission]]


@dataclass(frozen=True)
class NewSubmission:
    """One submission as an issuer sends it."""

    external_id: str
    evidence: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What happened to one submission: recorded now (``created``), already recorded, or refused (``error``)."""

    external_id: str
    submission: SubmissionRecord | None = None
    created: bool = False
    error: ScoringError | None = None
    scored: ScoredSubmission | None = None  # the fresh scores and routes when created
    kept: str | None = None  # scored before by another model and not waiting: why (queue.standing), left as it stands
    slots: list[queue.QueueItem] = field(default_factory=list)
    policy_version: str | None = None


# ------------------------------------------------------------------------------------------- checks


def check_evidence(rubric: Rubric, evidence: Mapping[str, str], max_chars: int) -> None:
    """The one evidence check every door applies before anything is stored or scored.

    Raises
    ------
    InvalidRequest
        Unknown or over-long fields, evidence empty altogether, or a criterion whose own evidence is empty.
    TranscriptError
        A field read as a transcript that cannot be parsed, naming the field and the line (``invalid_transcript``).
    """
    unknown = [k for k in evidence if k not in rubric.evidence]
    if unknown:
        raise InvalidRequest(f"rubric {rubric.key} declares evidence fields {list(rubric.evidence)}; "
                             f"found unknown field(s) {unknown}")
    if not any(has_text(v) for v in evidence.values()):
        raise InvalidRequest(f"evidence is empty: expected text in at least one of {list(rubric.evidence)}")
    long = {k: len(v) for k, v in evidence.items() if len(v) > max_chars}
    if long:
        raise InvalidRequest(f"evidence longer than {max_chars} characters is rejected, found {long}")
    problem = evidence_problem(rubric, evidence)
    if problem is not None:
        raise problem


def _taken(rubric_id: str, external_id: str) -> ExternalIdTaken:
    return ExternalIdTaken(f"external id {external_id!r} for rubric {rubric_id} was already used by another issuer; "
                           "ids are shared per rubric, so prefix yours (e.g. with your organisation)")


def _differs(rubric_id: str, external_id: str) -> DuplicateSubmission:
    return DuplicateSubmission(f"submission {external_id!r} for rubric {rubric_id} already exists with different "
                               "evidence or metadata; send it under a new id (or the same content to read its result); "
                               f"a resubmission after 'not yet' goes under a new id naming {external_id!r} in revises")


# ------------------------------------------------------------------------------------------ routing


def route(model: ScoringModel, policy: Any | None, store: Store | None, items: list[ScoredSubmission]) -> str | None:
    """Add route, rule, reason, confidence and prediction set to every criterion; returns the policy version.

    Without a policy every criterion goes to a human (nothing is automated that no policy allowed).
    """
    if policy is not None:
        from scoring.routing import routing_hook

        routing_hook(model, policy, store)(items, [None] * len(items))
        return str(policy.policy_version)
    for it in items:
        for res in it.criteria.values():
            res.extra.update(route="human", rule="no_policy", reason=NO_POLICY)
    if model.rubric.award is not None:
        from scoring.credential import decide_items

        decide_items(model.rubric, None, items)
    return None


def queue_rank(item: ScoredSubmission, order: str) -> float:
    """Where a submission's slots sit within their priority: ``uncertain`` puts the least confident routed
    criterion first; ``oldest`` keeps arrival order (rank 0, then insertion order)."""
    if order != "uncertain":
        return 0.0
    conf = [r.extra.get("confidence") for r in item.criteria.values() if r.extra.get("route") not in (None, "auto")]
    known = [float(c) for c in conf if c is not None]
    if len(known) < len(conf) or not known:
        return -1.0  # no confidence (no tuned threshold, suspended): most uncertain of all
    return min(known)


# ---------------------------------------------------------------------------------------- recording


def record_scored(
    store: Store,
    model: ScoringModel,
    owner: str,
    subs: Sequence[NewSubmission],
    items: Sequence[ScoredSubmission],
    policy_version: str | None,
    *,
    queue_order: str = "uncertain",
    on_commit: Callable[[Any, list[Outcome]], None] | None = None,
) -> list[Outcome]:
    """Record scored submissions in ONE write transaction; see the module docstring.

    Per submission: a new one is inserted with its owner, machine scores (route decisions and reasons in
    each row and its audit entry) and queue slots; one this owner already recorded with the same content is
    answered ``created=False`` (scored by this model before), scored now (stored earlier but never scored by
    this model, and still waiting for a person or never scored by any), or kept (``kept``: scored by another
    model and started by a person or settled); another owner's id or other content under the same id is
    refused with ``error``.
    ``on_commit(tx, outcomes)`` writes caller bookkeeping (a batch job's progress) in the same transaction.
    """
    rubric = model.rubric
    out = [Outcome(s.external_id, policy_version=policy_version) for s in subs]
    with store.write() as tx:
        conn = tx.conn
        ids = [s.external_id for s in subs]
        rows: dict[str, Any] = {}
        for i in range(0, len(ids), 500):
            for found in conn.execute(sa.select(t.submissions).where(
                    t.submissions.c.rubric_id == rubric.id, t.submissions.c.external_id.in_(ids[i:i + 500]))):
                rows[found.external_id] = found
        owners = jobs.owners_of(conn, [int(r.id) for r in rows.values()])
        models = _models_of(conn, [int(r.id) for r in rows.values()])  # submission -> model versions that scored it
        scored_before = {sid for sid, mv in models.items() if model.version in mv}
        seen: dict[str, str] = {}  # external id -> content hash, within this call
        revised_here: dict[str, str] = {}  # earlier external id -> the resubmission revising it, within this call
        todo: list[int] = []
        for k, s in enumerate(subs):
            h = content_hash(s.evidence, s.metadata)
            row: Any = rows.get(s.external_id)
            if row is not None and owners.get(int(row.id), owner) != owner:
                out[k].error = _taken(rubric.id, s.external_id)
            elif (row is not None and row.content_hash != h) or seen.get(s.external_id, h) != h:
                out[k].error = _differs(rubric.id, s.external_id)
            elif row is not None and row.rubric_version != rubric.version:
                out[k].error = DuplicateSubmission(
                    f"submission {s.external_id!r} is stored under rubric {rubric.id}@{row.rubric_version}; this "
                    f"model scores version {rubric.version}: send it under a new id")
            elif (why := _bad_revision(conn, rubric.id, owner, s, revised_here)) is not None:
                out[k].error = why
            elif row is not None and int(row.id) in scored_before or s.external_id in seen:
                out[k].submission = _sub_rec(row) if row is not None else None
            else:
                todo.append(k)
            seen.setdefault(s.external_id, h)
            if out[k].error is None and row is None and s.metadata.get(REVISES):
                revised_here.setdefault(str(s.metadata[REVISES]), s.external_id)
        # Stored and scored before by another model (a retrained one): only a submission still waiting for a
        # person takes this model's scores, routes and slots. One a person has started, or whose machine scores
        # stand (it may back a credential), is kept: a new model must not undo people's decisions or reopen
        # settled ones, and its own scores on texts people scored would be judged on its training data.
        prior = {int(r.id) for k in todo if (r := rows.get(subs[k].external_id)) is not None and int(r.id) in models}
        where = queue.standings(conn, sorted(prior))
        waiting = {sid for sid, (st, _rows) in where.items() if st == "waiting"}
        for k in [k for k in todo if (r := rows.get(subs[k].external_id)) is not None and int(r.id) in prior - waiting]:
            sid = int(rows[subs[k].external_id].id)
            out[k].submission, out[k].kept = _sub_rec(rows[subs[k].external_id]), where[sid][0]
            todo.remove(k)
        recs = add_submissions_in(store, tx, rubric.id, rubric.version,
                                  [(subs[k].external_id, subs[k].evidence, subs[k].metadata) for k in todo])
        faults.point("intake:submissions_inserted")
        machine: list[MachineScoreIn] = []
        for k, rec in zip(todo, recs, strict=True):
            jobs.set_owner_in(tx, rec.id, owner)
            out[k].submission, out[k].created, out[k].scored = rec, True, items[k]
            for cid, r in items[k].criteria.items():
                machine.append(MachineScoreIn(
                    rec.id, cid, r.score, probabilities={str(lv): p for lv, p in r.probabilities.items()},
                    prediction_set=r.extra.get("prediction_set"), route=r.extra.get("route") or "human",
                    reason=r.extra.get("reason") or (NO_POLICY if not r.extra.get("route") else ""),
                    model_version=model.version, policy_version=policy_version))
        machine_scores_in(store, tx, machine)
        faults.point("intake:machine_scores_written")
        for k in todo:
            it = items[k]
            routes = {c: str(r.extra.get("route") or "human") for c, r in it.criteria.items()}
            reasons = {c: str(r.extra.get("reason") or (NO_POLICY if not r.extra.get("route") else ""))
                       for c, r in it.criteria.items()}
            sid = out[k].submission.id  # type: ignore[union-attr]
            if sid in waiting:  # its slots become the ones the new routes need
                queue.reroute_in(tx, sid, routes, reasons=reasons, rank=queue_rank(it, queue_order),
                                 why=f"re-scored by model {model.version} under {policy_version or 'no policy'}")
            else:
                queue.enqueue_in(tx, sid, routes, reasons=reasons, rank=queue_rank(it, queue_order))
        if rubric.award is not None:  # the machine's credential decision, recorded with its scores
            from scoring.credential import decide_items
            from scoring.store.decisions import decision_in

            for k in todo:
                it = items[k]
                if it.decision is None:
                    decide_items(rubric, None, [it])
                d = it.decision
                decision_in(tx, out[k].submission.id, rubric.id, rubric.version, d.outcome, "machine",  # type: ignore[union-attr]
                            d.levels, p_earned=d.p_earned, reason=d.reason, model_version=model.version,
                            policy_version=policy_version, pin=evidence_pin(out[k].submission))
        # Repeats within this call point at the row recorded for their first occurrence.
        by_ext = {o.external_id: o.submission for o in out if o.submission is not None}
        for o in out:
            if o.submission is None and o.error is None:
                o.submission = by_ext.get(o.external_id)
        if on_commit is not None:
            on_commit(tx, out)
        faults.point("intake:before_commit")
    return out


REVISES = REVISES_KEY  # metadata key: the external id of the earlier submission this one revises


def _bad_revision(conn: Any, rubric_id: str, owner: str, sub: NewSubmission,
                  revised_here: Mapping[str, str] | None = None) -> InvalidRequest | None:
    """A resubmission must name an earlier submission of the same credential by the same issuer, the latest
    attempt of its chain (nobody revised it yet), whose decision is "not yet" (one still being assessed or
    already earned has nothing to resubmit: two open attempts of one educator could both be awarded).

    Checked only when the resubmission is new: a resend of one already recorded is answered as it was.
    ``revised_here``: earlier external id -> the resubmission revising it, among rows recorded in this call.
    """
    prev = sub.metadata.get(REVISES)
    if not prev:
        return None
    if str(prev) == sub.external_id:
        return InvalidRequest(f"submission {sub.external_id!r} cannot revise itself")
    s, d = t.submissions.c, t.decisions.c
    if conn.execute(sa.select(s.id).where(s.rubric_id == rubric_id, s.external_id == sub.external_id)).first():
        return None
    row = conn.execute(sa.select(s.id).where(s.rubric_id == rubric_id, s.external_id == str(prev))).first()
    if row is None or jobs.owners_of(conn, [int(row.id)]).get(int(row.id), owner) != owner:
        return InvalidRequest(f"submission {sub.external_id!r} revises {prev!r}, which you have not submitted for "
                              f"rubric {rubric_id}")
    later = _latest_attempt(conn, rubric_id, str(prev), revised_here or {})
    if later != str(prev):
        return InvalidRequest(f"submission {sub.external_id!r} revises {prev!r}, which was already resubmitted; a "
                              f"resubmission revises the latest attempt: name {later!r} in revises")
    outcome = conn.execute(sa.select(d.outcome).where(d.submission_id == int(row.id))
                           .order_by(d.id.desc()).limit(1)).scalar()
    if outcome == "earned":
        return InvalidRequest(f"submission {sub.external_id!r} revises {prev!r}, which earned the credential: only "
                              "a 'not yet' decision is resubmitted")
    if outcome is not None and outcome != "not_yet":
        return InvalidRequest(f"submission {sub.external_id!r} revises {prev!r}, which has no decision yet (assessors "
                              "are still scoring it): resubmit once its decision is 'not yet'")
    return None


def _latest_attempt(conn: Any, rubric_id: str, external_id: str, revised_here: Mapping[str, str]) -> str:
    """The last attempt of the resubmission chain that starts at ``external_id`` (itself when nobody revised it)."""
    seen = {external_id}
    while (nxt := revised_here.get(external_id) or _next_attempt(conn, rubric_id, external_id)) and nxt not in seen:
        seen.add(nxt)
        external_id = nxt
    return external_id


def _next_attempt(conn: Any, rubric_id: str, external_id: str) -> str | None:
    """The external id of the (first) submission that revises ``external_id``, if any."""
    s = t.submissions.c
    got = conn.execute(sa.select(s.external_id).where(s.rubric_id == rubric_id, s.meta[REVISES].as_string() == external_id)
                       .order_by(s.id).limit(1)).scalar()
    return None if got is None else str(got)


def attempts(conn: Any, rubric_id: str, external_id: str) -> list[str]:
    """Every attempt of the resubmission chain ``external_id`` belongs to, first to last (external ids)."""
    s = t.submissions.c
    chain = [external_id]
    while len(chain) < 1000:  # each step back is one row; a cycle cannot be recorded, the bound is a guard
        prev = conn.execute(sa.select(s.meta).where(s.rubric_id == rubric_id, s.external_id == chain[0])).scalar()
        back = (prev or {}).get(REVISES)
        if not back or str(back) in chain:
            break
        chain.insert(0, str(back))
    while len(chain) < 1000 and (nxt := _next_attempt(conn, rubric_id, chain[-1])) and nxt not in chain:
        chain.append(nxt)
    return chain


def _models_of(conn: Any, submission_ids: list[int]) -> dict[int, set[str | None]]:
    """The model versions that have scored each of these submissions (absent: none has)."""
    c = t.machine_scores.c
    got: dict[int, set[str | None]] = {}
    for i in range(0, len(submission_ids), 500):
        for sid, mv in conn.execute(sa.select(c.submission_id, c.model_version).distinct().where(
                c.submission_id.in_(submission_ids[i:i + 500]))):
            got.setdefault(int(sid), set()).add(mv)
    return got


def slots_of(store: Store, outcomes: Sequence[Outcome]) -> None:
    """Fill each outcome's queue slots from the store (one read per submission)."""
    for o in outcomes:
        if o.submission is not None:
            o.slots = queue.items_for_submission(store, o.submission.id)


# ------------------------------------------------------------------------------------------- submit


def submit(
    store: Store,
    model: ScoringModel,
    owner: str,
    sub: NewSubmission,
    *,
    policy: Any | None = None,
    max_chars: int = 200_000,
    score: ScoreFn = prescore,
) -> Outcome:
    """Submit-score-route-record one submission; raises the refusal (400/409) instead of returning it.

    Already recorded by this owner with the same content and scored by this model: answered from the store
    without scoring again (``created=False``).
    """
    rubric = model.rubric
    check_evidence(rubric, sub.evidence, max_chars)
    with store.engine.connect() as conn:  # refused before any scoring work (record_scored checks again)
        bad = _bad_revision(conn, rubric.id, owner, sub)
    if bad is not None:
        raise bad
    pre = _known(store, model, owner, sub)
    if pre is not None:
        return pre
    items = score(model, [sub.external_id], [dict(sub.evidence)])
    pv = route(model, policy, store, items)
    order = getattr(policy, "queue_order", "uncertain")
    res = record_scored(store, model, owner, [sub], items, pv, queue_order=order)[0]
    if res.error is not None:
        raise res.error
    slots_of(store, [res])
    return res


def _known(store: Store, model: ScoringModel, owner: str, sub: NewSubmission) -> Outcome | None:
    """Refuse or answer from the store before any scoring work (read-only; record_scored re-checks)."""
    from scoring.errors import NotFound

    rubric = model.rubric
    try:
        existing = store.find_submission(rubric.id, sub.external_id)
    except NotFound:
        return None
    first = jobs.owner_of(store, existing.id)
    if first is not None and first != owner:
        raise _taken(rubric.id, sub.external_id)
    if existing.content_hash != content_hash(sub.evidence, sub.metadata):
        raise _differs(rubric.id, sub.external_id)
    if store.machine_scores(submission_id=existing.id, model_version=model.version):
        out = Outcome(sub.external_id, existing, created=False)
        slots_of(store, [out])
        return out
    return None
