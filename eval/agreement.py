"""Agreement between raters: human-human and human-machine, per criterion, model, rubric version and time.

Metrics follow the ETS / RSMTool definitions so that numbers here can be compared with the literature:

- QWK and Cohen's kappa: scikit-learn's ``cohen_kappa_score`` over the criterion's full declared scale
  (so quadratic weights are distances between positions on the declared scale, not between the labels that
  happen to occur; sklearn weighs by position, which equals the distance between score values only on an
  evenly spaced scale).
- exact / adjacent agreement: share of pairs with ``|a - b| == 0`` / ``<= 1``.
- Pearson r; Krippendorff's alpha (ordinal, ``krippendorff`` package).
- SMD (pooled): ``(mean(machine) - mean(human)) / sqrt((var_h + var_m) / 2)``, ddof=1 (the gates' SMD, and
  RSMTool's human-human SMD); ``smd_unpooled``: ``(mean(machine) - mean(human)) / sd(human)``, RSMTool's
  human-system SMD (``method='unpooled'``).
- RMSE and R2 of the machine as a predictor of the human score (scikit-learn ``mean_squared_error`` and
  ``r2_score``, as RSMTool computes them).
- DSM per subgroup (RSMTool ``difference_of_standardized_means``): z-standardise both score columns with the
  *population* mean and SD (ddof=1), then ``mean_z(machine | group) - mean_z(human | group)``.
- PRMSE (RSMTool ``prmse_true``): proportional reduction in MSE when predicting the true score, using the
  rater error variance estimated from double-scored responses. Computed over the items that hold a first
  and/or second rater's score (single-scored ones included, as RSMTool does); items whose only human score
  is a blind audit of an auto-accepted score are left out (a different, machine-selected population).
- Fairness (RSMTool's fairness section, Loukina, Madnani & Zechner 2019): share of variance (adjusted R2,
  statsmodels OLS) in squared error (overall score accuracy), in signed error (overall score difference)
  and in signed error given the human score (conditional score difference) explained by subgroup.
- ECE: expected calibration error of the top-label confidence of the machine probabilities (equal-width bins).

Bootstrap confidence intervals are percentile intervals over resampled items, seeded.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import krippendorff
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import pearsonr
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import cohen_kappa_score, mean_squared_error, r2_score

from scoring.store import Store

# ------------------------------------------------------------------------------------- single metrics


def _kappa(a: npt.ArrayLike, b: npt.ArrayLike, labels: Sequence[int] | None, weights: str | None) -> float:
    """scikit-learn's kappa, NaN where it is undefined (one score level only) without a warning on the user's
    terminal: the tables print NaN for such cells, and the warning named none of the report's terms."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(a, b, labels=list(labels) if labels is not None else None, weights=weights))


def qwk(a: npt.ArrayLike, b: npt.ArrayLike, labels: Sequence[int] | None = None) -> float:
    """Quadratic weighted kappa (scikit-learn), over ``labels`` (the full scale) when given."""
    return _kappa(a, b, labels, "quadratic")


def qwk_indices(a_idx: np.ndarray, b_idx: np.ndarray, n_labels: int) -> float:
    """QWK from integer label indices via a confusion matrix: the fast path used inside the bootstrap.

    Equal to ``cohen_kappa_score(weights="quadratic", labels=scale)`` when the scale is equally spaced
    (checked in the tests)."""
    k = n_labels
    o = np.bincount(a_idx * k + b_idx, minlength=k * k).reshape(k, k).astype(float)
    n = o.sum()
    e = np.outer(o.sum(axis=1), o.sum(axis=0)) / n
    i = np.arange(k)
    w = (i[:, None] - i[None, :]) ** 2
    den = (w * e).sum()
    return float("nan") if den == 0 else float(1.0 - (w * o).sum() / den)


def smd(human: npt.ArrayLike, machine: npt.ArrayLike) -> float:
    """Standardised mean difference with the pooled SD (RSMTool ``method='pooled'``, ddof=1)."""
    h, m = np.asarray(human, float), np.asarray(machine, float)
    den = np.sqrt((h.var(ddof=1) + m.var(ddof=1)) / 2)
    return float("nan") if den == 0 else float((m.mean() - h.mean()) / den)


def smd_unpooled(human: npt.ArrayLike, machine: npt.ArrayLike) -> float:
    """RSMTool's human-system SMD (``method='unpooled'``): the mean difference over the human SD (ddof=1)."""
    h, m = np.asarray(human, float), np.asarray(machine, float)
    den = h.std(ddof=1)
    return float("nan") if den == 0 else float((m.mean() - h.mean()) / den)


def rmse(human: npt.ArrayLike, machine: npt.ArrayLike) -> float:
    """Root mean squared error of the machine as a predictor of the human score (scikit-learn)."""
    return float(np.sqrt(mean_squared_error(np.asarray(human, float), np.asarray(machine, float))))


def r2(human: npt.ArrayLike, machine: npt.ArrayLike) -> float:
    """Proportional reduction in MSE for the observed human score (scikit-learn ``r2_score``); NaN under 2 items."""
    h = np.asarray(human, float)
    return float("nan") if len(h) < 2 else float(r2_score(h, np.asarray(machine, float)))


