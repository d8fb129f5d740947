"""Routing benchmark on ASAP-AES (``scoring bench asap-aes --route``), called by ``eval.bench_asap``.

Per essay set, calibration data come from the TRAINING ids only, in one of two ways:
  * ``cross-fit`` (default): the model trains on all training ids, and each training essay's calibration
    probabilities are the cross-fitted ones the scorer kept (made by models that never saw that essay);
  * ``split``: 20% of the training ids are carved out (``set_result["cal"]``) and the model trains on the rest.
Then:
  1. ``scoring.optimise.calibrate_model`` fits calibrators + conformal sets and picks routing thresholds
     on the calibration data only, against rater 1 vs rater 2 agreement (``bar``: on the same items, or
     over all calibration items of the criterion), with Learn-then-Test error control at ``delta``
     (``selection="best"``: the earlier winner-picking optimiser, for comparison);
  2. the tuned policy routes the fold's TEST ids (reporting only; nothing is tuned on them), and we
     measure the auto-accepted share, QWK of accepted machine scores vs the resolved human score, QWK of
     rater 1 vs rater 2 on exactly those items, QWK of the machine vs rater 2 on them (the like-for-like
     comparison the bar makes, ``scoring.human_bar``), conformal coverage vs nominal, ECE before/after.
The bar compares the machine with rater 2 as rater 1 is compared with rater 2; on the sum scales (holistic of
sets 1, 7, 8) each rater's score is doubled onto the machine's scale (``rater_multiplier`` 2).
Headline means are over the sets' ``holistic`` criterion (like the bench's ``qwk_mean``); traits and
set 2's conventions are in ``route_per_criterion.csv``.

Honest notes on long scales (sets 1, 7, 8: resolved = rater 1 + rater 2, i.e. 2-12, 0-24, 0-60):
top-label ECE there is computed on the exact level, whose probability is small for every essay, so a
low ECE says little; the conformal sets stay valid (split conformal needs only exchangeability) but are
wide, so routing leans on the ``within`` confidence. ``adjacent`` figures are reported beside them.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eval.agreement import expected_calibration_error
from eval.asap import rater_multiplier
from models.calibration import ConformalSets, level_index
from scoring.optimise import CriterionCalibrationData, calibrate_model, cross_fitted_probabilities, qwk_values
from scoring.policy import save_policy
from scoring.prescore import criterion_probabilities
from scoring.routing import confidence_of, decide_routes

COVERAGE = 0.9
AUDIT_RATE = 0.1
DOUBLE_RATE = 0.05


def _num(a: Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(a), errors="coerce").to_numpy(float)


def _qwk(a: np.ndarray, b: np.ndarray) -> float:
    return float(qwk_values(a, b)) if len(a) >= 2 else float("nan")


def _half(x: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(x, float) / 2 + 0.5)


def _r(x: float, k: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), k)


def route_benchmark(set_results: list[dict[str, Any]], out_dir: Path, log: Any = print, bar: str = "same-items",
                    method: str = "auto", selection: str = "ltt", delta: float = 0.05) -> dict[str, Any]:
    """Calibrate + tune on each set's calibration data (never its test ids), route its test ids, and summarise."""
    out_dir = Path(out_dir)
    (out_dir / "policies").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    curves: dict[int, dict[str, Any]] = {}
    pooled: list[np.ndarray] = []  # holistic (conf before, conf after, correct before, correct after)
    for sr in set_results:
        s, model, cal, test = sr["set"], sr["model"], sr["cal"], sr["test"]
        if cal is None:  # cross-fitted: the training ids, each predicted by models that never saw it
            cal = sr["train"]
            evs = [{"essay": e} for e in cal.essay]
            P_cal = {c.id: cross_fitted_probabilities(model, c.id, evs) for c in model.rubric.criteria}
        else:
            P_cal = criterion_probabilities(model, [{"essay": e} for e in cal.essay])
        P_test = criterion_probabilities(model, [{"essay": e} for e in test.essay])
        data: dict[str, CriterionCalibrationData] = {}
        for c in model.rubric.criteria:
            cc = sr["criteria_columns"][sr["key_of"][c.id]]
            y = _num(cal[cc["target"]])
            ok = np.isfinite(y) & np.isfinite(P_cal[c.id]).all(axis=1)
            data[c.id] = CriterionCalibrationData(
                proba_raw=P_cal[c.id][ok], y=y[ok].astype(int), ids=[str(i) for i in cal.essay_id[ok]],
                first=_num(cal[cc["r1"]])[ok], second=_num(cal[cc["r2"]])[ok],
                rater_multiplier=rater_multiplier(s, sr["key_of"][c.id]),
            )
        res = calibrate_model(model, data, coverage=COVERAGE, audit_rate=AUDIT_RATE, double_rate=DOUBLE_RATE, bar=bar,
                              method=method, selection=selection, delta=delta)
        save_policy(res.policy, out_dir / "policies" / f"set{s}.yaml")
        for c in model.rubric.criteria:
            cc = sr["criteria_columns"][sr["key_of"][c.id]]
            y = _num(test[cc["target"]])
            r1, r2 = _num(test[cc["r1"]]), _num(test[cc["r2"]])
            ok = np.isfinite(y) & np.isfinite(r1) & np.isfinite(r2)
            ids = [str(i) for i in test.essay_id[ok]]
            y, r1, r2 = y[ok].astype(int), r1[ok], r2[ok]
            scorer: Any = res.model.scorers[c.id]  # a CalibratedScorer: its calibration layers are read here
            P_raw = P_test[c.id][ok]
            Q = scorer.calibrate(P_raw)
            scores = scorer.decide(Q)
            sets = scorer.prediction_set(Q, COVERAGE)
            cp = res.policy.criteria[c.id]
            dec = decide_routes(ids, c.id, Q, scores, c.scores, sets, res.policy)
            route = np.array([d.route for d in dec])
            accepted = np.isin(route, ["auto", "audit"])
            rule_auto = np.array([d.machine_rule == "auto" for d in dec])
            mult = rater_multiplier(s, sr["key_of"][c.id])
            halve = mult == 2
            yi = level_index(y, scorer.classes_)
            covered = sets[np.arange(len(yi)), yi]
            lab = ConformalSets("label").fit(scorer.cal_proba_, level_index(data[c.id].y, scorer.classes_))
            lab_cov = lab.predict_set(Q, COVERAGE)[np.arange(len(yi)), yi] if lab.mondrian_ == "label" else None
            per_level_cov = [covered[yi == k].mean() for k in range(len(c.scores)) if (yi == k).sum() >= 10]
            ece_b = expected_calibration_error(P_raw, yi)[0]
            ece_a = expected_calibration_error(Q, yi)[0]
            row = {
                "set": s,
                "criterion": c.id,
                "n_test": int(len(y)),
                "levels": len(c.scores),
                "calibration": scorer.report_["method"],
                "temperature": scorer.report_.get("temperature"),
                "policy": cp.describe(),
                "auto_fraction": _r(accepted.mean()),
                "auto_fraction_rule": _r(rule_auto.mean()),
                "auto_fraction_cal": cp.evidence.get("auto_fraction_cal", 0.0),
                "p_value_cal": cp.evidence.get("p_value"),
                "auto_qwk": _r(_qwk(scores[accepted], y[accepted])),
                "auto_exact": _r(np.mean(scores[accepted] == y[accepted])) if accepted.any() else None,
                "auto_adjacent": _r(np.mean(np.abs(scores[accepted] - y[accepted]) <= 1)) if accepted.any() else None,
                "human_qwk_auto_items": _r(_qwk(r1[accepted], r2[accepted])),
                # the bar's comparison: machine vs rater 2 (doubled on sum scales), as rater 1 vs rater 2
                "auto_qwk_vs_r2": _r(_qwk(scores[accepted], mult * r2[accepted])),
                # stricter: one machine score vs ONE rater (halved on sum-of-two-raters scales), like rater 2 vs 1
                "auto_qwk_vs_r1": _r(_qwk(_half(scores[accepted]) if halve else scores[accepted], r1[accepted])),
                "machine_qwk_all": _r(_qwk(scores, y)),
                "human_qwk": _r(_qwk(r1, r2)),
                "coverage": _r(covered.mean()),
                "coverage_nominal": COVERAGE,
                "coverage_label_conditional": _r(lab_cov.mean()) if lab_cov is not None else None,
                "coverage_worst_level": _r(min(per_level_cov)) if per_level_cov else None,
                "mean_set_size": _r(sets.sum(axis=1).mean(), 3),
                "ece_before": _r(ece_b),
                "ece_after": _r(ece_a),
            }
            rows.append(row)
            log(
                f"route set {s} {c.id:<12} auto {row['auto_fraction']:.3f} (cal {row['auto_fraction_cal']}) "
                f"QWK auto {row['auto_qwk']} vs human-human on them {row['human_qwk_auto_items']} | coverage "
                f"{row['coverage']} (nominal {COVERAGE}, set {row['mean_set_size']}) | ECE {row['ece_before']} -> "
                f"{row['ece_after']} [{row['calibration']}] | {row['policy']}"
            )
            if c.id == "holistic":
                pooled.append(np.column_stack([P_raw.max(axis=1), Q.max(axis=1), P_raw.argmax(axis=1) == yi,
                                                        Q.argmax(axis=1) == yi]))
                curves[s] = _curve(Q, scores, y, r1, r2, list(c.scores), sets, cp, accepted.mean(), halve)
    hol = [r for r in rows if r["criterion"] == "holistic"]

    def mean(key: str, rs: list[dict[str, Any]] = hol) -> float | None:
        v = [r[key] for r in rs if r[key] is not None]
        return round(float(np.mean(v)), 4) if v else None

    stack = np.vstack(pooled)
    summary: dict[str, Any] = {
        "route_bar": bar,
        "route_selection": selection,
        "route_delta": delta,
        "route_method": method,
        "route_calibration": "cross-fit" if set_results[0]["cal"] is None else "split",
        "route_coverage_nominal": COVERAGE,
        "auto_fraction": mean("auto_fraction"),
        "auto_fraction_rule": mean("auto_fraction_rule"),
        "auto_qwk_mean": mean("auto_qwk"),
        "human_qwk_auto_items": mean("human_qwk_auto_items"),
        "auto_qwk_vs_r1_mean": mean("auto_qwk_vs_r1"),
        "auto_qwk_vs_r2_mean": mean("auto_qwk_vs_r2"),
        "human_qwk_mean": mean("human_qwk"),
        "coverage": mean("coverage"),
        "coverage_nominal": COVERAGE,
        "coverage_label_conditional": mean("coverage_label_conditional"),
        "mean_set_size": mean("mean_set_size"),
        "ece_before": mean("ece_before"),
        "ece_after": mean("ece_after"),
        "ece_before_pooled": round(_ece_from(stack[:, 0], stack[:, 2]), 4),
        "ece_after_pooled": round(_ece_from(stack[:, 1], stack[:, 3]), 4),
        "route_sets_meeting_bar": int(sum(1 for r in hol if r["auto_qwk"] is not None and r["human_qwk_auto_items"]
                                          is not None and r["auto_qwk"] >= r["human_qwk_auto_items"])),
        "route_sets_meeting_bar_vs_r2": int(sum(1 for r in hol if r["auto_qwk_vs_r2"] is not None and
                                                r["human_qwk_auto_items"] is not None and
                                                r["auto_qwk_vs_r2"] >= r["human_qwk_auto_items"])),
    }
    others = [r for r in rows if r["criterion"] != "holistic"]
    if others:
        summary["trait_auto_fraction"] = mean("auto_fraction", others)
        summary["trait_auto_qwk_mean"] = mean("auto_qwk", others)
        summary["trait_human_qwk_auto_items"] = mean("human_qwk_auto_items", others)
        summary["trait_auto_qwk_vs_r2_mean"] = mean("auto_qwk_vs_r2", others)
        summary["trait_coverage"] = mean("coverage", others)
    with (out_dir / "route_per_criterion.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    summary["route_plot"] = str(_plot(curves, out_dir / "route_auto_vs_agreement.png"))
    return summary


def _ece_from(conf: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> float:
    b = np.clip(np.digitize(conf, np.linspace(0, 1, n_bins + 1)[1:-1], right=True), 0, n_bins - 1)
    return float(sum((b == i).mean() * abs(correct[b == i].mean() - conf[b == i].mean()) for i in range(n_bins) if (b == i).any()))


def _curve(Q: np.ndarray, scores: np.ndarray, y: np.ndarray, r1: np.ndarray, r2: np.ndarray, levels: list[int],
           sets: np.ndarray, cp: Any, chosen: float, halve: bool) -> dict[str, Any]:
    """Auto-accepted share vs agreement as the confidence threshold sweeps (test ids; for the plot only)."""
    conf = confidence_of(Q, levels, scores, cp)
    base = sets[np.arange(len(y)), np.searchsorted(np.asarray(levels), scores)]
    if cp.max_set_size is not None:
        base = base & (sets.sum(axis=1) <= cp.max_set_size)
    fr, mq, hq, m1 = [], [], [], []
    one = _half(scores) if halve else scores
    for t in np.quantile(conf, np.linspace(0, 0.95, 40)):
        a = base & (conf >= t)
        if a.sum() < 20:
            continue
        fr.append(a.mean())
        mq.append(_qwk(scores[a], y[a]))
        hq.append(_qwk(r1[a], r2[a]))
        m1.append(_qwk(one[a], r1[a]))
    return {"fraction": fr, "machine": mq, "human": hq, "machine_r1": m1, "chosen": chosen, "halve": halve}


def _plot(curves: dict[int, dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(curves)
    cols = min(4, n)
    rows_ = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows_, cols, figsize=(4 * cols, 3.2 * rows_), squeeze=False)
    for ax, (s, c) in zip(axes.ravel(), sorted(curves.items()), strict=False):
        ax.plot(c["fraction"], c["machine"], "-", label="machine vs resolved (auto items)")
        ax.plot(c["fraction"], c["human"], "--", label="rater 1 vs rater 2 (same items)")
        ax.plot(c["fraction"], c["machine_r1"], ":", label="machine vs rater 1 (halved on sum scales)")
        ax.axvline(c["chosen"], color="grey", lw=0.8, ls=":", label="policy (tuned on calibration split)")
        ax.set_title(f"set {s} holistic")
        ax.set_xlabel("auto-accepted fraction")
        ax.set_ylabel("QWK")
        ax.set_xlim(0, 1.02)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle("ASAP-AES test ids: auto-accepted share vs agreement (threshold swept; policy line tuned on calibration split)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
