"""``scoring bench route-guarantee``: does the routing promise hold on items the policy never saw?

Per ASAP-AES essay set, fold F: the model is trained once on the fold's training ids (fixed), and its
probabilities for the fold's held-out ids are kept (``<out>/cache``, so repeated runs and the splits never
retrain). Then, ``splits`` times, the held-out ids are split at random into a calibration half and a test
half; for every criterion a calibrator, conformal sets and a routing rule are fitted on the calibration half
only, and the rule routes the test half. Because the halves are a random split of one pool, calibration and
test items are exchangeable: exactly the assumption the Learn-then-Test promise rests on.

A criterion x split is a VIOLATION when, on the test half, the accepted items' QWK (machine vs rater 2, the
same reference rater 1 is judged by; on the sum-of-two-raters sets 1, 7, 8 rater scores are doubled onto the
machine's scale; ``scoring.human_bar``) falls below the raters' QWK on the same items by more than the
interval allows: the upper end of the 95% paired bootstrap interval of the difference is below 0. The target is ``violation_rate <= delta``.
The same splits are run with the winner-picking optimiser (``_before`` figures).

Confidence signals (``signals``): what each adds to the accepted share at the same delta, on the same
splits (each added family costs its share of delta):
  * ``probability``: calibrated P(score) (exact; also within 1 level on scales of 7+ levels): the router's
    rule, what ``scoring calibrate`` chooses (the ``violation_rate`` / ``auto_fraction_mean`` figures);
  * ``+conformal``: plus a family restricted to singleton conformal sets;
  * ``+views``: plus a family ordered by P(score) and agreement between the ensemble's views (embedding
    ridge, TF-IDF ridge, kernel SVR; the spread of their score predictions);
  * ``+distance``: plus a family ordered by P(score) and closeness to the training essays (mean cosine
    similarity of the 10 nearest training embeddings).
The last printed line is one JSON object.
"""

from __future__ import annotations

import csv
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eval.asap import fold_split, load_asap, rater_multiplier
from models.calibration import CalibratedScorer
from scoring.errors import CalibrationDataError
from scoring.human_bar import agreement_intervals, bar_statistic
from scoring.optimise import (
    ThresholdChoice,
    base_scorer,
    choose_thresholds,
    fixed_sequence_ltt,
    rule_families,
)
from scoring.policy import CriterionPolicy, RoutingPolicy
from scoring.routing import confidence_of, decide_routes

COVERAGE = 0.9
SIGNALS = ("probability", "+conformal", "+views", "+distance")
CACHE_FORMAT = 1


def _num(a: Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(a), errors="coerce").to_numpy(float)


# ------------------------------------------------------------------------------------------ cached inputs


