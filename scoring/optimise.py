"""The policy optimiser: calibrate a model on held-out human scores and choose routing thresholds.

For each criterion, on a calibration file the model never trained on:
  1. fit a probability calibrator (method measured by cross-validated log-loss) and a conformal layer;
  2. choose a rule (confidence measure, minimum confidence, maximum conformal set size) whose auto-accepted
     items agree with the human score at least as well as two humans agree with each other, with error
     control AFTER selection: Learn then Test (Angelopoulos, Bates, Candes, Jordan, Lei 2021).
     Each candidate rule is a null hypothesis "on items like these, the accepted items agree with the human
     LESS than humans agree with each other"; it gets a p-value from the calibration items, and the rules of
     one family (one confidence measure and set limit) are tested in a FIXED SEQUENCE from the strictest
     threshold to the loosest, each at level delta / (number of families), stopping at the first rule that
     is not rejected (Bonferroni across families). Every rule rejected this way is certified together, so
     P(the chosen rule is below the bar) <= delta, whatever the number of thresholds tried, provided the
     calibration items and future items are exchangeable (drawn from the same population, in any order);
  3. among the certified rules, keep the one auto-accepting the most items.
The bar (``human_pair``: paired, on the same accepted items; ``human_qwk``: a given figure) and the statistic.
Paired, the machine stands in for rater 1 and is compared with rater 2, as rater 1 is (never with the resolved
score ``y``, which combines both raters and is the easier target; ``scoring.human_bar`` says why rater 2):
  * ``qwk`` (scales of 4+ levels): paired bootstrap of QWK(machine, rater 2) - QWK(rater 1, rater 2) on the
    accepted items; p-value = share of resamples at or below 0 (a one-sided percentile bootstrap test);
  * ``exact`` (binary and 3-level scales, where kappa on a skewed accepted subset is unstable or undefined):
    exact agreement, one-sided exact McNemar test on the items where exactly one pair agrees.
Rules that are always true on the scale (``within 1 level`` on 0/1 or 0-2) are never candidates.
``selection="best"`` keeps the earlier winner-picking optimiser (best of many rules, each judged by its own
bootstrap bound on the same items): it is here only so benchmarks can show what error control changes.
The choice and the numbers behind it go into the policy file (``evidence``) so a reviewer can see why.
Nothing here reads the test data of a benchmark: the caller passes calibration items only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.artifact import ScoringModel
from models.calibration import CalibratedScorer, level_index
from models.scorers import ScorerError, text_hash
from scoring.errors import CalibrationDataError
from scoring.evidence import criterion_text
from scoring.human_bar import agreement_intervals, bar_statistic, margin_test, qwk_values, reference
from scoring.policy import CriterionPolicy, RoutingPolicy
from scoring.routing import confidence_of

# ----------------------------------------------------------------------------------- agreement

__all__ = ["qwk_values"]  # re-exported: benchmarks and tests read QWK from here


def qwk_lower_bound(
    machine: np.ndarray,
    human: np.ndarray,
    pair: tuple[np.ndarray, np.ndarray] | None,
    n_boot: int,
    alpha: float,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Bootstrap lower bound of machine-human QWK, and of its margin over human-human QWK when paired.

    Paired (``pair = (rater 1, rater 2)``): machine vs rater 2 against rater 1 vs rater 2, ``human`` unread
    (``scoring.human_bar``: the machine stands in for rater 1, both judged by the same reference); else the
    machine vs ``human``."""
    n = len(machine)
    human = reference(human, pair)
    idx = rng.integers(0, n, size=(n_boot, n))
    km = np.asarray(qwk_values(machine, human, idx))
    out = {"qwk": float(qwk_values(machine, human)), "qwk_lcb": float(np.nanquantile(km, alpha))}
    if pair is not None:
        kh = np.asarray(qwk_values(pair[0], pair[1], idx))
        out["human_qwk"] = float(qwk_values(pair[0], pair[1]))
        out["margin_lcb"] = float(np.nanquantile(km - kh, alpha))
    return out


# ----------------------------------------------------------------------------------- thresholds


