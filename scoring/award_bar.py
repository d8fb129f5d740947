"""The bar an automatic award must clear, chosen by a test on held-out decisions (Learn then Test).

Why a separate bar: a false award cannot be taken back the way a false "not yet" can (the educator gets
feedback and resubmits), so the issuer's promise is about awards: *on the decisions the machine makes on
its own, it awards wrongly no more often than a second human rater does.* A fixed probability bar cannot
promise that: how often a wrong award slips through depends on how many borderline submissions a
credential draws and on how well its probabilities are calibrated in the tail.

The procedure, on the calibration items (held-out or cross-fitted, with a reference decision from the
resolved or first human score and a comparison decision from the other rater):

1. Each item gets the decision the machine would make under the policy (routes of every criterion with
   the random double-scoring sample switched off, level probabilities cross-fitted), with the award bar
   ``b`` as a parameter.
2. For bars ``b`` from strictest to loosest (``BARS``), the hypothesis "the machine's false-award rate on
   the items it decides is above the human rater's on the same items" is rejected when the one-sided
   Clopper-Pearson upper bound (level 1 - delta) on the machine's rate lies at or below the rater's
   observed rate. Fixed-sequence testing (Angelopoulos, Bates, Candes, Jordan and Lei 2021, "Learn then
   Test") stops at the first bar that fails; the loosest bar that passed is chosen. A bar at which the
   machine would award fewer than ``MIN_AWARDS`` calibration items is skipped, not failed: whether to test
   it depends on the machine's outputs alone, never on the human scores, so skipping keeps the guarantee. Testing in a fixed
   order controls the chance of choosing a bar that does not hold at ``delta``, with no correction for the
   number of bars, as long as calibration and new submissions are exchangeable.
3. No bar passes (too few decisions to show it, or a rater who never awards wrongly): awards are not
   automatic (``awards_automatic: false``); "not yet" decisions stay automatic at the decision bar.

The rater's rate is treated as the bar's fixed target, as the criterion optimiser treats human-human QWK; the
guarantee is therefore approximate by the sampling error of that rate on the calibration file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import beta

from scoring.credential import decide

BARS = (0.999, 0.998, 0.995, 0.99, 0.98, 0.97, 0.95, 0.93, 0.9)
DELTA = 0.05
MIN_AWARDS = 10  # a bar under which the machine would award fewer calibration items than this is not tested


@dataclass(frozen=True)
class CalDecision:
    """One calibration item's machine decision inputs and its human decisions."""

    levels: dict[str, int]
    probs: dict[str, dict[int, float]]
    routes: dict[str, str]
    reference: bool  # earned by the reference (resolved or first rater's) scores
    rater: bool  # earned by the other rater's scores


def clopper_pearson_upper(k: int, n: int, delta: float) -> float:
    """One-sided (1 - delta) upper bound on a binomial rate with k events in n trials."""
    if n == 0:
        return 1.0
    return 1.0 if k >= n else float(beta.ppf(1.0 - delta, k + 1, n - k))


def evaluate_bar(rubric: Any, items: list[CalDecision], decision_bar: float, bar: float | None,
                 awards_automatic: bool = True) -> dict[str, Any]:
    """Auto-decided count, machine and rater false awards on those items, at award bar ``bar``."""
    n = fa_m = fa_h = n_awards = 0
    for it in items:
        d = decide(rubric, it.levels, it.probs, it.routes, decision_bar, award_min_confidence=bar,
                   awards_automatic=awards_automatic)
        if d.outcome == "needs_human":
            continue
        n += 1
        fa_m += int(d.outcome == "earned" and not it.reference)
        fa_h += int(it.rater and not it.reference)
        n_awards += int(d.outcome == "earned")
    return {"n_auto": n, "n_auto_awards": n_awards, "machine_false_awards": fa_m, "rater_false_awards": fa_h}


