"""Apply a routing policy to the work still waiting for people (``scoring policy apply``).

Why: an issuer scores a backlog on day one with no policy (every criterion waits for a person) or with a
cautious one; as human scores arrive they retrain, recalibrate and get a policy that certifies more. The
store keeps the routes a submission was first recorded with, so without this step the assessors' queue
would keep every item the new policy would have accepted, and a stricter policy (after a drift alert)
would not reach the items not yet looked at.

What is re-routed: a submission of the model's rubric version whose :func:`~scoring.store.queue.standing`
is ``waiting`` (a first or second slot open, nobody has started) and whose latest machine scores are the
policy's model's. Everything else is kept, and counted: work a person has started; settled submissions (no
first or second slot open: the machine's scores stand and may already back a credential, so a stricter
policy does not reopen them, and an open audit slot stays); items ``scoring select`` queued to teach the
model; submissions another model scored after this one (its routes are in charge).

How: routes are recomputed from the stored probabilities by the same hook ``scoring score --policy`` runs
(the model's conformal sets, the policy's thresholds, hash draws keyed by the issuer's id, suspensions),
so applying a policy to a stored backlog gives the routes scoring it under that policy would have given.
A submission whose routes or policy change gets new machine-score rows (same score and probabilities; new
route, reason and policy version) appended to the audit log, a new machine decision when the rubric has
an award rule, and its queue slots reconciled (:func:`scoring.store.queue.reroute_in`: slots no longer
needed are withdrawn, never deleted). Each block of submissions is one write transaction that re-checks
the queue first, so an item an assessor claims meanwhile is kept; a killed run is finished by running it
again (submissions already under the policy are unchanged).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from models.artifact import ScoringModel
from scoring.prescore import CriterionResult, ScoredSubmission
from scoring.routing import routing_hook
from scoring.store import Store, queue
from scoring.store import tables as t
from scoring.store.queue import standings
from scoring.store.records import MachineScoreIn
from scoring.store.scores import machine_scores_in
from scoring.store.service_tables import submission_owners
from scoring.usecases.intake import queue_rank

BLOCK = 500  # submissions per write transaction


@dataclass
class Applied:
    """What ``apply_policy`` did (or, with ``dry_run``, would do)."""

    policy_version: str
    model_version: str
    rubric: str
    dry_run: bool
    submissions: int = 0  # of the rubric version (and issuer)
    rerouted: int = 0  # routes or policy changed: recorded
    requeued: int = 0  # routes already this policy's, queue slots not (left by another model's run): reconciled
    unchanged: int = 0  # already routed by this policy, the same way
    in_progress: int = 0  # kept: a person has claimed, scored or adjudicated something (or it changed meanwhile)
    settled: int = 0  # kept: no first or second slot open (its machine scores stand; may back a credential)
    selected: int = 0  # kept: queued by `scoring select` to teach the model
    not_scored: int = 0  # kept: waiting, but no machine score with probabilities by this model for every criterion
    newer_model: int = 0  # kept: waiting, and another model scored it after this one (its routes are that model's)
    routes_before: Counter[str] = field(default_factory=Counter)  # criterion routes of the re-routed submissions
    routes_after: Counter[str] = field(default_factory=Counter)
    slots_withdrawn: int = 0
    slots_opened: int = 0
    decisions: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["routes_before"], d["routes_after"] = dict(sorted(self.routes_before.items())), dict(sorted(self.routes_after.items()))
        return d


@dataclass(frozen=True)
class _Stored:
    """One waiting submission as the store holds it: the latest machine score per criterion by the model."""

    id: int
    external_id: str
    machine: dict[str, Any]  # criterion -> MachineScore-like row
    slots: list[Any]  # its queue rows
    last_machine: int  # id of its latest machine score row (any model) when it was read


def apply_policy(store: Store, model: ScoringModel, policy: Any, *, by: str, issuer: str | None = None,
                 dry_run: bool = False) -> Applied:
    """Re-route the waiting submissions of ``model``'s rubric under ``policy`` (see the module docstring).

    ``issuer``: only that issuer's submissions (None: every issuer's). ``by`` is logged as the person who put
    the policy into service and named in every re-routed score's reason."""
    from scoring.store.policy_log import record_policy

    policy.check_model(model.version, model.rubric.id)
    rubric = model.rubric
    res = Applied(str(policy.policy_version), model.version, rubric.key, dry_run)
    subs = _submissions(store, rubric.id, rubric.version, issuer)
    res.submissions = len(subs)
    candidates = _classify(store, model, subs, res)
    if not candidates:
        return res
    if not dry_run:
        record_policy(store, policy, by=by, rubric_id=rubric.id)  # thresholds put into service are an audit event
    hook = routing_hook(model, policy, store)
    crits = [c.id for c in rubric.criteria]
    for i in range(0, len(candidates), BLOCK):
        block = candidates[i:i + BLOCK]
        items = [ScoredSubmission(s.external_id, model.version, {
            c: CriterionResult(int(s.machine[c].score), {int(k): float(v) for k, v in s.machine[c].probabilities.items()})
            for c in crits}) for s in block]
        hook(items, [])
        changed, requeue = [], []
        for s, it in zip(block, items, strict=True):
            routes = {c: str(it.criteria[c].extra.get("route")) for c in crits}
            if any(routes[c] != (s.machine[c].route or "human") or s.machine[c].policy_version != res.policy_version
                   for c in crits):
                changed.append((s, it))
            elif queue.slots_differ(s.slots, routes):
                requeue.append((s, it))
        res.unchanged += len(block) - len(changed) - len(requeue)
        if dry_run:
            for s, it in changed + requeue:
                w, o = queue.slot_changes(s.slots, {c: str(it.criteria[c].extra.get("route")) for c in crits})
                res.slots_withdrawn += w
                res.slots_opened += o
            for s, it in changed:
                _count_routes(res, s, it, crits)
                res.decisions += rubric.award is not None and it.decision is not None
            res.rerouted += len(changed)
            res.requeued += len(requeue)
            continue
        _record(store, model, policy, changed, requeue, crits, by, res)
    return res