def dsm(
    human_group: npt.ArrayLike,
    machine_group: npt.ArrayLike,
    pop_human_mean: float,
    pop_machine_mean: float,
    pop_human_sd: float,
    pop_machine_sd: float,
) -> float:
    """Difference of standardised means for one subgroup, against population means and SDs."""
    if pop_human_sd == 0 or pop_machine_sd == 0:
        return float("nan")
    zm = (np.mean(np.asarray(machine_group, float)) - pop_machine_mean) / pop_machine_sd
    zh = (np.mean(np.asarray(human_group, float)) - pop_human_mean) / pop_human_sd
    return float(zm - zh)


def _n_scores(human: np.ndarray) -> np.ndarray:
    return (~np.isnan(human)).sum(axis=1)


def variance_of_errors(human: np.ndarray) -> float | None:
    """Rater error variance: per-response variance of its human scores (ddof=1), averaged over responses
    with 2+ scores weighted by (number of scores - 1). None without any double-scored response."""
    human = np.atleast_2d(np.asarray(human, float))
    n = _n_scores(human)
    multi = n > 1
    if not multi.any():
        return None
    return float(np.average(np.nanvar(human[multi], ddof=1, axis=1), weights=n[multi] - 1))


def true_score_variance(human: np.ndarray, var_err: float | None = None) -> float | None:
    human = np.asarray(human, float)
    var_err = variance_of_errors(human) if var_err is None else var_err
    if var_err is None:
        return None
    n = _n_scores(human)
    means = np.nanmean(human, axis=1)
    grand = np.nanmean(human)
    total = n.sum()
    num = (n * (means - grand) ** 2).sum() - (len(human) - 1) * var_err
    den = total - (n**2).sum() / total
    if den <= 0:  # a single response: no between-response variance to estimate
        return None
    return float(num / den)


def mse_true(system: npt.ArrayLike, human: np.ndarray, var_err: float | None = None) -> float | None:
    human = np.asarray(human, float)
    var_err = variance_of_errors(human) if var_err is None else var_err
    if var_err is None:
        return None
    n = _n_scores(human)
    se = ((np.nanmean(human, axis=1) - np.asarray(system, float)) ** 2) * n
    return float((se.sum() - len(human) * var_err) / n.sum())


def prmse_true(system: npt.ArrayLike, human: np.ndarray, var_err: float | None = None) -> float | None:
    """PRMSE of the system score against the true score (RSMTool ``prmse_true``); None when no response is
    double-scored and no error variance is supplied."""
    human = np.asarray(human, float)
    if human.ndim == 1:
        human = human[:, None]
    var_err = variance_of_errors(human) if var_err is None else var_err
    if var_err is None:
        return None
    vt = true_score_variance(human, var_err)
    m = mse_true(system, human, var_err)
    if vt is None or m is None or vt == 0:
        return None
    return float(1 - m / vt)


PRMSE_MIN_DOUBLE = 10  # double-scored items below which the rater error variance is not worth a PRMSE


def prmse_items(h1: npt.ArrayLike, h2: npt.ArrayLike, machine: npt.ArrayLike) -> dict[str, Any]:
    """PRMSE over the items holding at least one of the two rater scores (NaN = no score).

    Returns ``prmse`` (None where it is undefined), ``prmse_note`` (why it is, else None), ``prmse_n`` (items
    used) and ``prmse_n_double``. Items with neither score (e.g. only a blind audit score) are left out rather
    than turning the whole estimate into NaN. The value is RSMTool's ``prmse_true``; it is withheld where that
    formula has nothing to say: with fewer than ``PRMSE_MIN_DOUBLE`` double-scored items (the rater error
    variance rests on a handful of pairs: 4 gave -29.3), or where the estimated true-score variance is not
    positive (the raters disagree as much as the items differ, so there is no true-score variance to reduce)."""
    two = np.column_stack([np.asarray(h1, float), np.asarray(h2, float)])
    mac = np.asarray(machine, float)
    keep = ~np.isnan(two).all(axis=1)
    two, mac = two[keep], mac[keep]
    n_double = int((~np.isnan(two)).all(axis=1).sum())
    note = _prmse_undefined(two, n_double)
    value = prmse_true(mac, two) if note is None else None
    return {"prmse": value, "prmse_note": note, "prmse_n": int(keep.sum()), "prmse_n_double": n_double}


def _prmse_undefined(human: np.ndarray, n_double: int) -> str | None:
    """Why PRMSE is undefined on these rater scores (None when it is defined), in the report's words."""
    if not n_double:
        return "no double-scored item"
    if n_double < PRMSE_MIN_DOUBLE:
        return f"only {n_double} double-scored item(s), fewer than {PRMSE_MIN_DOUBLE}"
    vt = true_score_variance(human)
    if vt is None or vt <= 0:
        shown = "undefined" if vt is None else f"{vt:.3g}"
        return f"true-score variance estimate {shown} is not positive: the raters disagree as much as the items differ"
    return None


def _resample_indices(n: int, n_boot: int, seed: int) -> np.ndarray | None:
    """``n_boot`` rows of ``n`` item indices drawn with replacement, or None when no interval can be drawn.

    Shared by the bootstrap intervals so that the same seed resamples the same items for every statistic."""
    if n < 2 or n_boot <= 0:
        return None
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


def _percentile_ci(vals: np.ndarray, level: float) -> tuple[float, float] | None:
    v = vals[np.isfinite(vals)]
    if not len(v):
        return None
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return float(np.percentile(v, lo)), float(np.percentile(v, hi))