@dataclass
class ThresholdChoice:
    policy: CriterionPolicy
    candidates_tried: int
    feasible: int
    table: list[dict[str, Any]] = field(default_factory=list)  # auto fraction vs agreement, for plots


def _require_bar(human_pair: tuple[np.ndarray, np.ndarray] | None, human_qwk: float | None) -> None:
    """Both optimisers need a human-human bar to beat; without one no rule can be judged, so refuse early."""
    if human_pair is None and human_qwk is None:
        raise CalibrationDataError("expected a second rater (--second-score-col) or a figure (--human-qwk), found neither")


def _resolve_min_auto(n: int, min_auto: int | None) -> int:
    """The fewest auto-accepted items a rule may rest on (default: 30 or 5% of the items, whichever is more).

    Refuses a calibration set smaller than that, since no rule could then be judged on enough items."""
    min_auto = min_auto if min_auto is not None else max(30, int(0.05 * n))
    if n < min_auto:
        raise CalibrationDataError(f"need at least {min_auto} scored calibration items, found {n}")
    return min_auto


def _conformal_eligibility(
    sets: np.ndarray | None, classes: list[int], scores: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Which items may be auto-accepted at all, and their conformal set sizes (None without sets).

    Routing sends an item whose machine score lies outside its own conformal set to humans, so only items
    with the score inside their set are eligible; without sets every item is."""
    if sets is None:
        return np.ones(n, bool), None
    sizes = sets.sum(axis=1)
    in_set = sets[np.arange(n), np.searchsorted(np.asarray(classes), scores)]
    return in_set, sizes


def choose_thresholds_best(
    P: np.ndarray,
    y: np.ndarray,
    scores: np.ndarray,
    classes: list[int],
    sets: np.ndarray | None,
    *,
    human_pair: tuple[np.ndarray, np.ndarray] | None = None,
    human_qwk: float | None = None,
    n_boot: int = 400,
    alpha: float = 0.05,
    min_auto: int | None = None,
    n_grid: int = 30,
    seed: int = 13,
) -> ThresholdChoice:
    """The winner-picking optimiser (``selection="best"``): the largest share among rules whose OWN bound passes.

    Kept for comparison only: each rule's bound holds for that rule alone, and picking the best of many on
    the same items makes the winner's bound optimistic (winner's curse); :func:`choose_thresholds` controls
    the error after selection. ``P`` are calibrated probabilities of calibration items (cross-fitted), ``y``
    their human scores, ``scores`` the machine scores, ``sets`` boolean conformal sets. ``human_pair`` (two
    raters, NaN where missing) or ``human_qwk`` sets the bar; one of them is required.
    """
    _require_bar(human_pair, human_qwk)
    n = len(y)
    min_auto = _resolve_min_auto(n, min_auto)
    rng = np.random.default_rng(seed)
    pair_ok = None
    y_ok = np.isfinite(np.asarray(y, float))  # without a pair: items with the human score judged against
    if human_pair is not None:
        r1, r2 = (np.asarray(v, float) for v in human_pair)
        pair_ok = ~(np.isnan(r1) | np.isnan(r2))
    K = len(classes)
    tolerances = [0, 1] + ([2] if K > 15 else [])
    size_opts: list[int | None] = [None]
    in_set, sizes = _conformal_eligibility(sets, classes, scores, n)
    if sizes is not None:
        size_opts += sorted({int(v) for v in np.quantile(sizes, [0.1, 0.25, 0.5, 0.75, 0.9])})
    best: tuple[float, float, CriterionPolicy, dict[str, Any]] | None = None
    tried = feasible = 0
    table: list[dict[str, Any]] = []
    for tol in tolerances:
        cp0 = CriterionPolicy(confidence="within" if tol else "exact", tolerance=tol)
        conf = confidence_of(P, classes, scores, cp0)
        grid = np.unique(np.quantile(conf, np.linspace(0.0, 0.97, n_grid)))
        for max_size in size_opts:
            base = in_set if max_size is None else in_set & (sizes <= max_size)  # type: ignore[operator]
            for t in grid:
                auto = base & (conf >= t)
                if pair_ok is not None:
                    auto_eval = auto & pair_ok
                else:
                    auto_eval = auto & y_ok
                if auto_eval.sum() < min_auto:
                    continue
                tried += 1
                pair = (r1[auto_eval], r2[auto_eval]) if pair_ok is not None else None
                st = qwk_lower_bound(scores[auto_eval], y[auto_eval], pair, n_boot, alpha, rng)
                target = st["human_qwk"] if pair is not None else float(human_qwk)  # type: ignore[arg-type]
                ok = st["margin_lcb"] >= 0 if pair is not None else st["qwk_lcb"] >= target
                frac = float(auto.mean())
                row = {"tolerance": tol, "min_confidence": round(float(t), 4), "max_set_size": max_size,
                       "auto_fraction": round(frac, 4), "n_auto": int(auto.sum()), "qwk": round(st["qwk"], 4),
                       "qwk_lcb": round(st["qwk_lcb"], 4), "target": round(target, 4), "feasible": bool(ok)}
                if "margin_lcb" in st:
                    row["margin_lcb"] = round(st["margin_lcb"], 4)
                table.append(row)
                if not ok:
                    continue
                feasible += 1
                bound = st.get("margin_lcb", st["qwk_lcb"] - target)
                if best is None or (frac, bound) > (best[0], best[1]):
                    cp = CriterionPolicy(confidence=cp0.confidence, tolerance=tol, min_confidence=float(t),
                                         max_set_size=max_size)
                    best = (frac, bound, cp, row)
    if best is None:
        evidence: dict[str, Any] = {
            "why": f"no rule with >= {min_auto} auto-accepted items met the human-human bar "
                   f"({'paired margin LCB >= 0' if human_pair is not None else f'QWK LCB >= {human_qwk}'})",
            "candidates_tried": tried, "n_cal": n,
        }
        if table:  # how far from the bar the best attempt fell: tells a reviewer whether more data could help
            evidence["closest_rule"] = max(table, key=_shortfall)
        cp = CriterionPolicy(enabled=False, evidence=evidence)
        return ThresholdChoice(cp, tried, 0, table)
    frac, bound, cp, row = best
    cp.evidence = {
        "n_cal": n,
        "auto_fraction_cal": row["auto_fraction"],
        "n_auto_cal": row["n_auto"],
        "qwk_auto_cal": row["qwk"],
        "qwk_auto_lcb": row["qwk_lcb"],
        "bar": ("paired: LCB(QWK machine-rater2 - QWK rater1-rater2) >= 0 on the same items"
                if human_pair is not None else f"LCB(QWK machine-human) >= human_qwk {human_qwk}"),
        "human_qwk_on_auto_cal": row["target"] if human_pair is not None else None,
        "margin_lcb": row.get("margin_lcb"),
        "bootstrap": {"n_boot": n_boot, "one_sided_alpha": alpha, "seed": seed},
        "candidates_tried": tried,
        "candidates_feasible": feasible,
        "selection": "best (winner-picking, no error control after selection)",
    }
    return ThresholdChoice(cp, tried, feasible, table)


def _shortfall(row: dict[str, Any]) -> float:
    """A candidate's bound minus the bar (>= 0: feasible): the paired margin LCB, else QWK LCB - target."""
    return float(row["margin_lcb"] if "margin_lcb" in row else row["qwk_lcb"] - row["target"])


