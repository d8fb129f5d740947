"""What assessors and adjudicators do: read a held item, score it, resolve disagreements.

The queue (``scoring.store.queue``) owns claims and leases; these use cases add the rules around them:
what a blind item may show, when two human scores need adjudication (ONE definition, the policy's gap),
and what an adjudication resolves.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rubrics.schema import Rubric
from scoring.errors import InvalidRequest, LeaseExpired, NotFound, NothingToAdjudicate, SameRater
from scoring.routing import adjudication_gap
from scoring.routing import needs_adjudication as beyond_gap
from scoring.store import Adjudication, HumanScore, MachineScore, Store, SubmissionRecord, queue
from scoring.store.scores import RATER_KINDS
from scoring.usecases.decisions import finalize

log = logging.getLogger("scoring")


def needs_adjudication(store: Store, policy: Any | None, submission_id: int, criteria: Sequence[str]) -> list[str]:
    """Criteria of a submission whose independent human ratings now differ by more than the gap."""
    out = []
    for c in criteria:
        scores = [h.score for h in store.human_scores(submission_id=submission_id, criterion=c) if h.kind in RATER_KINDS]
        if beyond_gap(scores, policy, c):
            out.append(c)
    return out


RATIONALE_RULES = ("always", "disagreement", "disagreement_or_lowest", "never")


def rationale_rule(rubric: Rubric, default: str = "disagreement_or_lowest") -> str:
    """When a written rationale is required: the rubric's ``rationale:`` when it sets one, else the server's
    setting (``SCORING_RATIONALE_REQUIRED``)."""
    rule = getattr(rubric, "rationale", None) or default
    if rule not in RATIONALE_RULES:
        raise InvalidRequest(f"rationale rule must be one of {list(RATIONALE_RULES)}, found {rule!r}")
    return str(rule)


def rationale_needed(rule: str, level: int, scale: Sequence[int], machine_level: int | None) -> bool:
    """Whether a score needs a written rationale under ``rule``.

    ``disagreement``: the level differs from the machine's (on blind items there is no machine level to
    agree with, so none is asked); ``disagreement_or_lowest`` also asks for one on the lowest level, which
    is what a 'not yet' decision and its feedback rest on.
    """
    if rule == "always":
        return True
    if rule == "never":
        return False
    differs = machine_level is not None and level != machine_level
    lowest = bool(scale) and level == min(scale)
    return differs or (rule == "disagreement_or_lowest" and lowest)


def _check_rationales(store: Store, it: queue.QueueItem, scores: Mapping[str, tuple[int, str]], rule: str) -> None:
    sub = store.submission(it.submission_id)
    rubric = store.rubric(sub.rubric_id, sub.rubric_version)
    rule = rationale_rule(rubric, rule)
    machine = {} if it.blind else {m.criterion: m.score for m in store.machine_scores(submission_id=sub.id)}
    missing = []
    for cid, (level, why) in scores.items():
        try:
            scale = rubric.criterion(cid).scores
        except KeyError:
            continue  # the queue's own check names criteria that are not part of the item
        if level not in scale:
            continue  # the scale check says what is wrong with it
        if not why.strip() and rationale_needed(rule, level, scale, machine.get(cid)):
            missing.append(cid)
    if missing:
        if it.blind:  # no machine level is shown, so none can be differed from: only the lowest level asks
            when = {"always": "every score",
                    "disagreement_or_lowest": "the lowest level of a criterion (this item is blind: no machine "
                                              "level is shown, so only the lowest level needs one)"}[rule]
        else:
            when = {"always": "every score", "disagreement": "a level that differs from the machine's",
                    "disagreement_or_lowest": "a level that differs from the machine's or is the lowest"}[rule]
        raise InvalidRequest(f"a rationale is required for {when}; write one for: {', '.join(missing)}")


def held_item(store: Store, item_id: int, assessor: str) -> queue.QueueItem:
    """The queue item ``assessor`` holds now, to read: :class:`Forbidden` when it is not theirs (the words
    :func:`scoring.store.queue.not_held` gives submit, release and renew too), :class:`LeaseExpired` when
    their lease ran out."""
    from scoring.store.clock import now

    it = queue.item(store, item_id)
    if it.holder != assessor or it.status != "claimed":
        raise queue.not_held(item_id, assessor)
    if it.lease_expires is not None and it.lease_expires < now().replace(tzinfo=it.lease_expires.tzinfo):
        raise LeaseExpired(f"your lease on queue item {item_id} expired; claim again")
    return it


def submit_item(store: Store, policy: Any | None, item_id: int, assessor: str, lease_token: str,
                scores: Mapping[str, tuple[int, str]], *, rationale: str = "always",
                lease_seconds: int | None = None) -> tuple[list[int], list[str]]:
    """Record a held item's scores (all or nothing, lease checked) and say which criteria now need adjudication.

    ``rationale`` is the server's default rule (a rubric's own rule wins). With ``lease_seconds``, a submit
    after the lease expired still records when nobody else took the item meanwhile (the assessor's work is
    not thrown away for a coffee break); when someone did, :class:`LeaseExpired` says who.

    Who may submit is checked before what is submitted: an item the assessor never claimed
    (:class:`Forbidden`), a wrong or stale ``lease_token`` or a lease lost (:class:`LeaseExpired`) is said as
    such, not hidden behind a missing rationale.
    """
    it = queue.item(store, item_id)
    try:
        queue.check_lease(store, item_id, assessor, lease_token)
    except LeaseExpired:
        if lease_seconds is None:
            raise
        lease_token = str(queue.reclaim(store, item_id, assessor, lease_token, lease_seconds).lease_token)
    _check_rationales(store, it, scores, rationale)
    try:
        ids = queue.submit(store, item_id, assessor, lease_token, scores)
    except LeaseExpired:
        if lease_seconds is None:
            raise
        again = queue.reclaim(store, item_id, assessor, lease_token, lease_seconds)  # LeaseExpired: who holds it
        ids = queue.submit(store, item_id, assessor, str(again.lease_token), scores)
    it = queue.item(store, item_id)
    finalize(store, policy, it.submission_id, actor=assessor)  # the credential decision, once all is resolved
    return ids, needs_adjudication(store, policy, it.submission_id, it.criteria)


@dataclass(frozen=True)
class Pending:
    submission_id: int
    criterion: str
    human_scores: list[int]
    human_score_ids: list[int]
    gap: int
    kinds: list[str] = field(default_factory=list)  # each rating's slot (first, second, audit), as human_scores
    since: datetime | None = None  # when the disagreement arose: the latest of its ratings


def pending_adjudications(store: Store, policy: Any | None, rubric_id: str | None = None, *,
                          policy_for: Any | None = None) -> list[Pending]:
    """Submission x criterion pairs whose ratings disagree beyond the gap and have no resolved score yet.

    ``policy_for(rubric_id)``: each rubric's own policy (a server routing several rubrics), else ``policy``."""
    done = {(a.submission_id, a.criterion) for a in store.adjudications()}
    groups: dict[tuple[int, str], list[Any]] = {}
    for h in store.human_scores(rubric_id=rubric_id):
        if h.kind in RATER_KINDS:
            groups.setdefault((h.submission_id, h.criterion), []).append(h)
    out = []
    for (sid, crit), hs in sorted(groups.items()):
        if policy_for is not None:
            policy = policy_for(store.submission(sid).rubric_id)
        gap = adjudication_gap(policy, crit)
        scores = [h.score for h in hs]
        if (sid, crit) not in done and beyond_gap(scores, policy, crit):
            out.append(Pending(sid, crit, scores, [h.id for h in hs], gap, [h.kind for h in hs],
                               max(h.created_at for h in hs)))
    return out


