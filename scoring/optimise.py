"""The policy optimiser: calibrate a model on held-out human scores and choose routing thresholds.

For each criterion, on a calibration file the model never trained on:
  1. fit a probability calibrator (method measured by cross-validated log-loss) and a conformal layer;
  2. over a grid of (confidence measure, minimum confidence, maximum conformal set size), keep the
     rules whose auto-accepted items agree with the human score at least as well as humans agree with
     each other, judged by a one-sided bootstrap LOWER confidence bound, never a point estimate:
       * with a second rater: LCB of QWK(machine, human) - QWK(rater 1, rater 2) on the same
         auto-accepted items (paired resampling) must be >= 0;
       * with only a human-human figure (``human_qwk``): LCB of QWK(machine, human) >= that figure;
       * ``bar="criterion"`` with a second rater: the figure is rater 1 vs rater 2 over ALL calibration items
         of the criterion (the criterion's human-human QWK), not over the accepted ones. Looser: accepted
         items are the easy ones, on which humans also agree more, so the default compares on the same items;
  3. among those, pick the rule auto-accepting the most items (ties: the higher bound).
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
from scoring.policy import CriterionPolicy, RoutingPolicy
from scoring.routing import confidence_of

# ----------------------------------------------------------------------------------- agreement


def qwk_values(a: np.ndarray, b: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray | float:
    """Quadratic weighted kappa of two integer score vectors, optionally over many resamples at once.

    Uses the closed form 1 - sum (a-b)^2 / (n [(mean a - mean b)^2 + var a + var b]), identical to
    ``cohen_kappa_score(weights="quadratic")`` with the full integer range as labels; ``idx`` (B, n)
    holds resampled row indices and gives B kappas in one vectorised pass (fast bootstraps).
    """
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if idx is None:
        idx = np.arange(len(a))[None, :]
        single = True
    else:
        single = False
    A, B = a[idx], b[idx]
    n = A.shape[1]
    num = ((A - B) ** 2).sum(axis=1)
    den = n * ((A.mean(axis=1) - B.mean(axis=1)) ** 2 + A.var(axis=1) + B.var(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(den > 0, 1.0 - num / np.where(den > 0, den, 1.0), np.nan)
    return float(k[0]) if single else k


def qwk_lower_bound(
    machine: np.ndarray,
    human: np.ndarray,
    pair: tuple[np.ndarray, np.ndarray] | None,
    n_boot: int,
    alpha: float,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Bootstrap lower bound of machine-human QWK, and of its margin over human-human QWK when paired."""
    n = len(machine)
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


def choose_thresholds(
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
    """Pick (confidence measure, min confidence, max set size) maximising the auto-accepted share.

    ``P`` are calibrated probabilities of calibration items (cross-fitted), ``y`` their human scores,
    ``scores`` the machine scores, ``sets`` boolean conformal sets. ``human_pair`` (two raters, NaN where
    missing) or ``human_qwk`` sets the bar; one of them is required.
    """
    if human_pair is None and human_qwk is None:
        raise CalibrationDataError("expected a second rater (--second-score-col) or a figure (--human-qwk), found neither")
    n = len(y)
    min_auto = min_auto if min_auto is not None else max(30, int(0.05 * n))
    if n < min_auto:
        raise CalibrationDataError(f"need at least {min_auto} scored calibration items, found {n}")
    rng = np.random.default_rng(seed)
    pair_ok = None
    if human_pair is not None:
        r1, r2 = (np.asarray(v, float) for v in human_pair)
        pair_ok = ~(np.isnan(r1) | np.isnan(r2))
    K = len(classes)
    tolerances = [0, 1] + ([2] if K > 15 else [])
    size_opts: list[int | None] = [None]
    in_set = np.ones(n, bool)
    if sets is not None:
        sizes = sets.sum(axis=1)
        in_set = sets[np.arange(n), np.searchsorted(np.asarray(classes), scores)]  # routing sends the rest to humans
        size_opts += sorted({int(v) for v in np.quantile(sizes, [0.1, 0.25, 0.5, 0.75, 0.9])})
    else:
        sizes = None
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
                    auto_eval = auto
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
        "bar": ("paired: LCB(QWK machine-human - QWK rater1-rater2) >= 0 on the same items"
                if human_pair is not None else f"LCB(QWK machine-human) >= human_qwk {human_qwk}"),
        "human_qwk_on_auto_cal": row["target"] if human_pair is not None else None,
        "margin_lcb": row.get("margin_lcb"),
        "bootstrap": {"n_boot": n_boot, "one_sided_alpha": alpha, "seed": seed},
        "candidates_tried": tried,
        "candidates_feasible": feasible,
    }
    return ThresholdChoice(cp, tried, feasible, table)


def _shortfall(row: dict[str, Any]) -> float:
    """A candidate's bound minus the bar (>= 0: feasible): the paired margin LCB, else QWK LCB - target."""
    return float(row["margin_lcb"] if "margin_lcb" in row else row["qwk_lcb"] - row["target"])


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


@dataclass
class CalibrationResult:
    model: ScoringModel
    policy: RoutingPolicy
    report: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]


def base_scorer(scorer: Any) -> Any:
    """The uncalibrated scorer (re-calibrating a calibrated model starts from its base)."""
    return scorer.base if isinstance(scorer, CalibratedScorer) else scorer


def cross_fitted_probabilities(model: ScoringModel, criterion_id: str, evidences: list[dict[str, str]]) -> np.ndarray:
    """Raw level probabilities of TRAINING submissions from models that never saw them (NaN rows: not found).

    Why: an issuer's human scores are scarce; rather than keep a fifth of them away from training to
    calibrate on, the trained scorer keeps, for every training text, probabilities made without that
    text (``EnsembleScorer.cross_fitted_proba``), and calibration, conformal sets and thresholds are fitted
    on those. Rows are matched by a hash of the criterion's evidence text; a row whose text the model did
    not train on gets NaN (the caller decides whether that is an error).
    """
    crit = model.rubric.criterion(criterion_id)
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
    for j, ev in enumerate(evidences):
        h = text_hash(criterion_text(model.rubric, crit, ev))
        rows = where.get(h)
        if rows:  # duplicates of one text: walk through its training rows, then reuse the last
            out[j] = P[rows[min(used.get(h, 0), len(rows) - 1)]]
            used[h] = used.get(h, 0) + 1
    return out


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
    n_boot: int = 400,
    alpha: float = 0.05,
    seed: int = 13,
    bar: str = "same-items",
) -> CalibrationResult:
    """Calibrated copy of ``model`` (new, unsaved version) and the tuned policy for it.

    Criteria absent from ``data`` keep their scorer and get no thresholds (always human).
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
        if d.second is not None and np.isfinite(np.asarray(d.second, float)).sum() >= 2:
            pair = (np.asarray(d.first if d.first is not None else d.y, float), np.asarray(d.second, float))
        human_qwk, bar_kind = d.human_qwk, (bar if pair is not None else "given human_qwk")
        if pair is not None and bar == "criterion":
            both = np.isfinite(pair[0]) & np.isfinite(pair[1])
            human_qwk, pair = round(float(qwk_values(pair[0][both], pair[1][both])), 4), None
        choice = choose_thresholds(P, np.asarray(d.y), scores, c.scores, sets, human_pair=pair,
                                   human_qwk=human_qwk, n_boot=n_boot, alpha=alpha, seed=seed)
        choice.policy.evidence["bar_kind"] = bar_kind
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