# ----------------------------------------------------------------------------------- learn then test

SELECTIONS = ("ltt", "best")  # error control after selection | the winner-picking optimiser (comparison only)
# shares of eligible items where a fixed sequence starts (LTT with several start points); 1.0 is the single
# rule "accept every eligible item", which on long scales (a sum of two raters) is where the machine leads most
STARTS = (0.1, 0.4, 1.0)


def rule_families(n_levels: int, sizes: np.ndarray | None, min_auto: int,
                  singleton_family: bool = False) -> list[tuple[int, int | None]]:
    """(tolerance, max set size) pairs whose thresholds form one fixed sequence each.

    The confidence is P(human gives exactly the machine's score) on scales up to 15 levels, also P(within 1
    level) from 7 levels on, and P(within 1 / 2 levels) on longer scales (where no single level is likely).
    ``within t levels`` is a candidate only when it can be false: the band of 2t + 1 levels around a score
    must be narrower than the scale (``within 1`` on a 0/1 or 0-2 scale always holds for some scores and
    says nothing). Few families on purpose: each costs its share of delta (Bonferroni); a family of singleton
    conformal sets (``singleton_family``) is off by default because on ASAP-AES it cost more than it added
    (``scoring bench route-guarantee``, signal ``+conformal``). Every rule still requires the machine's score
    to lie inside its conformal set."""
    if n_levels > 15:
        tolerances = [1, 2]
    elif n_levels >= 7:
        tolerances = [0, 1]
    else:
        tolerances = [0]
    tolerances = [t for t in tolerances if 2 * t + 1 < n_levels]
    size_opts: list[int | None] = [None]
    if singleton_family and sizes is not None and int((sizes == 1).sum()) >= min_auto:
        size_opts.append(1)  # singleton conformal sets: the conformal layer alone is sure of one level
    return [(t, s) for t in tolerances for s in size_opts]