def _disputed(store: Store, policy: Any | None, submission_id: int, criterion: str) -> list[HumanScore]:
    """The human scores a resolved score of ``criterion`` resolves; :class:`InvalidRequest` when it has none,
    :class:`NothingToAdjudicate` when its ratings do not disagree beyond the gap (or one awaits a second)."""
    hs = [h for h in store.human_scores(submission_id=submission_id, criterion=criterion) if h.kind != "adjudication"]
    if not hs:
        raise InvalidRequest(f"submission {submission_id} has no human scores for {criterion!r} to adjudicate")
    rated = [h.score for h in hs if h.kind in RATER_KINDS]
    if not beyond_gap(rated, policy, criterion):
        raise NothingToAdjudicate(
            f"submission {submission_id} has no disagreement on {criterion!r} to resolve: its ratings {rated} are "
            f"within the adjudication gap ({adjudication_gap(policy, criterion)}) or await a second rater")
    return hs


def adjudicate(store: Store, submission_id: int, criterion: str, score: int, *, adjudicator: str,
               rationale: str = "", policy: Any | None = None, require_rationale: bool = False) -> Adjudication:
    """Record the resolved score of a submission's criterion, naming the human and machine scores it resolves.

    ``require_rationale``: refuse an empty rationale (the lead's page: the record must say why)."""
    store.submission(submission_id)  # NotFound
    raters = {h.assessor for h in store.human_scores(submission_id=submission_id) if h.kind in RATER_KINDS}
    if adjudicator in raters:
        raise SameRater(f"{adjudicator!r} rated submission {submission_id}; its disagreement must be resolved by "
                        "someone who did not rate it")
    hs = _disputed(store, policy, submission_id, criterion)
    if require_rationale and not rationale.strip():
        raise InvalidRequest("write a rationale: the resolved score's record must say why this level stands")
    ms = store.machine_scores(submission_id=submission_id, criterion=criterion)
    a = store.record_adjudication(submission_id, criterion, score, adjudicator=adjudicator, rationale=rationale,
                                  human_score_ids=[h.id for h in hs], machine_score_id=ms[-1].id if ms else None)
    finalize(store, policy, submission_id, actor=adjudicator)
    return a