def set_inputs(essay_set: int, data_dir: Path, fold: int, cache_dir: Path, out_dir: Path, echo: Any = print) -> dict[str, Any]:
    """Held-out probabilities, human scores and confidence signals for one set (trained once, then cached)."""
    path = out_dir / "cache" / f"set{essay_set}-fold{fold}.pkl"
    if path.exists():
        with path.open("rb") as fh:
            got = pickle.load(fh)  # noqa: S301 - our own cache file, written below
        if got.get("format") == CACHE_FORMAT:
            return dict(got)
    from eval.bench_asap import criteria_columns, train_set
    from models.encoder import get_encoder
    from scoring.prescore import criterion_probabilities

    df = load_asap(data_dir)
    split = fold_split(df, data_dir, fold)
    tr = split.train[split.train.essay_set == essay_set].reset_index(drop=True)
    te = split.test[split.test.essay_set == essay_set].reset_index(drop=True)
    t0 = time.perf_counter()
    model, key_of = train_set(essay_set, tr, cache_dir)
    echo(f"# set {essay_set}: trained on {len(tr)} training ids in {time.perf_counter() - t0:.0f}s; "
         f"{len(te)} held-out ids")
    enc = get_encoder("all-MiniLM-L6-v2", cache_dir)
    emb_te, emb_tr = enc.encode(te.essay.tolist()), enc.encode(tr.essay.tolist())
    sims = emb_te @ emb_tr.T
    knn = np.sort(sims, axis=1)[:, -10:].mean(axis=1)
    P = criterion_probabilities(model, [{"essay": e} for e in te.essay])
    cols = criteria_columns(essay_set)
    crits: dict[str, Any] = {}
    for c in model.rubric.criteria:
        cc = cols[key_of[c.id]]
        base = base_scorer(model.scorers[c.id])
        views = base.views(te.essay.tolist(), embeddings=emb_te) if hasattr(base, "views") else None
        crits[c.id] = {
            "levels": list(c.scores), "scorer": base, "proba": P[c.id],
            "y": _num(te[cc["target"]]), "r1": _num(te[cc["r1"]]), "r2": _num(te[cc["r2"]]),
            "view_spread": views.std(axis=1) if views is not None and views.shape[1] > 1 else None,
        }
    got = {"format": CACHE_FORMAT, "set": essay_set, "fold": fold, "model_version": model.version,
           "n_train": len(tr), "ids": [str(i) for i in te.essay_id], "knn_similarity": knn, "criteria": crits}
    path.parent.mkdir(parents=True, exist_ok=True)
    for v in crits.values():
        v["scorer"].encoder = None
    with path.open("wb") as fh:
        pickle.dump(got, fh)
    return got


# ------------------------------------------------------------------------------------------ one split