def choose_thresholds(
    P: np.ndarray,
    y: np.ndarray,
    scores: np.ndarray,
    classes: list[int],
    sets: np.ndarray | None,
    *,
    human_pair: tuple[np.ndarray, np.ndarray] | None = None,
    human_qwk: float | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    delta: float = 0.05,
    min_auto: int | None = None,
    n_grid: int | None = None,
    seed: int = 13,
    selection: str = "ltt",
    statistic: str = "auto",
    starts: tuple[float, ...] = STARTS,
) -> ThresholdChoice:
    """The rule auto-accepting the most items among those certified by Learn then Test at level ``delta``.

    ``P`` are calibrated probabilities of calibration items (cross-fitted), ``y`` their human scores,
    ``scores`` the machine scores, ``sets`` boolean conformal sets. ``human_pair`` (two raters, NaN where
    missing) or ``human_qwk`` sets the bar; one of them is required. ``alpha`` is the one-sided level of the
    bootstrap bounds reported beside the p-values; ``statistic`` auto | qwk | exact (see scoring.human_bar).
    """
    if selection not in SELECTIONS:
        raise CalibrationDataError(f"selection must be one of {list(SELECTIONS)}, found {selection!r}")
    if selection == "best":
        return choose_thresholds_best(P, y, scores, classes, sets, human_pair=human_pair, human_qwk=human_qwk,
                                      n_boot=n_boot, alpha=alpha, min_auto=min_auto, n_grid=n_grid or 30, seed=seed)
    _require_bar(human_pair, human_qwk)
    if not 0.0 < delta < 1.0:
        raise CalibrationDataError(f"delta must lie strictly between 0 and 1, found {delta}")
    n = len(y)
    min_auto = _resolve_min_auto(n, min_auto)
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    pair_ok = np.isfinite(np.asarray(y, float))  # without a pair the machine is judged against y (NaN: unscored)
    r1 = r2 = None
    if human_pair is not None:
        r1, r2 = (np.asarray(v, float) for v in human_pair)
        pair_ok = ~(np.isnan(r1) | np.isnan(r2))  # paired: y is not read (machine vs rater 2, scoring.human_bar)
    K = len(classes)
    try:
        stat = bar_statistic(K, statistic, paired=human_pair is not None)
    except ValueError as exc:
        raise CalibrationDataError(str(exc)) from None
    in_set, sizes = _conformal_eligibility(sets, classes, scores, n)
    fams = rule_families(K, sizes, min_auto)
    confs: dict[int, np.ndarray] = {}
    usable: list[tuple[int, int | None]] = []
    excluded: list[str] = []
    for tol, size in fams:
        cp0 = CriterionPolicy(confidence="within" if tol else "exact", tolerance=tol)
        confs.setdefault(tol, confidence_of(P, classes, scores, cp0))
        base = in_set if size is None else in_set & (sizes <= size)  # type: ignore[operator]
        if base.sum() == 0:  # no item has its own score inside its conformal set
            excluded.append(f"tolerance {tol}, set <= {size}: no eligible item")
            continue
        usable.append((tol, size))
    table, certified, level = fixed_sequence_ltt(
        [(confs[tol], in_set if size is None else in_set & (sizes <= size)) for tol, size in usable],  # type: ignore[operator]
        scores, y, (r1, r2) if r1 is not None and r2 is not None else None, pair_ok, statistic=stat,
        human_qwk=human_qwk, delta=delta, min_auto=min_auto, n_grid=n_grid or 19, n_boot=n_boot, rng=rng,
        starts=starts)
    for row in table:
        row["tolerance"], row["max_set_size"] = usable[row["family"]]
    guarantee = {
        "delta": delta,
        "method": "learn-then-test (Angelopoulos et al. 2021): fixed-sequence testing over thresholds from the "
                  "strictest to the loosest, one sequence per family and start share, Bonferroni across sequences",
        "starts": list(starts),
        "families": [{"tolerance": t, "max_set_size": s} for t, s in usable],
        "excluded_families": excluded,
        "level_per_test": round(level, 6),
        "statistic": stat,
        "test": ("exact McNemar, one-sided (exact agreement)" if stat == "exact" else
                 "paired bootstrap, one-sided (QWK)" if human_pair is not None else
                 "bootstrap against the given human QWK, one-sided"),
        "n_boot": n_boot,
        "seed": seed,
        "assumption": "calibration items and future items are exchangeable (same population, any order)",
        "promise": f"P(the chosen rule's accepted items agree with the human less than humans do) <= {delta}",
    }
    bar = (f"paired: {stat} machine-rater2 >= {stat} rater1-rater2 on the same accepted items"
           if human_pair is not None else f"QWK machine-human >= human_qwk {human_qwk}")
    if not certified:
        evidence: dict[str, Any] = {
            "why": f"no rule with >= {min_auto} auto-accepted items was certified at the human-human bar "
                   f"(learn-then-test, delta {delta})",
            "bar": bar, "candidates_tried": len(table), "n_cal": n, "guarantee": guarantee, "selection": "ltt",
        }
        if table:  # the most promising attempt: tells a reviewer whether more data could help
            evidence["closest_rule"] = min(table, key=lambda r: r["p_value"])
        return ThresholdChoice(CriterionPolicy(enabled=False, evidence=evidence), len(table), 0, table)
    row = max(certified, key=lambda r: (r["auto_fraction"], -r["p_value"]))
    tol, size = row["tolerance"], row["max_set_size"]
    cp = CriterionPolicy(confidence="within" if tol else "exact", tolerance=tol, min_confidence=row["min_confidence"],
                         max_set_size=size)
    auto = (in_set if size is None else in_set & (sizes <= size)) & (confs[tol] >= row["min_confidence"])  # type: ignore[operator]
    ev = auto & pair_ok
    pair = (r1[ev], r2[ev]) if r1 is not None and r2 is not None else None
    lcb = qwk_lower_bound(scores[ev], y[ev], pair, n_boot, alpha, np.random.default_rng(seed + 1))
    cp.evidence = {
        "n_cal": n,
        "auto_fraction_cal": row["auto_fraction"],
        "n_auto_cal": row["n_auto"],
        "qwk_auto_cal": round(lcb["qwk"], 4),
        "qwk_auto_lcb": round(lcb["qwk_lcb"], 4),
        "bar": bar,
        "human_qwk_on_auto_cal": round(lcb["human_qwk"], 4) if "human_qwk" in lcb else None,
        "margin_lcb": round(lcb["margin_lcb"], 4) if "margin_lcb" in lcb else None,
        "p_value": row["p_value"],
        "agreement_auto_cal": agreement_intervals(scores[ev], y[ev], pair, n_boot=n_boot,
                                                  rng=np.random.default_rng(seed + 2)),
        "guarantee": guarantee,
        "sequence": [{k: r[k] for k in ("min_confidence", "auto_fraction", "n_eval", "margin", "p_value", "certified")}
                     for r in table if r["family"] == row["family"] and r["start"] == row["start"]],
        "candidates_tried": len(table),
        "candidates_certified": len(certified),
        "selection": "ltt",
    }
    return ThresholdChoice(cp, len(table), len(certified), table)