@dataclass
class Disagreement:
    """What a lead sees of one submission x criterion to resolve: the evidence's submission, the criterion
    and its levels, every rating (not blind to the lead: rater, slot, level, rationale), the machine's score
    and its suggestion explained, and the resolved score when there is one already."""

    submission: SubmissionRecord
    rubric: Rubric
    criterion: Any  # rubrics.schema.Criterion
    ratings: list[HumanScore]
    machine: MachineScore | None
    suggestion: Any  # scoring.suggestion.Suggestion, or None without probabilities
    resolved: Adjudication | None
    gap: int
    closed: str | None  # why there is nothing to resolve, in words; None while it awaits a resolved score


def disagreement(store: Store, models: Any, policy: Any | None, submission_id: int, criterion: str) -> Disagreement:
    """One disagreement for the lead's page (:class:`NotFound` for an unknown submission or criterion)."""
    from scoring.suggestion import explain

    sub = store.submission(submission_id)
    rubric = store.rubric(sub.rubric_id, sub.rubric_version)
    try:
        c = rubric.criterion(criterion)
    except KeyError:
        raise NotFound(f"rubric {sub.rubric_id!r} has no criterion {criterion!r}") from None
    ratings = [h for h in store.human_scores(submission_id=submission_id, criterion=criterion) if h.kind in RATER_KINDS]
    ms = store.machine_scores(submission_id=submission_id, criterion=criterion)
    m = ms[-1] if ms else None
    sug = None
    if m is not None and m.probabilities:
        scorer = None
        try:
            model = models.get(sub.rubric_id, sub.rubric_version)
            if getattr(model, "version", None) == m.model_version:
                scorer = model.scorers.get(criterion)
        except Exception:  # noqa: BLE001 - the rule's numbers are a help; without the model the level is "recorded"
            scorer = None
        sug = explain(m.score, m.probabilities, [(lv.score, lv.label) for lv in c.levels], scorer)
    resolved = next((a for a in store.adjudications(submission_id=submission_id) if a.criterion == criterion), None)
    closed = None
    if resolved is None:
        try:
            _disputed(store, policy, submission_id, criterion)
        except (InvalidRequest, NothingToAdjudicate) as exc:
            closed = str(exc)
    return Disagreement(sub, rubric, c, ratings, m, sug, resolved, adjudication_gap(policy, criterion), closed)


# ------------------------------------------------------------------------------------------- item view