def _submissions(store: Store, rubric_id: str, version: int, issuer: str | None) -> list[tuple[int, str]]:
    s = t.submissions.c
    q = sa.select(s.id, s.external_id).where(s.rubric_id == rubric_id, s.rubric_version == version).order_by(s.id)
    if issuer is not None:
        q = q.join(submission_owners, submission_owners.c.submission_id == s.id).where(submission_owners.c.owner == issuer)
    with store.engine.connect() as conn:
        return [(int(r.id), str(r.external_id)) for r in conn.execute(q)]


def _classify(store: Store, model: ScoringModel, subs: list[tuple[int, str]], res: Applied) -> list[_Stored]:
    """Count the kept submissions in ``res`` by why they are kept (:func:`scoring.store.queue.standing`, then
    the model's scores); return the ones waiting for people that this model's scores stand for."""
    crits = [c.id for c in model.rubric.criteria]
    ids = [i for i, _e in subs]
    machine: dict[int, dict[str, Any]] = {}
    last: dict[int, int] = {}  # submission -> its latest machine score row, by any model
    m = t.machine_scores.c
    with store.engine.connect() as conn:
        where = standings(conn, ids)
        for k in range(0, len(ids), BLOCK):
            chunk = ids[k:k + BLOCK]
            for r in conn.execute(sa.select(t.machine_scores).where(m.submission_id.in_(chunk),
                                                                     m.model_version == model.version).order_by(m.id)):
                machine.setdefault(int(r.submission_id), {})[r.criterion] = r  # latest wins
            last.update({int(sid): int(mx) for sid, mx in conn.execute(
                sa.select(m.submission_id, sa.func.max(m.id)).where(m.submission_id.in_(chunk)).group_by(m.submission_id))})
    out: list[_Stored] = []
    for sid, ext in subs:
        st, rows = where[sid]
        got = machine.get(sid, {})
        if st != "waiting":
            setattr(res, KEPT[st], getattr(res, KEPT[st]) + 1)
        elif any(c not in got or not got[c].probabilities for c in crits):
            res.not_scored += 1
        elif last.get(sid) != max(r.id for r in got.values()):
            res.newer_model += 1  # another model scored it since: its routes and slots are that model's
        else:
            out.append(_Stored(sid, ext, got, rows, last[sid]))
    return out


KEPT = {"started": "in_progress", "selected": "selected", "settled": "settled"}


def _count_routes(res: Applied, s: _Stored, it: ScoredSubmission, crits: Sequence[str]) -> None:
    for c in crits:
        res.routes_before[s.machine[c].route or "human"] += 1
        res.routes_after[str(it.criteria[c].extra.get("route"))] += 1


Pair = tuple[_Stored, ScoredSubmission]


def _record(store: Store, model: ScoringModel, policy: Any, changed: list[Pair], requeue: list[Pair],
            crits: Sequence[str], by: str, res: Applied) -> None:
    """One write transaction for one block: re-check each submission is still waiting, then append the
    re-routed machine scores and decisions of ``changed`` and reconcile the queue slots of both lists."""
    from scoring.store.decisions import decision_in

    if not changed and not requeue:
        return
    rubric = model.rubric
    pv = res.policy_version
    with store.write() as tx:
        ids = [s.id for s, _it in changed + requeue]
        waiting = queue.waiting_in(tx, ids)
        m = t.machine_scores.c
        last = {int(sid): int(mx) for sid, mx in tx.conn.execute(
            sa.select(m.submission_id, sa.func.max(m.id)).where(m.submission_id.in_(ids)).group_by(m.submission_id))}
        still = {s.id for s, _it in changed + requeue if s.id in waiting and last.get(s.id) == s.last_machine}
        todo = [(s, it) for s, it in changed if s.id in still]
        fix = [(s, it) for s, it in requeue if s.id in still]
        res.in_progress += len(changed) + len(requeue) - len(todo) - len(fix)  # claimed or re-scored meanwhile
        rows: list[MachineScoreIn] = []
        for s, it in todo:
            for c in crits:
                old, r = s.machine[c], it.criteria[c]
                was = f"was {old.route or 'human'} under {old.policy_version or 'no policy'}"
                rows.append(MachineScoreIn(
                    s.id, c, int(old.score), probabilities=dict(old.probabilities),
                    prediction_set=r.extra.get("prediction_set"), route=str(r.extra["route"]),
                    reason=f"{r.extra.get('reason')}; re-routed by {by} under policy {pv} ({was})",
                    model_version=model.version, policy_version=pv))
        machine_scores_in(store, tx, rows)
        for s, it in todo + fix:
            routes = {c: str(it.criteria[c].extra["route"]) for c in crits}
            reasons = {c: str(it.criteria[c].extra.get("reason") or "") for c in crits}
            w, o = queue.reroute_in(tx, s.id, routes, reasons=reasons, rank=queue_rank(it, policy.queue_order),
                                    why=f"policy {pv} applied by {by}")
            res.slots_withdrawn += w
            res.slots_opened += o
        for s, it in todo:
            if rubric.award is not None and it.decision is not None:
                d = it.decision
                decision_in(tx, s.id, rubric.id, rubric.version, d.outcome, "machine", d.levels, p_earned=d.p_earned,
                            reason=d.reason, model_version=model.version, policy_version=pv)
                res.decisions += 1
            _count_routes(res, s, it, crits)
        res.rerouted += len(todo)
        res.requeued += len(fix)