def choose_award_bar(rubric: Any, items: list[CalDecision], decision_bar: float,
                     delta: float = DELTA) -> tuple[float | None, bool, dict[str, Any]]:
    """(award_min_confidence, awards_automatic, evidence) by fixed-sequence testing (module docstring)."""
    tested: list[dict[str, Any]] = []
    chosen: float | None = None
    for b in BARS:
        if b < decision_bar:
            break
        r = evaluate_bar(rubric, items, decision_bar, b)
        if r["n_auto_awards"] < MIN_AWARDS:  # too few awards to test; a label-free skip, not a failure
            tested.append({"bar": b, **r, "passed": None, "skipped": f"fewer than {MIN_AWARDS} automatic awards"})
            continue
        ucb = clopper_pearson_upper(r["machine_false_awards"], r["n_auto"], delta)
        rater_rate = r["rater_false_awards"] / r["n_auto"] if r["n_auto"] else 0.0
        passed = r["n_auto"] > 0 and ucb <= rater_rate
        tested.append({"bar": b, **r, "machine_rate_ucb": round(ucb, 5), "rater_rate": round(rater_rate, 5),
                       "passed": passed})
        if not passed:
            break
        chosen = b
    evidence = {
        "method": "learn-then-test, fixed sequence over award bars (strictest first); Clopper-Pearson upper "
                  "bound on the machine's false-award rate vs the other rater's rate on the same decisions",
        "delta": delta, "n_items": len(items), "tested": tested,
        "chosen": chosen if chosen is not None else "none: every award goes to a person",
    }
    return chosen, chosen is not None, evidence


def calibration_decisions(model: Any, policy: Any, data: Mapping[str, Any],
                          rater_scale: Mapping[str, float] | None = None) -> list[CalDecision]:
    """The calibration items that every criterion scored, as the machine and the two raters decide them.

    ``model`` is the calibrated model (its scorers hold cross-fitted calibrated probabilities of ``data``'s
    rows in ``cal_proba_``); ``data`` maps criterion -> ``scoring.optimise.CriterionCalibrationData``. The
    reference decision comes from ``y`` and the rater's from ``first`` when ``y`` is a resolved score, else
    from ``second``; ``rater_scale`` multiplies a criterion's rater scores onto the reference's scale (e.g. 2
    where the resolved score is the sum of two raters'). Items without a usable rater score for every
    criterion are left out.
    """
    from scoring.routing import decide_routes

    rubric = model.rubric
    award = rubric.award
    if award is None or any(c.id not in data for c in rubric.criteria):
        return []
    no_double = policy.model_copy(update={"double_rate": 0.0})
    per: dict[str, dict[str, tuple[int, dict[int, float], str, int, float]]] = {}
    for c in rubric.criteria:
        d = data[c.id]
        scorer = model.scorers[c.id]
        P = getattr(scorer, "cal_proba_", None)
        other = d.first if d.first is not None else d.second
        if P is None or other is None or len(P) != len(d.ids):
            return []
        classes = [int(x) for x in scorer.classes_]
        scores = np.asarray(scorer.decide(P))
        sets = scorer.prediction_set(P, policy.coverage) if hasattr(scorer, "prediction_set") else None
        routes = decide_routes(d.ids, c.id, P, scores, classes, sets, no_double)
        per[c.id] = {
            sid: (int(scores[i]), {lv: float(P[i, k]) for k, lv in enumerate(classes)}, routes[i].route,
                  int(d.y[i]), float(other[i]))
            for i, sid in enumerate(d.ids)
        }
    common = set.intersection(*(set(v) for v in per.values()))
    out: list[CalDecision] = []
    for sid in sorted(common):
        rows = {c: per[c][sid] for c in per}
        if any(not np.isfinite(r[4]) for r in rows.values()):
            continue
        ref = {c: r[3] for c, r in rows.items()}
        rater = {c: int(round(r[4] * (rater_scale or {}).get(c, 1.0))) for c, r in rows.items()}
        out.append(CalDecision(levels={c: r[0] for c, r in rows.items()}, probs={c: r[1] for c, r in rows.items()},
                               routes={c: r[2] for c, r in rows.items()}, reference=award.earned(rubric, ref),
                               rater=award.earned(rubric, rater)))
    return out


def with_award_bar(model: Any, policy: Any, data: Mapping[str, Any], delta: float = DELTA,
                   rater_scale: Mapping[str, float] | None = None) -> Any:
    """``policy`` with ``award_min_confidence``/``awards_automatic``/``award_evidence`` set by the test
    (``rater_scale``: see ``calibration_decisions``); the policy unchanged when the rubric has no award rule. Without a second human score per item the test
    cannot run: awards are then not automatic, and the evidence says why."""
    if model.rubric.award is None:
        return policy
    items = calibration_decisions(model, policy, data, rater_scale)
    if not items:
        return policy.model_copy(update={
            "award_min_confidence": None, "awards_automatic": False,
            "award_evidence": {"chosen": "none: every award goes to a person",
                               "why": "no calibration item has a second human score for every criterion, so the "
                                      "false-award rate of a human rater cannot be measured"}})
    bar, automatic, evidence = choose_award_bar(model.rubric, items, policy.decision_min_confidence, delta)
    return policy.model_copy(update={"award_min_confidence": bar, "awards_automatic": automatic,
                                     "award_evidence": evidence})