def previous_attempt(store: Store, sub: SubmissionRecord) -> dict[str, Any] | None:
    """For a resubmission: the submission it revises, its latest decision and the feedback released for it
    (the last ``feedback_released`` audit entry). Not shown on blind items: it would cue the rater."""
    from scoring.usecases.intake import REVISES

    prev_id = (sub.metadata or {}).get(REVISES)
    if not prev_id:
        return None
    try:
        prev = store.find_submission(sub.rubric_id, str(prev_id))
    except NotFound:
        return None
    d = store.latest_decision(prev.id)
    released = [e.payload for e in store.audit_entries(event="feedback_released")  # not the whole log per view
                if e.payload.get("submission_id") == prev.id]
    return {"external_id": prev.external_id, "submitted_at": prev.created_at.isoformat(),
            "decision": None if d is None else d.outcome, "levels": None if d is None else d.levels,
            "feedback": released[-1]["feedback"] if released else None}


@dataclass
class CriterionDetails:
    criterion: Any  # rubrics.schema.Criterion
    machine: MachineScore | None
    highlights: list[dict[str, Any]] | None
    suggestion: Any = None  # scoring.suggestion.Suggestion (non-blind items with a machine score)


@dataclass
class ItemDetails:
    """Everything an assessor may see of a held item. Blind items carry no machine score, probabilities,
    routing reason or highlights (highlights come from the machine's reading, so they would cue it)."""

    item: queue.QueueItem
    submission: SubmissionRecord
    rubric: Rubric
    reason: str | None
    position: int
    waiting: int
    criteria: list[CriterionDetails] = field(default_factory=list)
    previous: dict[str, Any] | None = None  # a resubmission: the revised submission's decision and feedback

    @property
    def why_person(self) -> tuple[str | None, dict[str, str]]:
        """Why a person scores this item, in words an assessor can act on, said once: the reason the
        criteria share, and the criteria whose reason differs (each once). Nothing on blind items.

        The queue item's own reason (why *this slot* was queued: routed to a person, chosen by
        ``POST /selection``, a borderline credential decision) comes first; the machine score's routing
        reason only stands in where the item names none and the machine itself routed the criterion to a
        person (an auto-accepted score's rule says why the machine did *not* need a person)."""
        if self.item.blind:
            return None, {}
        queued = queue_reasons(self.reason or "", [cd.criterion.id for cd in self.criteria])
        reasons: dict[str, str] = {}
        for cd in self.criteria:
            cid, m = cd.criterion.id, cd.machine
            route, why = queued.get(cid, (self.item.route, ""))
            text = plain_reason(route, why, m) if why else None
            if text is None and m is not None and m.route == "human" and m.reason:
                text = plain_reason("human", m.reason, m)
            if text:
                reasons[cid] = text
        if not reasons:
            return None, {}
        said = list(reasons.values())
        common = max(said, key=said.count)  # the first of the most frequent, in criterion order
        if len(reasons) > 1 and said.count(common) == 1:
            return None, reasons  # nothing shared: each criterion says its own
        return common, {c: r for c, r in reasons.items() if r != common}


def queue_reasons(reason: str, criteria: Sequence[str]) -> dict[str, tuple[str, str]]:
    """A queue item's ``reason`` per criterion, as ``(route, why)``: the column holds
    ``"crit: route (why); crit2: route"`` (:func:`scoring.store.queue.enqueue_in`), and a ``why`` may itself
    hold ``;`` and parentheses, so it is cut at the next known criterion, not at a separator."""
    starts: list[tuple[int, int, str]] = []  # (where the criterion's text starts, where its route starts, id)
    pos = 0
    for cid in criteria:  # in the order the column lists them
        if pos == 0 and reason.startswith(f"{cid}: "):
            at, begin = 0, len(cid) + 2
        else:
            at = reason.find(f"; {cid}: ", pos)
            if at < 0:
                continue
            begin = at + len(cid) + 4
        starts.append((at, begin, cid))
        pos = begin
    out: dict[str, tuple[str, str]] = {}
    for k, (_at, begin, cid) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(reason)
        route, _, rest = reason[begin:end].strip().partition(" ")
        rest = rest.strip()
        if rest.startswith("("):
            rest = rest[1:-1] if rest.endswith(")") else rest[1:]  # the column is cut at 4000 characters
        out[cid] = (route, rest.strip())
    return out