def fixed_sequence_ltt(
    families: list[tuple[np.ndarray, np.ndarray]],
    scores: np.ndarray,
    y: np.ndarray,
    pair: tuple[np.ndarray, np.ndarray] | None,
    pair_ok: np.ndarray,
    *,
    statistic: str,
    human_qwk: float | None,
    delta: float,
    min_auto: int,
    n_grid: int,
    n_boot: int,
    rng: np.random.Generator,
    starts: tuple[float, ...] = STARTS,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    """Learn then Test over families of (confidence, eligible items), with several start points.

    A rule is "accept eligible items with confidence >= t". For each family and each start share s, the rules
    accepting s, s + step, ..., 100% of the eligible items are tested in that fixed order (strictest first)
    at delta / (#families x #starts), and a sequence ends at its first rule that is not certified; every rule
    certified on the way is safe together (FWER <= delta, Bonferroni over the sequences). Why several starts
    (Angelopoulos et al. 2021, sec. on multiple start points): the few most confident items are nearly all
    one level, where every rater is near perfect and a difference is noise; a sequence starting only there
    would often end at once. The thresholds are quantiles of the confidence (which does not read the human
    scores) on a grid of ``n_grid`` shares from min(starts) to 1; a rule is tested once it accepts at least
    ``min_auto`` double-scored items. Returns every tested rule, the certified ones, and the level per test.
    """
    level = delta / max(1, len(families) * len(starts))
    table: list[dict[str, Any]] = []
    certified: list[dict[str, Any]] = []
    step = (1.0 - min(starts)) / max(1, n_grid - 1)
    for f, (conf, base) in enumerate(families):
        if not base.any():
            continue
        for s0 in starts:
            shares = np.arange(s0, 1.0 + 1e-9, step)
            # thresholds rounded DOWN to the 4 decimals the policy file keeps (a confidence equal for many items,
            # up to float noise, stays on one side); the rule tested below is exactly the rule stored
            grid = np.unique(np.floor(np.quantile(conf[base], np.clip(1.0 - shares, 0, 1)) * 1e4) / 1e4)[::-1]
            for t in grid:  # strictest first
                auto = base & (conf >= t)
                ev = auto & pair_ok
                if ev.sum() < min_auto:
                    continue  # too few items to test yet: the sequence starts at the first testable rule
                pr = (pair[0][ev], pair[1][ev]) if pair is not None else None
                bt = margin_test(scores[ev], y[ev], pr, statistic=statistic, target=human_qwk, n_boot=n_boot, rng=rng)
                row = {"family": f, "start": round(float(s0), 3), "min_confidence": round(float(t), 4),
                       "auto_fraction": round(float(auto.mean()), 4), "n_auto": int(auto.sum()),
                       "n_eval": int(ev.sum()), "statistic": statistic, "machine": _r4(bt.machine),
                       "human": _r4(bt.human), "margin": _r4(bt.margin), "p_value": round(bt.p_value, 5),
                       "level": round(level, 6), "certified": bt.p_value <= level}
                table.append(row)
                if not row["certified"]:
                    break  # fixed sequence: the first rule not rejected ends this sequence
                certified.append(row)
    return table, certified, level


def _r4(x: float) -> float | None:
    return round(float(x), 4) if x is not None and np.isfinite(x) else None


# ----------------------------------------------------------------------------------- whole model


BARS = ("same-items", "criterion")  # human-human QWK on the accepted items (paired) | over all calibration items


@dataclass
class CriterionCalibrationData:
    """Held-out items of one criterion: raw (uncalibrated) probabilities and human scores."""

    proba_raw: np.ndarray
    y: np.ndarray
    ids: list[str]
    second: np.ndarray | None = None  # second rater (NaN where missing)
    first: np.ndarray | None = None  # first rater when ``y`` is a resolved score (else ``y`` is used)
    human_qwk: float | None = None
    # 2 where ``y`` is the SUM of the two raters (ASAP-AES sets 1, 7, 8): each rater's score is doubled onto
    # the machine's scale for the bar (machine vs rater 2, rater 1 vs rater 2; scoring.human_bar)
    rater_multiplier: int = 1


@dataclass
class CalibrationResult:
    model: ScoringModel
    policy: RoutingPolicy
    report: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]


