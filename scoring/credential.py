"""From criterion scores to a micro-credential decision: earned, not yet, or a person decides.

The rubric's award rule (``rubrics.schema.Award``) says which criterion levels earn the credential. The
machine's decision applies that rule to the criterion scores it decided; its probability comes from the
criteria's calibrated level probabilities:

    P(earned) = P(every criterion c at or above its threshold t_c, and the total at least T)

treating the criteria as independent given the submission (each criterion's probabilities are its own
calibrated marginal; the model gives no joint distribution). With only per-criterion thresholds this is
the product of each criterion's P(level >= t_c); with a minimum total it is the mass at or above T of
the convolution of the criteria's distributions, each truncated below its threshold. Independence is an
assumption: criteria of one submission are positively correlated in practice, which makes the true
P(earned) for a strong submission higher and for a weak one lower than the product, so the computed
confidence errs towards asking a person.

A decision is automatic only when every criterion it rests on was accepted by the routing policy AND the
decision's own probability (P(earned) for an award, 1 - P(earned) for "not yet") clears the policy's
``decision_min_confidence``. An award has its own, stricter bar, ``award_min_confidence``, because a false
award cannot be taken back the way a "not yet" can (the educator resubmits); ``scoring calibrate`` sets it
by a test on held-out decisions (``scoring.award_bar``), and when no bar passes, ``awards_automatic`` is
false and every award goes to a person. When every criterion was accepted but the decision is borderline,
the criteria that decide it go to a person even though each alone would have been auto-accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rubrics.schema import Award, Rubric

ACCEPTED = ("auto", "audit")
OUTCOMES = ("earned", "not_yet", "needs_human")


@dataclass(frozen=True)
class Decision:
    """A credential decision for one submission."""

    outcome: str  # earned | not_yet | needs_human
    levels_outcome: str  # what the rule gives on ``levels`` (earned | not_yet)
    p_earned: float | None  # None when decided from human scores alone
    confidence: float | None  # probability of ``levels_outcome``
    levels: dict[str, int]
    deciding: list[str] = field(default_factory=list)  # criteria a person must score for the decision
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("p_earned", "confidence"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 6)
        return d


def p_meets(probs: Mapping[int, float], threshold: int) -> float:
    """P(level >= threshold) for one criterion."""
    return float(sum(p for lv, p in probs.items() if int(lv) >= threshold))


def p_earned(award: Award, rubric: Rubric, probs: Mapping[str, Mapping[int, float]]) -> float:
    """P(the award rule holds) under independent criteria with these level probabilities (module docstring)."""
    th = award.thresholds(rubric)
    if award.min_total is None:
        return float(np.prod([p_meets(probs[c.id], th[c.id]) for c in rubric.criteria]))
    total_of = set(award.total_criteria(rubric))
    p_others = float(np.prod([p_meets(probs[c.id], th[c.id]) for c in rubric.criteria if c.id not in total_of]))
    # distribution of the total over the total's criteria, each truncated below its threshold
    dist = {0: 1.0}
    for c in rubric.criteria:
        if c.id not in total_of:
            continue
        nxt: dict[int, float] = {}
        for lv, p in probs[c.id].items():
            if int(lv) < th[c.id] or p <= 0:
                continue
            for s, q in dist.items():
                nxt[s + int(lv)] = nxt.get(s + int(lv), 0.0) + q * float(p)
        dist = nxt
    return p_others * float(sum(q for s, q in dist.items() if s >= award.min_total))


def decide(rubric: Rubric, levels: Mapping[str, int], probs: Mapping[str, Mapping[int, float]] | None,
           routes: Mapping[str, str] | None, min_confidence: float | None, *,
           award_min_confidence: float | None = None, awards_automatic: bool = True) -> Decision:
    """The machine's decision on one submission (``routes``/``min_confidence`` None: no policy, so a person
    decides). ``award_min_confidence`` (None: ``min_confidence``) is the bar for "earned";
    ``awards_automatic=False`` sends every award to a person. Raises ``ValueError`` when the rubric has no
    award rule."""
    award = rubric.award
    if award is None:
        raise ValueError(f"rubric {rubric.key} has no award rule: no credential decision")
    lv = {c: int(v) for c, v in levels.items()}
    earned = award.earned(rubric, lv)
    label = "earned" if earned else "not_yet"
    pe = p_earned(award, rubric, probs) if probs is not None else None
    conf = None if pe is None else (pe if earned else 1.0 - pe)
    if routes is None or min_confidence is None:
        return Decision("needs_human", label, pe, conf, lv, [], "no routing policy: a person decides")
    waiting = [c for c, r in routes.items() if r not in ACCEPTED]
    if waiting:
        return Decision("needs_human", label, pe, conf, lv, [],
                        f"criteria {waiting} go to a person; the decision follows their scores")
    bar = min_confidence
    if earned:
        bar = max(min_confidence, award_min_confidence) if award_min_confidence is not None else min_confidence
        if not awards_automatic:
            deciding = deciding_criteria(rubric, probs or {}, max(bar, 0.999999))
            return Decision("needs_human", label, pe, conf, lv, deciding,
                            f"the policy sends every award to a person (no award bar passed its test); {deciding} "
                            "go to a person")
    if conf is not None and conf >= bar:
        return Decision(label, label, pe, conf, lv, [],
                        f"every criterion auto-accepted and P({label}) {conf:.3f} >= {bar:.3f}")
    deciding = deciding_criteria(rubric, probs or {}, bar)
    return Decision("needs_human", label, pe, conf, lv, deciding,
                    f"borderline: P({label}) {0.0 if conf is None else conf:.3f} < {bar:.3f}; "
                    f"{deciding} go to a person")


def deciding_criteria(rubric: Rubric, probs: Mapping[str, Mapping[int, float]], min_confidence: float) -> list[str]:
    """The criteria whose scores a borderline decision turns on: those whose own P(meets its threshold) is
    itself uncertain at the policy's confidence; all that count towards the total under a total rule, where
    every level moves the decision; the least certain one when no criterion alone is uncertain."""
    award = rubric.award
    assert award is not None
    th = award.thresholds(rubric)
    if award.min_total is not None:
        return [c for c in award.total_criteria(rubric)]
    pm = {c.id: p_meets(probs[c.id], th[c.id]) for c in rubric.criteria}
    unsure = [c for c, p in pm.items() if 1.0 - min_confidence < p < min_confidence]
    return unsure or [min(pm, key=lambda c: max(pm[c], 1.0 - pm[c]))]


def decide_items(rubric: Rubric, policy: Any | None, items: Sequence[Any]) -> None:
    """Add a ``decision`` to scored submissions (``scoring.prescore.ScoredSubmission``) and send the deciding
    criteria of a borderline decision to a person (route ``human``, rule ``decision_borderline``)."""
    if rubric.award is None:
        return
    min_conf = getattr(policy, "decision_min_confidence", None) if policy is not None else None
    award_conf = getattr(policy, "award_min_confidence", None) if policy is not None else None
    awards_auto = bool(getattr(policy, "awards_automatic", True)) if policy is not None else True
    for it in items:
        levels = {c: r.score for c, r in it.criteria.items()}
        probs = {c: r.probabilities for c, r in it.criteria.items()}
        routes = {c: str(r.extra.get("route")) for c, r in it.criteria.items()} if policy is not None else None
        d = decide(rubric, levels, probs, routes, min_conf, award_min_confidence=award_conf,
                   awards_automatic=awards_auto)
        for c in d.deciding:
            ex = it.criteria[c].extra
            ex["reason"] = f"credential decision: {d.reason}; machine rule: {ex.get('route')} ({ex.get('reason')})"
            ex["route"], ex["rule"] = "human", "decision_borderline"
        it.decision = d


def human_level(ratings: Sequence[Any], adjudicated: int | None, gap: int,
                route: str | None = None) -> tuple[int | None, str | None]:
    """``(level, waiting_for)`` of one criterion by people.

    The adjudicated score; else, when the ratings agree within ``gap``, the first rating, else the second,
    else the audit. No level while people are not done: ``waiting_for`` is ``"second rating"`` when the
    criterion is routed ``double`` (``route``: its latest machine score's) and only one blind rater has
    scored (deciding on the first alone would sign a credential, or release "not yet" feedback, that the
    second may dispute), ``"adjudication"`` when ratings are further apart than the gap; ``(None, None)``
    when nobody rated it. ``ratings``: the criterion's first/second/audit scores in recording order."""
    if adjudicated is not None:
        return int(adjudicated), None
    if not ratings:
        return None, None
    kinds = {h.kind for h in ratings}
    if route == "double" and not {"first", "second"} <= kinds:
        return None, "second rating"
    vals = [h.score for h in ratings]
    if max(vals) - min(vals) > gap:
        return None, "adjudication"
    by_kind = {h.kind: h.score for h in ratings}
    return int(next(by_kind[k] for k in ("first", "second", "audit") if k in by_kind)), None


def resolved_levels(rubric: Rubric, machine: Mapping[str, Any], humans: Sequence[Any], adjudicated: Mapping[str, int],
                    gap_of: Any) -> dict[str, int] | None:
    """The level each criterion stands at once people have scored it, or None while any is unresolved.

    Per criterion: the level people gave it (:func:`human_level`: a ``double`` criterion waits for both blind
    raters, a disagreement beyond the gap for adjudication); else the machine's score when its route accepted
    it. ``machine``: criterion -> latest machine score record; ``humans``: human score records;
    ``gap_of(criterion)``: the adjudication gap.
    """
    out: dict[str, int] = {}
    for c in rubric.criteria:
        rated = [h for h in humans if h.criterion == c.id and h.kind in ("first", "second", "audit")]
        m = machine.get(c.id)
        level, waiting = human_level(rated, adjudicated.get(c.id), gap_of(c.id), m.route if m is not None else None)
        if waiting:
            return None  # people are not done with it
        if level is not None:
            out[c.id] = level
            continue
        if m is None or m.route not in ACCEPTED:
            return None
        out[c.id] = int(m.score)
    return out