def _ecdf(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Share of the calibration values <= x (label-free ranks carried to new items)."""
    s = np.sort(ref)
    return np.searchsorted(s, x, side="right") / max(1, len(s))


def _judge(scores: np.ndarray, r1: np.ndarray, r2: np.ndarray, acc: np.ndarray, seed: int) -> dict[str, Any]:
    """Accepted-item QWK (machine vs rater 2) minus the raters' QWK on the test half, with its 95% paired
    bootstrap interval; ``r1``, ``r2`` already on the machine's scale."""
    if acc.sum() < 10:
        return {"n_acc": int(acc.sum()), "margin": None, "upper": None, "violation": False, "judged": False}
    iv = agreement_intervals(scores[acc], None, (r1[acc], r2[acc]), n_boot=400, rng=np.random.default_rng(seed))
    est, _lo, hi = iv.get("qwk_difference", [None, None, None])
    return {"n_acc": int(acc.sum()), "margin": est, "upper": hi, "violation": hi is not None and hi < 0,
            "judged": hi is not None, "machine_qwk": iv["machine_qwk"][0], "human_qwk": iv["human_qwk"][0]}


def run_split(crit: dict[str, Any], knn: np.ndarray, cal: np.ndarray, test: np.ndarray, *, delta: float,
              seed: int, signals: tuple[str, ...] = ("probability",), before: bool = True) -> dict[str, dict[str, Any]]:
    """Calibrate + choose on ``cal`` rows, route and judge ``test`` rows; one result per method."""
    levels = crit["levels"]
    k = crit.get("rater_multiplier", 1)  # 2 on sum-of-two-raters scales: raters doubled onto the machine's scale
    y, r1, r2 = crit["y"], k * crit["r1"], k * crit["r2"]
    cs = CalibratedScorer(crit["scorer"], method="auto", seed=13).fit_calibration(crit["proba"][cal], y[cal].astype(int))
    P = cs.cal_proba_
    scores_c = cs.decide(P)
    sets_c = cs.prediction_set(P, COVERAGE)
    Q = cs.calibrate(crit["proba"][test])
    scores_t = cs.decide(Q)
    sets_t = cs.prediction_set(Q, COVERAGE)
    r1t, r2t = r1[test], r2[test]
    out: dict[str, dict[str, Any]] = {}
    methods = ["ltt"] + (["best"] if before else [])
    for sel in methods:  # the product: choose_thresholds + the router, exactly as `scoring calibrate` + `score`
        try:
            ch = choose_thresholds(P, y[cal].astype(int), scores_c, levels, sets_c, human_pair=(r1[cal], r2[cal]),
                                   delta=delta, selection=sel, seed=seed)
        except CalibrationDataError:  # too few calibration items for any rule: everything goes to people
            ch = ThresholdChoice(CriterionPolicy(enabled=False), 0, 0)
        pol = RoutingPolicy(policy_version=f"bench-{seed}", audit_rate=0.0, double_rate=0.0, coverage=COVERAGE,
                            criteria={"c": ch.policy})
        dec = decide_routes([str(i) for i in test], "c", Q, scores_t, levels, sets_t, pol)
        acc = np.array([d.route == "auto" for d in dec])
        out[sel] = {"auto_fraction": float(acc.mean()), "enabled": ch.policy.enabled,
                    **_judge(scores_t, r1t, r2t, acc, seed)}
    variants = [s for s in signals if s != "probability"]  # "probability" is the product's rule, run above
    if variants:
        out.update(_signal_variants(crit, knn, cal, test, P, scores_c, sets_c, Q, scores_t, sets_t, delta, seed,
                                    variants))
    return out


def _signal_variants(crit: dict[str, Any], knn: np.ndarray, cal: np.ndarray, test: np.ndarray, P: np.ndarray,
                     scores_c: np.ndarray, sets_c: np.ndarray, Q: np.ndarray, scores_t: np.ndarray, sets_t: np.ndarray,
                     delta: float, seed: int, names: list[str]) -> dict[str, dict[str, Any]]:
    """LTT with other families of confidence orderings (measured here; the router's rule is ``+conformal``)."""
    levels = crit["levels"]
    k = crit.get("rater_multiplier", 1)
    y, r1, r2 = crit["y"], k * crit["r1"], k * crit["r2"]
    K = len(levels)
    n_c = len(cal)
    idx_c = np.searchsorted(np.asarray(levels), scores_c)
    idx_t = np.searchsorted(np.asarray(levels), scores_t)
    in_c, in_t = sets_c[np.arange(n_c), idx_c], sets_t[np.arange(len(test)), idx_t]
    conf = {}
    for tol, _size in rule_families(K, None, 0):  # the router's families
        cp = CriterionPolicy(confidence="within" if tol else "exact", tolerance=tol)
        conf[tol] = (confidence_of(P, levels, scores_c, cp), confidence_of(Q, levels, scores_t, cp))
    prob_fams = [(conf[t][0], in_c, conf[t][1], in_t) for t in conf]
    out: dict[str, dict[str, Any]] = {}
    pc, pt = conf[min(conf)]
    for name in names:
        fams = list(prob_fams)
        if name == "+conformal":  # the same confidence, among items whose conformal set is one level
            one_c, one_t = sets_c.sum(axis=1) == 1, sets_t.sum(axis=1) == 1
            fams += [(c_[0], in_c & one_c, c_[1], in_t & one_t) for c_ in conf.values()]
            sc = st = None
        elif name == "+views":
            if crit["view_spread"] is None:
                continue
            sc, st = -crit["view_spread"][cal], -crit["view_spread"][test]
        elif name == "+distance":
            sc, st = knn[cal], knn[test]
        else:
            raise ValueError(f"unknown signal {name!r}")
        if sc is not None and st is not None:  # rank-average with P(score); ranks from the calibration half only
            fams.append(((_ecdf(pc, pc) + _ecdf(sc, sc)) / 2, in_c, (_ecdf(pc, pt) + _ecdf(sc, st)) / 2, in_t))
        pair_ok = np.ones(n_c, bool)
        table, cert, _ = fixed_sequence_ltt(
            [(f[0], f[1]) for f in fams], scores_c, y[cal].astype(int), (r1[cal], r2[cal]), pair_ok,
            statistic=bar_statistic(K), human_qwk=None, delta=delta, min_auto=max(30, int(0.05 * n_c)), n_grid=19,
            n_boot=1000, rng=np.random.default_rng(seed))
        if not cert:
            acc = np.zeros(len(test), bool)
        else:
            row = max(cert, key=lambda r: (r["auto_fraction"], -r["p_value"]))
            f = fams[row["family"]]
            acc = f[3] & (f[2] >= row["min_confidence"])
        out[name] = {"auto_fraction": float(acc.mean()), "enabled": bool(cert),
                     **_judge(scores_t, r1[test], r2[test], acc, seed)}
    return out


# ------------------------------------------------------------------------------------------ the benchmark


def run(data_dir: Path, *, fold: int = 0, sets: list[int] | None = None, splits: int = 20, delta: float = 0.05,
        cal_share: float = 0.5, cache_dir: Path = Path(".scoring/bench-cache"),
        out_dir: Path = Path("bench-out/route-guarantee"), signals: tuple[str, ...] = SIGNALS,
        echo: Any = print) -> dict[str, Any]:
    sets = sets or list(range(1, 9))
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for s in sets:
        inp = set_inputs(s, data_dir, fold, cache_dir, out_dir, echo)
        for cid, crit in inp["criteria"].items():
            ok = np.isfinite(crit["y"]) & np.isfinite(crit["r1"]) & np.isfinite(crit["r2"]) & np.isfinite(crit["proba"]).all(axis=1)
            pool = np.flatnonzero(ok)
            crit = {**crit, "rater_multiplier": rater_multiplier(s, cid)}
            for k in range(splits):
                rng = np.random.default_rng(10_000 * fold + 100 * s + k)
                perm = rng.permutation(pool)
                n_cal = int(round(cal_share * len(perm)))
                cal, test = np.sort(perm[:n_cal]), np.sort(perm[n_cal:])
                res = run_split(crit, inp["knn_similarity"], cal, test, delta=delta, seed=k, signals=signals)
                for method, r in res.items():
                    rows.append({"set": s, "criterion": cid, "split": k, "method": method, "n_cal": len(cal),
                                 "n_test": len(test), **r})
            hol = [r for r in rows if r["set"] == s and r["criterion"] == cid]
            line = " ".join(f"{m}: auto {np.mean([r['auto_fraction'] for r in hol if r['method'] == m]):.3f} "
                            f"viol {np.mean([r['violation'] for r in hol if r['method'] == m]):.2f}"
                            for m in dict.fromkeys(r["method"] for r in hol))
            echo(f"set {s} {cid:<12} n={len(pool)} x {splits} splits | {line} [{time.perf_counter() - t0:.0f}s]")
    with (out_dir / "route_guarantee_splits.csv").open("w", newline="") as fh:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)

    def agg(method: str, key: str, holistic: bool = False) -> float | None:
        v = [float(r[key]) for r in rows if r["method"] == method and (not holistic or r["criterion"] == "holistic")]
        return round(float(np.mean(v)), 4) if v else None

    summary: dict[str, Any] = {
        "benchmark": "route-guarantee", "fold": fold, "sets": sets, "splits": splits, "cal_share": cal_share,
        "delta": delta,
        "n_cases": sum(1 for r in rows if r["method"] == "ltt"),
        "violation_rate": agg("ltt", "violation"),
        "auto_fraction_mean": agg("ltt", "auto_fraction"),
        "auto_fraction_holistic_mean": agg("ltt", "auto_fraction", True),
        "violation_rate_before": agg("best", "violation"),
        "auto_fraction_mean_before": agg("best", "auto_fraction"),
        "auto_fraction_holistic_mean_before": agg("best", "auto_fraction", True),
        "judged_share": agg("ltt", "judged"),
        "judged_share_before": agg("best", "judged"),
        "signals": {m: {"auto_fraction_mean": agg(m, "auto_fraction"), "violation_rate": agg(m, "violation")}
                    for m in signals if any(r["method"] == m for r in rows)},
    }
    summary["signals"]["probability"] = {"auto_fraction_mean": summary["auto_fraction_mean"],
                                         "violation_rate": summary["violation_rate"]}
    return summary