def base_scorer(scorer: Any) -> Any:
    """The uncalibrated scorer (re-calibrating a calibrated model starts from its base)."""
    return scorer.base if isinstance(scorer, CalibratedScorer) else scorer


def criterion_hashes(model: ScoringModel, criterion_id: str, evidences: list[dict[str, str]]) -> list[str]:
    """The hash of each submission's text for one criterion, as the scorer kept its training texts'
    (``train_hashes_``): how calibration rows are matched to what the model trained on."""
    crit = model.rubric.criterion(criterion_id)
    return [text_hash(criterion_text(model.rubric, crit, ev)) for ev in evidences]


def cross_fitted_probabilities(model: ScoringModel, criterion_id: str, evidences: list[dict[str, str]]) -> np.ndarray:
    """Raw level probabilities of TRAINING submissions from models that never saw them (NaN rows: not found).

    Why: an issuer's human scores are scarce; rather than keep a fifth of them away from training to
    calibrate on, the trained scorer keeps, for every training text, probabilities made without that
    text (``EnsembleScorer.cross_fitted_proba``), and calibration, conformal sets and thresholds are fitted
    on those. Rows are matched by a hash of the criterion's evidence text; a row whose text the model did
    not train on gets NaN (the caller decides whether that is an error).
    """
    scorer = base_scorer(model.scorers[criterion_id])
    if not hasattr(scorer, "cross_fitted_proba"):
        raise CalibrationDataError(
            f"criterion {criterion_id!r} is scored by {type(scorer).__name__}, which keeps no cross-fitted "
            "probabilities (only the ensemble trained on human scores does): calibrate it on a held-out file instead"
        )
    try:
        P = scorer.cross_fitted_proba()
    except ScorerError as exc:
        raise CalibrationDataError(f"criterion {criterion_id!r}: {exc}") from None
    where: dict[str, list[int]] = {}
    for i, h in enumerate(scorer.train_hashes_):
        where.setdefault(h, []).append(i)
    out = np.full((len(evidences), P.shape[1]), np.nan)
    used: dict[str, int] = {}
    for j, h in enumerate(criterion_hashes(model, criterion_id, evidences)):
        rows = where.get(h)
        if rows:  # duplicates of one text: walk through its training rows, then reuse the last
            out[j] = P[rows[min(used.get(h, 0), len(rows) - 1)]]
            used[h] = used.get(h, 0) + 1
    return out