_SET = re.compile(r";?\s*set \[([-0-9, ]*)\]\s*$")
_ROUTE_WORDS = {
    "double": "a random sample double-scored (by two people, independently) to check that people agree",
    "audit": "a blind audit of the machine's score: a random sample a person checks without seeing it",
}


def _levels(lv: Sequence[int]) -> str:
    s = [str(x) for x in lv]
    return s[0] if len(s) == 1 else ", ".join(s[:-1]) + " and " + s[-1]


def _unsure(machine: MachineScore | None, pset: list[int] | None) -> str:
    """What an unsure machine score means for the assessor: which levels to tell apart."""
    if pset and len(pset) >= 2:
        return f"the model is unsure between levels {_levels(sorted(pset))}"
    probs = sorted(((int(k), float(v)) for k, v in ((machine.probabilities or {}) if machine else {}).items()),
                   key=lambda kv: -kv[1])
    if len(probs) >= 2 and probs[1][1] >= 0.2:
        return f"the model is unsure between levels {_levels(sorted((probs[0][0], probs[1][0])))}"
    if machine is not None:
        return f"the model is not sure enough of level {machine.score} to score it alone"
    return "the model is not sure enough to score it alone"


def plain_reason(route: str, why: str, machine: MachineScore | None = None) -> str | None:
    """A routing reason (``scoring.routing.decide_routes``, ``scoring.credential.decide_items``,
    ``scoring.usecases.selection.fill_queue``) in words an assessor can act on: no thresholds, no
    conformal sets. ``machine``: the criterion's machine score, for the levels the model hesitates between.
    An unknown reason is shown as written, less its conformal set."""
    why = (why or "").strip()
    m = _SET.search(why)
    pset = machine.prediction_set if machine is not None and machine.prediction_set is not None else (
        [int(x) for x in m.group(1).replace(" ", "").split(",") if x] if m else None)
    low = why.lower()
    if low.startswith("selected to teach the model"):
        return "chosen to help train the model: a person's level on items like this teaches it the most"
    if low.startswith("credential decision:"):
        if "every award" in low:
            return "every award of the credential is checked by a person"
        return "the credential decision is close, and this criterion can tip it"
    if low.startswith("random double-scoring sample") or (not why and route == "double"):
        return _ROUTE_WORDS["double"]
    if low.startswith("random blind audit") or (not why and route == "audit"):
        return _ROUTE_WORDS["audit"]
    if low.startswith("no routing policy"):
        return "no routing policy is loaded, so a person scores every criterion"
    if "is suspended" in low:
        return "automatic scoring of this criterion is paused"
    if "no enabled thresholds" in low or "no conformal layer" in low:
        return "the model is not yet trusted to score this criterion on its own"
    if "not in its conformal set" in low or low.startswith("set size") or (low.startswith("confidence") and " < " in low):
        return _unsure(machine, pset)
    text = _SET.sub("", why).strip(" ;")
    return text or None


def _evidence_for_highlights(rubric: Rubric, evidence: dict[str, Any]) -> dict[str, Any]:
    """Evidence with transcript fields parsed, so highlights are whole turns (never a cue timing line)."""
    from scoring.errors import TranscriptError
    from scoring.highlights import is_transcript_field
    from scoring.transcripts import looks_like_transcript, parse_transcript

    out: dict[str, Any] = {}
    for name, v in evidence.items():
        out[name] = v
        if isinstance(v, str) and v.strip() and (is_transcript_field(rubric, name) or looks_like_transcript(v)):
            try:
                out[name] = parse_transcript(v)
            except TranscriptError:
                pass
    return out


_HL_CACHE: OrderedDict[tuple[Any, ...], list[dict[str, Any]]] = OrderedDict()
_HL_LOCK = threading.Lock()
_HL_MAX = 512