def bootstrap_prediction_ci(
    human: npt.ArrayLike,
    machine: npt.ArrayLike,
    h1: npt.ArrayLike | None = None,
    h2: npt.ArrayLike | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 13,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals (items resampled) for RMSE, R2 and, given both rater columns, PRMSE."""
    h, m = np.asarray(human, float), np.asarray(machine, float)
    idx = _resample_indices(len(h), n_boot, seed)
    if idx is None:
        return {}
    err = (m[idx] - h[idx]) ** 2
    mse = err.mean(axis=1)
    var = h[idx].var(axis=1)
    r2s = np.full(len(var), np.nan)  # undefined where a resample's human scores do not vary
    r2s[var > 0] = 1 - mse[var > 0] / var[var > 0]
    out: dict[str, tuple[float, float]] = {}
    for name, vals in (("rmse", np.sqrt(mse)), ("r2", r2s)):
        ci = _percentile_ci(vals, level)
        if ci:
            out[name] = ci
    if h1 is not None and h2 is not None:
        a, b = np.asarray(h1, float), np.asarray(h2, float)
        pr = []
        for ix in idx:
            v = prmse_items(a[ix], b[ix], m[ix])["prmse"]
            pr.append(np.nan if v is None else v)
        ci = _percentile_ci(np.array(pr, float), level)
        if ci:
            out["prmse"] = ci
    return out


def expected_calibration_error(
    probs: np.ndarray, truth_idx: np.ndarray, n_bins: int = 10
) -> tuple[float, pd.DataFrame]:
    """Top-label ECE: bin items by the probability of the predicted (argmax) level; ECE is the item-weighted
    mean of ``|accuracy - confidence|`` over bins. Returns the ECE and the per-bin table (for reliability plots)."""
    probs = np.asarray(probs, float)
    conf = probs.max(axis=1)
    pred = probs.argmax(axis=1)
    correct = (pred == np.asarray(truth_idx)).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    b = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    ece = 0.0
    for i in range(n_bins):
        mask = b == i
        if not mask.any():
            continue
        acc, cf = correct[mask].mean(), conf[mask].mean()
        ece += mask.mean() * abs(acc - cf)
        rows.append({"bin": i, "lower": edges[i], "upper": edges[i + 1], "n": int(mask.sum()),
                     "confidence": float(cf), "accuracy": float(acc)})
    return float(ece), pd.DataFrame(rows, columns=["bin", "lower", "upper", "n", "confidence", "accuracy"])


def krippendorff_alpha_ordinal(a: npt.ArrayLike, b: npt.ArrayLike, labels: Sequence[int]) -> float:
    data = np.vstack([np.asarray(a, float), np.asarray(b, float)])
    if len(set(np.concatenate([data[0], data[1]]).tolist())) < 2:
        return float("nan")
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                                    value_domain=list(labels)))


def agreement_metrics(reference: npt.ArrayLike, other: npt.ArrayLike, labels: Sequence[int]) -> dict[str, float]:
    """All pairwise metrics of ``other`` (second rater or machine) against ``reference`` (first rater)."""
    r, o = np.asarray(reference, int), np.asarray(other, int)
    n = len(r)
    out: dict[str, float] = {"n": n}
    if n == 0:
        return out
    diff = np.abs(r - o)
    out.update(
        mean_ref=float(r.mean()), mean_other=float(o.mean()),
        sd_ref=float(r.std(ddof=1)) if n > 1 else float("nan"),
        sd_other=float(o.std(ddof=1)) if n > 1 else float("nan"),
        exact=float((diff == 0).mean()), adjacent=float((diff <= 1).mean()),
    )
    if n > 1:
        out["qwk"] = qwk(r, o, labels)
        out["kappa"] = _kappa(r, o, labels, None)
        out["pearson_r"] = float(pearsonr(r, o)[0]) if r.std() > 0 and o.std() > 0 else float("nan")
        out["alpha_ordinal"] = krippendorff_alpha_ordinal(r, o, labels)
        out["smd"] = smd(r, o)
    return out


def bootstrap_ci(
    reference: npt.ArrayLike,
    other: npt.ArrayLike,
    labels: Sequence[int],
    *,
    n_boot: int = 1000,
    seed: int = 13,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals (items resampled with replacement) for QWK, exact, adjacent and SMD."""
    r, o = np.asarray(reference, int), np.asarray(other, int)
    idx = _resample_indices(len(r), n_boot, seed)
    if idx is None:
        return {}
    pos = {v: i for i, v in enumerate(labels)}
    ri, oi = np.array([pos[x] for x in r]), np.array([pos[x] for x in o])
    q = np.array([qwk_indices(ri[ix], oi[ix], len(labels)) for ix in idx])
    d = np.abs(r[idx] - o[idx])
    rs, os_ = r[idx].astype(float), o[idx].astype(float)
    den = np.sqrt((rs.var(axis=1, ddof=1) + os_.var(axis=1, ddof=1)) / 2)
    s = np.full(len(den), np.nan)  # undefined where neither rater's scores vary in a resample
    s[den > 0] = (os_.mean(axis=1) - rs.mean(axis=1))[den > 0] / den[den > 0]
    out: dict[str, tuple[float, float]] = {}
    for name, vals in (("qwk", q), ("exact", (d == 0).mean(axis=1)), ("adjacent", (d <= 1).mean(axis=1)),
                       ("smd", s)):
        ci = _percentile_ci(vals, level)
        if ci:
            out[name] = ci
    return out


# ------------------------------------------------------------------------------- tables from the store


def blind_reference(scores: Sequence[Any]) -> Any | None:
    """The human score the machine is compared with, from one submission x criterion's human scores in
    recording order: the blind first rater's, else the blind second rater's, else the latest blind audit
    score; None when no person scored it without seeing the machine's score.

    Why blind only: a rating given with the machine's level in view (a first rater on a ``human``-route
    item, where the assessor page shows it and offers to accept it) is anchored on it, and counting it would
    let the machine agree with itself. A second rater never sees the machine's or the first rater's score
    (second slots are always blind), so where the first rating is missing or not blind, the second is an
    independent reference. The agreement tables and the decision agreement both use this one rule."""
    blind = [h for h in scores if h.blind]
    return (next((h for h in blind if h.kind == "first"), None) or next((h for h in blind if h.kind == "second"), None)
            or next((h for h in reversed(blind) if h.kind == "audit"), None))


@dataclass(frozen=True)
class ScoreFrames:
    """What the store holds, flattened for analysis.

    ``humans``: one row per submission x criterion with ``h1`` (first rater; ``h1_blind`` says whether they
    scored without seeing the machine's or another rater's score), ``h2`` (second rater; ``h2_blind`` likewise),
    ``audit`` (latest
    blind audit score) and their times and assessors. ``machines``: one row per submission x criterion x
    model version (the latest machine score of that model) joined with the human columns, with ``human``,
    the machine's reference (:func:`blind_reference`) and ``h1_not_blind`` (a first rating left out of that
    reference). Both carry ``meta`` (the submission metadata dict) and ``labels``
    (the criterion's scale)."""

    humans: pd.DataFrame
    machines: pd.DataFrame


def load_frames(
    store: Store,
    *,
    rubric_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ScoreFrames:
    """The store's scores as :class:`ScoreFrames`; ``since`` (inclusive) and ``until`` (exclusive) select
    *pairs*, not single scores.

    A human-machine row is in the window when its machine score was recorded there; a human row when its
    second rater's score was (its latest first-rater or audit score when it has no second): the same times
    the ``--window`` periods use. The other score of a pair counts whenever it was recorded, because
    filtering each score by its own time silently drops every pair whose partner falls outside the window
    (an item machine-scored in March and audited in April would vanish from a March report, and from an
    April one).

    A machine score counts only while it stands: the latest per submission, criterion and model version is
    taken over ALL time first, then windowed. A row a later one of the same model superseded (a re-route by
    ``scoring policy apply``, a re-score) is in no window, so each item counts in exactly one window and a
    windowed report equals its row of the over-time table."""
    subs = {s.id: s for s in store.submissions(rubric_id)}
    hs = store.human_scores(rubric_id=rubric_id)  # every human score: a pair's partner may lie outside the window
    ms = store.machine_scores(rubric_id=rubric_id)  # windowed below, once superseded rows are gone
    scales: dict[tuple[str, int, str], list[int]] = {}

    def scale(rid: str, ver: int, crit: str) -> list[int]:
        key = (rid, ver, crit)
        if key not in scales:
            scales[key] = store.rubric(rid, ver).criterion(crit).scores
        return scales[key]

    hum: dict[tuple[int, str], dict[str, Any]] = {}
    scored: dict[tuple[int, str], list[Any]] = {}
    for h in hs:  # in recording order
        scored.setdefault((h.submission_id, h.criterion), []).append(h)
        s = subs[h.submission_id]
        row = hum.setdefault((h.submission_id, h.criterion), {
            "submission_id": h.submission_id, "external_id": s.external_id, "rubric_id": s.rubric_id,
            "rubric_version": s.rubric_version, "criterion": h.criterion, "meta": s.metadata,
            "h1": None, "h1_assessor": None, "h1_at": None, "h1_blind": None, "h2": None, "h2_assessor": None, "h2_at": None,
            "h2_blind": None, "audit": None, "audit_assessor": None, "audit_at": None,
        })
        if h.kind == "first" and row["h1"] is None:
            row.update(h1=h.score, h1_assessor=h.assessor, h1_at=h.created_at, h1_blind=bool(h.blind))
        elif h.kind == "second" and row["h2"] is None:
            row.update(h2=h.score, h2_assessor=h.assessor, h2_at=h.created_at, h2_blind=bool(h.blind))
        elif h.kind == "audit" and h.blind:
            row.update(audit=h.score, audit_assessor=h.assessor, audit_at=h.created_at)
    hcols = ["submission_id", "external_id", "rubric_id", "rubric_version", "criterion", "meta", "h1", "h1_assessor",
             "h1_at", "h1_blind", "h2", "h2_assessor", "h2_at", "h2_blind", "audit", "audit_assessor", "audit_at"]
    humans = pd.DataFrame(list(hum.values()), columns=hcols)
    if len(humans):
        humans["labels"] = [scale(r, v, c) for r, v, c in
                            zip(humans.rubric_id, humans.rubric_version, humans.criterion, strict=True)]
    else:
        humans["labels"] = pd.Series(dtype=object)

    mach: dict[tuple[int, str, str | None], dict[str, Any]] = {}
    for m in ms:
        s = subs[m.submission_id]
        mach[(m.submission_id, m.criterion, m.model_version)] = {
            "submission_id": m.submission_id, "external_id": s.external_id, "rubric_id": m.rubric_id,
            "rubric_version": m.rubric_version, "criterion": m.criterion, "model_version": m.model_version or "",
            "machine": m.score, "probabilities": m.probabilities, "route": m.route, "machine_at": m.created_at,
            "meta": s.metadata,
        }
    mcols = ["submission_id", "external_id", "rubric_id", "rubric_version", "criterion", "model_version", "machine",
             "probabilities", "route", "machine_at", "meta"]
    machines = pd.DataFrame(list(mach.values()), columns=mcols)
    if len(machines) and (since is not None or until is not None):
        machines = machines[_in_window(pd.to_datetime(machines["machine_at"], utc=True), since, until)]
        machines = machines.reset_index(drop=True)
    hsub = humans.drop(columns=["external_id", "rubric_id", "rubric_version", "meta", "labels"], errors="ignore")
    machines = machines.merge(hsub, on=["submission_id", "criterion"], how="left")
    if len(machines):
        machines["labels"] = [scale(r, v, c) for r, v, c in
                              zip(machines.rubric_id, machines.rubric_version, machines.criterion, strict=True)]
        # The human reference (blind_reference): a first rater who saw the machine's suggestion is anchored
        # on it; counting those scores would let the gates pass on agreement the machine itself induced.
        ref = {k: r.score for k, v in scored.items() if (r := blind_reference(v)) is not None}
        machines["human"] = pd.Series([ref.get(k, np.nan) for k in zip(machines.submission_id, machines.criterion,
                                                                         strict=True)],
                                      index=machines.index, dtype=float)
        machines["h1_not_blind"] = machines["h1"].notna() & ~machines["h1_blind"].fillna(False).astype(bool)
    else:
        machines["labels"] = pd.Series(dtype=object)
        machines["human"] = pd.Series(dtype=float)
        machines["h1_not_blind"] = pd.Series(dtype=bool)
    if len(humans) and (since is not None or until is not None):
        humans = humans[_in_window(_human_pair_time(humans), since, until)].reset_index(drop=True)
    return ScoreFrames(humans=humans, machines=machines)


def _utc(t: datetime) -> pd.Timestamp:
    """A bound as a UTC timestamp; a naive one is read as UTC (as the CLI reads ``--since 2026-03-01``)."""
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _human_pair_time(humans: pd.DataFrame) -> pd.Series:
    """When a human row's pair was completed: its second rater's score, else its latest first-rater or
    audit score (the time ``human_human_table`` windows by)."""
    h2 = pd.to_datetime(humans["h2_at"], utc=True)
    other = pd.concat([pd.to_datetime(humans["h1_at"], utc=True), pd.to_datetime(humans["audit_at"], utc=True)],
                      axis=1).max(axis=1)
    return h2.where(h2.notna(), other)


def _in_window(ts: pd.Series, since: datetime | None, until: datetime | None) -> pd.Series:
    keep = ts.notna()
    if since is not None:
        keep &= ts >= _utc(since)
    if until is not None:
        keep &= ts < _utc(until)
    return keep


def _window(ts: pd.Series, freq: str | None) -> pd.Series:
    if not freq:
        return pd.Series(["all"] * len(ts), index=ts.index)
    t = pd.to_datetime(ts, utc=True).dt.tz_localize(None)
    return t.dt.to_period(freq).astype(str)


def _with_ci(row: dict[str, Any], ci: dict[str, tuple[float, float]]) -> dict[str, Any]:
    for k, (lo, hi) in ci.items():
        row[f"{k}_lo"], row[f"{k}_hi"] = lo, hi
    return row


def human_human_pairs(humans: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The double-scored rows of ``humans`` split into (pairs where both raters scored blind, pairs where at
    least one did not).

    Why: human-human agreement is the bar the machine is held to (the gates' degradation check, the drift
    monitor, the report's human-human figures). A rater who saw the other's score (historical data imported
    with ``--not-blind``) or the machine's (a ``human``-route first rating) agrees more than an independent one
    would, so such a pair would inflate that bar; it is left out and counted instead."""
    if humans.empty:
        return humans, humans
    h = humans[humans["h1"].notna() & humans["h2"].notna()]
    both = h["h1_blind"].fillna(False).astype(bool) & h["h2_blind"].fillna(False).astype(bool)
    return h[both].copy(), h[~both].copy()


def human_human_table(frames: ScoreFrames, *, window: str | None = None, n_boot: int = 0,
                      seed: int = 13) -> pd.DataFrame:
    """First vs second rater, per rubric, rubric version, criterion (and time window of the second score), on
    the pairs where both scored blind (:func:`human_human_pairs`); ``n_not_blind`` counts the pairs left out.
    A group holding only such pairs keeps a row with ``n`` 0 and no metrics, so that the exclusion is shown
    rather than the criterion silently missing."""
    keys = ["rubric_id", "rubric_version", "criterion", "window"]
    blind, seen = human_human_pairs(frames.humans)
    if blind.empty and seen.empty:
        return pd.DataFrame()
    for part in (blind, seen):
        part["window"] = _window(part["h2_at"], window)
    left_out = seen.groupby(keys).size().to_dict() if len(seen) else {}
    groups = dict(list(blind.groupby(keys, sort=True))) if len(blind) else {}
    rows = []
    for key in sorted(set(groups) | set(left_out)):
        rid, ver, crit, win = key
        row: dict[str, Any] = {"rubric_id": rid, "rubric_version": int(ver), "criterion": crit, "window": win}
        g = groups.get(key)
        if g is None:
            row["n"] = 0
        else:
            labels = g["labels"].iloc[0]
            a, b = g["h1"].astype(int).to_numpy(), g["h2"].astype(int).to_numpy()
            row = _with_ci(row | agreement_metrics(a, b, labels), bootstrap_ci(a, b, labels, n_boot=n_boot, seed=seed))
        row["n_not_blind"] = int(left_out.get(key, 0))
        rows.append(row)
    return pd.DataFrame(rows)


def human_machine_table(frames: ScoreFrames, *, window: str | None = None, n_boot: int = 0, seed: int = 13,
                        n_bins: int = 10) -> pd.DataFrame:
    """Machine vs human reference per rubric, version, criterion, model version (and window), with PRMSE
    where double-scored items exist and ECE where probabilities were stored."""
    m = frames.machines
    keys = ["rubric_id", "rubric_version", "criterion", "model_version", "window"]
    left_out: dict[Any, int] = {}
    if len(m):  # items whose only human score came from a first rater who saw the machine's suggestion
        lo = m[m["human"].isna() & m["h1_not_blind"].astype(bool)].copy()
        lo["window"] = _window(lo["machine_at"], window)
        left_out = lo.groupby(keys).size().to_dict() if len(lo) else {}
    m = m[m["human"].notna()].copy() if len(m) else m
    if m.empty:
        return pd.DataFrame()
    m["window"] = _window(m["machine_at"], window)
    rows = []
    for key, g in m.groupby(keys, sort=True):
        labels = g["labels"].iloc[0]
        hum, mac = g["human"].astype(int).to_numpy(), g["machine"].astype(int).to_numpy()
        row = dict(zip(keys, key, strict=True)) | agreement_metrics(hum, mac, labels)
        row["rubric_version"] = int(row["rubric_version"])
        if len(hum) > 1:
            row.update(smd_unpooled=smd_unpooled(hum, mac), rmse=rmse(hum, mac), r2=r2(hum, mac))
        row["n_not_blind"] = int(left_out.get(key, 0))
        # PRMSE's rater scores: the same blind first ratings as the reference (an anchored one would pull the
        # estimated true score towards the machine), and blind second ratings only (one that saw the first
        # rater's score would shrink the rater error variance estimated from the pairs)
        h1 = g["h1"].where(~g["h1_not_blind"].astype(bool)).to_numpy(float)
        h2 = g["h2"].where(g["h2_blind"].fillna(False).astype(bool)).to_numpy(float)
        row.update(prmse_items(h1, h2, mac))
        row["ece"] = None
        probs = g["probabilities"]
        if probs.notna().all():
            p = np.array([[float(d.get(str(s), 0.0)) for s in labels] for d in probs])
            pos = {v: i for i, v in enumerate(labels)}
            row["ece"] = expected_calibration_error(p, np.array([pos[x] for x in hum]), n_bins)[0]
        row = _with_ci(row, bootstrap_ci(hum, mac, labels, n_boot=n_boot, seed=seed))
        rows.append(_with_ci(row, bootstrap_prediction_ci(hum, mac, h1 if row["prmse"] is not None else None, h2,
                                                          n_boot=n_boot, seed=seed)))
    return pd.DataFrame(rows)


ACCEPTED = ("auto", "audit")  # routes where the machine's score stands (scoring.routing.ACCEPTED_ROUTES)


def automation_table(frames: ScoreFrames, *, window: str | None = None) -> pd.DataFrame:
    """How much was automated, from the recorded route decisions of EVERY machine score (not only the
    human-scored ones), per rubric, version, criterion, model version and window of the machine score, with
    a criterion ``(all)`` row per rubric; and how the auto-accepted scores fared against blind audits.

    ``auto_fraction`` is the share whose machine score stands (routes auto and audit); ``qwk_audited`` and
    ``exact_audited`` compare those machine scores with the blind audit score of the same items.
    """
    m = frames.machines
    cols = ["rubric_id", "rubric_version", "criterion", "model_version", "window", "n", "n_accepted", "auto_fraction",
            "n_auto", "n_audit", "n_human", "n_double", "n_unrouted", "n_audited", "qwk_audited", "exact_audited"]
    if m.empty:
        return pd.DataFrame(columns=cols)
    m = m.copy()
    m["window"] = _window(m["machine_at"], window)
    m["route"] = m["route"].fillna("")
    keys = ["rubric_id", "rubric_version", "criterion", "model_version", "window"]

    def row(key: tuple[Any, ...], g: pd.DataFrame) -> dict[str, Any]:
        acc = g["route"].isin(ACCEPTED).to_numpy()
        audited = acc & g["audit"].notna().to_numpy()
        out = dict(zip(keys, key, strict=True))
        out["rubric_version"] = int(out["rubric_version"])
        a_h = g["audit"].to_numpy()[audited].astype(int)
        a_m = g["machine"].to_numpy()[audited].astype(int)
        labels = g["labels"].iloc[0]
        single = g["criterion"].nunique() == 1
        out.update(
            n=len(g), n_accepted=int(acc.sum()), auto_fraction=float(acc.mean()),
            n_auto=int((g["route"] == "auto").sum()), n_audit=int((g["route"] == "audit").sum()),
            n_human=int((g["route"] == "human").sum()), n_double=int((g["route"] == "double").sum()),
            n_unrouted=int((g["route"] == "").sum()), n_audited=int(audited.sum()),
            qwk_audited=qwk(a_h, a_m, labels) if single and audited.sum() > 1 else None,
            exact_audited=float((a_h == a_m).mean()) if audited.any() else None,
        )
        return out

    rows = [row(k, g) for k, g in m.groupby(keys, sort=True)]
    for (rid, ver, mv, win), g in m.groupby(["rubric_id", "rubric_version", "model_version", "window"], sort=True):
        if g["criterion"].nunique() > 1:
            rows.append(row((rid, ver, "(all)", mv, win), g))
    return pd.DataFrame(rows, columns=cols)


def _group_of(meta: Any, field: str) -> str:
    v = (meta or {}).get(field) if isinstance(meta, dict) else None
    return "(missing)" if v in (None, "") else str(v)


def _dsm_boot(groups: dict[str, tuple[np.ndarray, np.ndarray]], n_boot: int, seed: int,
              level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Stratified bootstrap of every group's DSM: items resampled within each group (group sizes kept), the
    population means and SDs recomputed from each resample, as the point estimate does."""
    if n_boot <= 0:
        return {}
    rng = np.random.default_rng(seed)
    names = list(groups)
    draws: dict[str, list[float]] = {g: [] for g in names}
    for _ in range(n_boot):
        res = {}
        for g in names:
            h, m = groups[g]
            ix = rng.integers(0, len(h), len(h))
            res[g] = (h[ix], m[ix])
        hh = np.concatenate([v[0] for v in res.values()])
        mm = np.concatenate([v[1] for v in res.values()])
        pop = (hh.mean(), mm.mean(), hh.std(ddof=1), mm.std(ddof=1))
        for g in names:
            draws[g].append(dsm(res[g][0], res[g][1], *pop))
    out = {}
    for g in names:
        ci = _percentile_ci(np.array(draws[g], float), level)
        if ci:
            out[g] = ci
    return out


def subgroup_table(frames: ScoreFrames, field: str, *, n_boot: int = 0, seed: int = 13) -> pd.DataFrame:
    """Per value of metadata ``field``, per rubric x criterion x model version: n, means and SDs, QWK, R2,
    RMSE and DSM (RSMTool ``eval_by_<group>``), with bootstrap intervals for DSM and QWK when ``n_boot``.

    DSM is None (not 0) where it cannot be computed (a population SD of 0): a missing value is not
    "no difference"."""
    m = frames.machines
    if m.empty:
        return pd.DataFrame()
    m = m[m["human"].notna()].copy()
    m["group"] = [_group_of(d, field) for d in m["meta"]]
    rows = []
    for (rid, ver, crit, mv), g in m.groupby(["rubric_id", "rubric_version", "criterion", "model_version"]):
        hum, mac = g["human"].astype(float), g["machine"].astype(float)
        pop = (hum.mean(), mac.mean(), hum.std(ddof=1), mac.std(ddof=1))
        labels = g["labels"].iloc[0]
        parts = {str(grp): (gg["human"].astype(float).to_numpy(), gg["machine"].astype(float).to_numpy())
                 for grp, gg in g.groupby("group")}
        dsm_ci = _dsm_boot(parts, n_boot, seed) if len(g) > 2 else {}
        for grp, (hh, mm) in parts.items():
            d = dsm(hh, mm, *pop) if len(g) > 1 else float("nan")
            row = {
                "rubric_id": rid, "rubric_version": int(ver), "criterion": crit, "model_version": mv,
                "field": field, "group": grp, "n": len(hh), "mean_human": float(hh.mean()),
                "mean_machine": float(mm.mean()),
                "sd_human": float(hh.std(ddof=1)) if len(hh) > 1 else float("nan"),
                "sd_machine": float(mm.std(ddof=1)) if len(mm) > 1 else float("nan"),
                "dsm": None if not np.isfinite(d) else d,
                "dsm_lo": dsm_ci.get(grp, (None, None))[0], "dsm_hi": dsm_ci.get(grp, (None, None))[1],
                "qwk": qwk(hh.astype(int), mm.astype(int), labels) if len(hh) > 1 else float("nan"),
                "r2": r2(hh, mm), "rmse": rmse(hh, mm),
            }
            if n_boot > 0 and len(hh) > 1:
                ci = bootstrap_ci(hh.astype(int), mm.astype(int), labels, n_boot=n_boot, seed=seed).get("qwk")
                row["qwk_lo"], row["qwk_hi"] = ci if ci else (None, None)
            rows.append(row)
    return pd.DataFrame(rows)


def subgroup_human_table(frames: ScoreFrames, field: str, *, n_boot: int = 0, seed: int = 13) -> pd.DataFrame:
    """First vs second rater per value of metadata ``field`` (RSMTool's human-human agreement by subgroup), on
    the pairs where both scored blind: n, QWK (with interval), exact agreement and the pooled SMD, per rubric x criterion."""
    h = human_human_pairs(frames.humans)[0]  # both raters blind, as in the human-human table
    if h.empty:
        return pd.DataFrame()
    h["group"] = [_group_of(d, field) for d in h["meta"]]
    rows = []
    for (rid, ver, crit, grp), g in h.groupby(["rubric_id", "rubric_version", "criterion", "group"], sort=True):
        labels = g["labels"].iloc[0]
        a, b = g["h1"].astype(int).to_numpy(), g["h2"].astype(int).to_numpy()
        met = agreement_metrics(a, b, labels)
        row = {"rubric_id": rid, "rubric_version": int(ver), "criterion": crit, "field": field, "group": grp,
               "n": len(a), "qwk": met.get("qwk"), "exact": met.get("exact"), "smd": met.get("smd")}
        rows.append(_with_ci(row, {k: v for k, v in bootstrap_ci(a, b, labels, n_boot=n_boot, seed=seed).items()
                                   if k in ("qwk", "exact")}))
    return pd.DataFrame(rows)


FAIRNESS_METRICS = {"osa": "overall score accuracy", "osd": "overall score difference",
                    "csd": "conditional score difference"}


def fairness_tables(frames: ScoreFrames, field: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """RSMTool's additional fairness analyses by ``field``, per rubric x criterion x model version.

    OLS fits (statsmodels) with the largest group as reference (ties alphabetical): squared error on group
    (``osa``), signed error machine - human on group (``osd``), and signed error on group + human score as a
    category, compared with the human-score-only model (``csd``: the difference in adjusted R2, p from the
    F test between the two). Returns the summary (adjusted R2 and p per analysis) and the per-group estimates
    with their 95% confidence intervals."""
    import warnings

    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    m = frames.machines
    summary_rows: list[dict[str, Any]] = []
    est_rows: list[dict[str, Any]] = []
    cols_s = ["rubric_id", "rubric_version", "criterion", "model_version", "field", "n", "n_groups", "base_group",
              "analysis", "metric", "r2_adj", "p_value"]
    cols_e = ["rubric_id", "rubric_version", "criterion", "model_version", "field", "analysis", "group", "n",
              "estimate", "estimate_lo", "estimate_hi", "p_value"]
    if m.empty:
        return pd.DataFrame(columns=cols_s), pd.DataFrame(columns=cols_e)
    m = m[m["human"].notna()].copy()
    m["group"] = [_group_of(d, field) for d in m["meta"]]
    for (rid, ver, crit, mv), g in m.groupby(["rubric_id", "rubric_version", "criterion", "model_version"]):
        counts = g["group"].value_counts()
        if len(counts) < 2 or len(g) < len(counts) + 2:
            continue
        order = sorted(counts.index, key=lambda x: (-counts[x], x))
        df = pd.DataFrame({"error": g["machine"].astype(float).to_numpy() - g["human"].astype(float).to_numpy(),
                           "group": pd.Categorical(g["group"], categories=order),
                           "sc1_cat": pd.Categorical(g["human"].astype(int).astype(str))})
        df["SE"] = df["error"] ** 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits = {"osa": smf.ols("SE ~ group", data=df).fit(), "osd": smf.ols("error ~ group", data=df).fit()}
            null = smf.ols("error ~ sc1_cat", data=df).fit()
            full = smf.ols("error ~ group + sc1_cat", data=df).fit()
            fits["csd"] = full
            stats = {"osa": (fits["osa"].rsquared_adj, fits["osa"].f_pvalue),
                     "osd": (fits["osd"].rsquared_adj, fits["osd"].f_pvalue),
                     "csd": (full.rsquared_adj - null.rsquared_adj, anova_lm(null, full).values[1][-1])}
        keys = {"rubric_id": rid, "rubric_version": int(ver), "criterion": crit, "model_version": mv, "field": field}
        for name, (r2v, pv) in stats.items():
            summary_rows.append({**keys, "n": len(g), "n_groups": len(order), "base_group": order[0],
                                 "analysis": name, "metric": FAIRNESS_METRICS[name], "r2_adj": float(r2v),
                                 "p_value": float(pv)})
            fit = fits[name]
            ci = fit.conf_int()
            for term in fit.params.index:
                if term != "Intercept" and not term.startswith("group["):
                    continue
                grp = order[0] if term == "Intercept" else term.split("T.", 1)[1].rstrip("]")
                est_rows.append({**keys, "analysis": name, "group": f"Intercept ({grp})" if term == "Intercept"
                                 else grp, "n": int(counts[grp]), "estimate": float(fit.params[term]),
                                 "estimate_lo": float(ci.loc[term, 0]), "estimate_hi": float(ci.loc[term, 1]),
                                 "p_value": float(fit.pvalues[term])})
    return pd.DataFrame(summary_rows, columns=cols_s), pd.DataFrame(est_rows, columns=cols_e)


def score_distribution_table(frames: ScoreFrames) -> pd.DataFrame:
    """Share of each score level given by the human reference and by the machine on the same items (RSMTool's
    score distribution table), per rubric x criterion x model version; every level of the scale is listed."""
    m = frames.machines
    cols = ["rubric_id", "rubric_version", "criterion", "model_version", "level", "n", "n_human", "pct_human",
            "n_machine", "pct_machine", "pct_difference"]
    if m.empty:
        return pd.DataFrame(columns=cols)
    m = m[m["human"].notna()]
    rows = []
    for (rid, ver, crit, mv), g in m.groupby(["rubric_id", "rubric_version", "criterion", "model_version"]):
        labels = g["labels"].iloc[0]
        hc = g["human"].astype(int).value_counts()
        mc = g["machine"].astype(int).value_counts()
        n = len(g)
        for lv in labels:
            a, b = int(hc.get(lv, 0)), int(mc.get(lv, 0))
            rows.append({"rubric_id": rid, "rubric_version": int(ver), "criterion": crit, "model_version": mv,
                         "level": lv, "n": n, "n_human": a, "pct_human": 100 * a / n, "n_machine": b,
                         "pct_machine": 100 * b / n, "pct_difference": 100 * (b - a) / n})
    return pd.DataFrame(rows, columns=cols)