def trained_on(model: ScoringModel, criterion_id: str, evidences: list[dict[str, str]]) -> np.ndarray:
    """Which rows' criterion texts the criterion's scorer trained on (all False when it keeps no record).

    Why: probabilities on training texts are over-confident (the scorer has seen their scores), so
    thresholds chosen on them auto-accept far more than on new texts, and the policy's promise does not
    hold. Calibration on a held-out file must leave such rows out; on the training file it reads the
    cross-fitted probabilities instead (``--cross-fitted``)."""
    seen = set(getattr(base_scorer(model.scorers[criterion_id]), "train_hashes_", None) or ())
    if not seen:
        return np.zeros(len(evidences), bool)
    return np.array([h in seen for h in criterion_hashes(model, criterion_id, evidences)], bool)


def calibrate_model(
    model: ScoringModel,
    data: dict[str, CriterionCalibrationData],
    *,
    coverage: float = 0.9,
    audit_rate: float = 0.1,
    double_rate: float = 0.05,
    adjudication_gap: int = 1,
    queue_order: str = "uncertain",
    method: str = "auto",
    mondrian: str = "none",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 13,
    bar: str = "same-items",
    delta: float = 0.05,
    selection: str = "ltt",
    statistic: str = "auto",
) -> CalibrationResult:
    """Calibrated copy of ``model`` (new, unsaved version) and the tuned policy for it.

    Criteria absent from ``data`` keep their scorer and get no thresholds (always human). ``delta`` bounds
    the probability that a criterion's chosen rule falls below the human bar (``selection="ltt"``).
    """
    if bar not in BARS:
        raise CalibrationDataError(f"bar must be one of {list(BARS)}, found {bar!r}")
    unknown = sorted(set(data) - {c.id for c in model.rubric.criteria})
    if unknown:
        raise CalibrationDataError(f"criteria {unknown} are not in rubric {model.rubric.id} "
                                   f"(criteria: {[c.id for c in model.rubric.criteria]})")
    scorers = dict(model.scorers)
    crit_policies: dict[str, CriterionPolicy] = {}
    report: dict[str, Any] = {}
    tables: dict[str, list[dict[str, Any]]] = {}
    h = hashlib.sha256()
    for c in model.rubric.criteria:
        d = data.get(c.id)
        if d is None:
            continue
        cal = CalibratedScorer(base_scorer(model.scorers[c.id]), method=method, mondrian=mondrian, seed=seed)
        cal.fit_calibration(d.proba_raw, d.y)
        P = cal.cal_proba_
        scores = cal.decide(P)
        sets = cal.prediction_set(P, coverage)
        pair = None
        k = int(d.rater_multiplier)
        if k < 1:
            raise CalibrationDataError(f"criterion {c.id!r}: rater_multiplier must be a whole number >= 1, found {k}")
        if d.second is not None and np.isfinite(np.asarray(d.second, float)).sum() >= 2:
            # the bar: machine vs rater 2 against rater 1 vs rater 2 (scoring.human_bar); y still fits the layers
            pair = (k * np.asarray(d.first if d.first is not None else d.y, float), k * np.asarray(d.second, float))
        human_qwk, bar_kind = d.human_qwk, (bar if pair is not None else "given human_qwk")
        judge = np.asarray(d.y)  # what the machine is compared with when the bar is a figure
        if pair is not None and bar == "criterion":
            both = np.isfinite(pair[0]) & np.isfinite(pair[1])
            human_qwk = round(float(qwk_values(pair[0][both], pair[1][both])), 4)
            judge, pair = pair[1], None  # machine vs rater 2 on the accepted items, against the criterion's figure
        choice = choose_thresholds(P, judge, scores, c.scores, sets, human_pair=pair,
                                   human_qwk=human_qwk, n_boot=n_boot, alpha=alpha, seed=seed, delta=delta,
                                   selection=selection, statistic=statistic)
        choice.policy.evidence["bar_kind"] = bar_kind
        choice.policy.evidence["comparison"] = {
            "same-items": "machine vs rater 2 against rater 1 vs rater 2 on the same accepted items",
            "criterion": "machine vs rater 2 on the accepted items against rater 1 vs rater 2 over all items",
        }.get(bar_kind, "machine vs the human score against the given human_qwk")
        choice.policy.evidence["rater_multiplier"] = k
        choice.policy.evidence["calibration"] = cal.report_
        yi = level_index(d.y, cal.classes_)
        choice.policy.evidence["coverage_cal_cv"] = round(float(sets[np.arange(len(yi)), yi].mean()), 4)
        choice.policy.evidence["mean_set_size_cal"] = round(float(sets.sum(axis=1).mean()), 3)
        scorers[c.id] = cal
        crit_policies[c.id] = choice.policy
        report[c.id] = {**cal.report_, "auto_fraction_cal": choice.policy.evidence.get("auto_fraction_cal", 0.0)}
        tables[c.id] = choice.table
        h.update(repr((c.id, d.ids, np.asarray(d.y).tolist())).encode())
    base_card = {k: v for k, v in model.card.items() if k in {"encoder_name", "bench", "notes"}}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    digest = hashlib.sha256((model.version + h.hexdigest()).encode()).hexdigest()
    version = f"{model.rubric.id}-v{model.rubric.version}-{stamp}-{digest[:8]}-cal"
    new = ScoringModel(
        rubric=model.rubric,
        scorers=scorers,
        encoder=model.encoder,
        version=version,
        card={
            **base_card,
            "base_model_version": model.version,
            "calibration": {"data_sha256": h.hexdigest(), "coverage": coverage, "per_criterion": report,
                            "note": "probabilities calibrated on held-out human scores; conformal sets via crepes"},
        },
    )
    policy = RoutingPolicy(
        policy_version=f"{version}-policy",
        model_version=version,
        rubric_id=model.rubric.id,
        coverage=coverage,
        audit_rate=audit_rate,
        double_rate=double_rate,
        adjudication_gap=adjudication_gap,
        queue_order=queue_order,  # type: ignore[arg-type]
        criteria=crit_policies,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    return CalibrationResult(new, policy, report, tables)