def _highlights(model: Any, rubric: Rubric, sub: SubmissionRecord, cid: str, level: int, k: int,
                evidence: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A criterion's highlights toward ``level``, kept per (model version, submission, criterion, level, k):
    a saved model never changes, so neither do they, and a reload or the next visit costs nothing."""
    key = (getattr(model, "version", None), sub.id, cid, level, k)
    with _HL_LOCK:
        hit = _HL_CACHE.get(key)
        if hit is not None:
            _HL_CACHE.move_to_end(key)
            return hit
    from scoring.highlights import level_highlights

    ev = evidence if evidence is not None else _evidence_for_highlights(rubric, sub.evidence)
    out = [h.to_dict() for h in level_highlights(model, cid, ev, level, k)]
    with _HL_LOCK:
        _HL_CACHE[key] = out
        while len(_HL_CACHE) > _HL_MAX:
            _HL_CACHE.popitem(last=False)
    return out


def warm_next(store: Store, models: Any, assessor: str, k: int) -> None:
    """Compute the highlights of the item ``assessor`` would claim next, while they work on this one, so
    the next page opens without a model pass (the encoder pass over its sentences or turns)."""
    try:
        nxt = queue.available(store, assessor, limit=1)
        if not nxt or nxt[0].blind:
            return
        it = nxt[0]
        sub = store.submission(it.submission_id)
        rubric = store.rubric(sub.rubric_id, sub.rubric_version)
        model = models.get(sub.rubric_id, sub.rubric_version)
        machine = {m.criterion: m for m in store.machine_scores(submission_id=sub.id)}
        ev = _evidence_for_highlights(rubric, sub.evidence)
        for cid in it.criteria:
            if cid in machine:
                _highlights(model, rubric, sub, cid, machine[cid].score, k, ev)
    except Exception:  # noqa: BLE001 - a warm-up is a help, never a failure
        log.debug("warming the next item's highlights failed", exc_info=True)


def item_details(store: Store, models: Any, item: queue.QueueItem, *, highlights: int = 0) -> ItemDetails:
    """The assessor's view of an item they hold (``models``: a ``ModelProvider`` for highlights and for the
    decision rule the suggestion explains)."""
    from scoring.suggestion import explain

    if item.lease_token is None or item.lease_expires is None:
        raise NotFound(f"queue item {item.id} is not held")
    sub = store.submission(item.submission_id)
    rubric = store.rubric(sub.rubric_id, sub.rubric_version)
    machine: dict[str, MachineScore] = {}
    if not item.blind:
        for ms in store.machine_scores(submission_id=sub.id):
            machine[ms.criterion] = ms
    model = None
    if not item.blind:
        try:
            model = models.get(sub.rubric_id, sub.rubric_version)
        except Exception:  # noqa: BLE001 - highlights are a help, never a reason to fail the page
            model = None
    pos, waiting = queue.position(store, item.id)
    out = ItemDetails(item, sub, rubric, None if item.blind else item.reason, pos, waiting,
                      previous=None if item.blind else previous_attempt(store, sub))
    evidence: dict[str, Any] | None = None
    for cid in item.criteria:
        c = rubric.criterion(cid)
        m = machine.get(cid)
        hl = None
        if model is not None and highlights and m is not None:
            try:
                hl = _highlights(model, rubric, sub, cid, m.score, highlights, evidence)
            except Exception:  # noqa: BLE001
                log.warning("highlights failed for item %s criterion %s", item.id, cid, exc_info=True)
        sug = None
        if m is not None and m.probabilities:
            scorer = None
            if model is not None and getattr(model, "version", None) == m.model_version:
                scorer = model.scorers.get(cid)
            sug = explain(m.score, m.probabilities, [(lv.score, lv.label) for lv in c.levels], scorer)
        out.criteria.append(CriterionDetails(c, m, hl, sug))
    return out


def has_worked_on(store: Store, submission_id: int, assessor: str) -> bool:
    """Whether ``assessor`` rated, adjudicated or holds or held a queue slot of the submission: the people who
    may act on it afterwards (e.g. release its feedback). Anyone else is told it does not exist."""
    import sqlalchemy as sa

    from scoring.store import tables as t
    from scoring.store.service_tables import queue_items

    q, h, a = queue_items.c, t.human_scores.c, t.adjudications.c
    with store.engine.connect() as conn:
        return any(conn.execute(sa.select(sa.literal(1)).where(*cond).limit(1)).first() is not None for cond in (
            (q.submission_id == submission_id, q.holder == assessor),
            (h.submission_id == submission_id, h.assessor == assessor),
            (a.submission_id == submission_id, a.adjudicator == assessor)))
