"""``scoring bench rsmtool-parity`` without RSMTool installed: the report's figures (through a store and
eval.agreement, as the bench computes them) against RSMTool's formulas as its documentation states them,
re-implemented here from those definitions (evaluation.rst: exact agreement, Cohen's kappa, QWK as
2cov / (var_h + var_m + (mean_m - mean_h)^2), SMD over the human SD, R2, RMSE, PRMSE for one or two ratings
per response, DSM against the population mean and SD; the human-human SMD over the pooled SD). The bench
itself runs the real ``rsmeval``; this test pins the comparison and the definitions it relies on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eval.bench_rsmtool_parity import SUBGROUP, Figures, compare, project_figures


def _preds(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s, (lo, hi) in ((1, (1, 6)), (8, (5, 30))):
        for i in range(160):
            t = int(rng.integers(lo, hi + 1))
            r1, r2 = (int(np.clip(t + rng.integers(-1, 2), lo, hi)) for _ in range(2))
            rows.append({"set": s, "criterion": "holistic", "essay_id": s * 1000 + i, "sc1": r1,
                         "sc2": r2 if i % 4 else None, "machine": int(np.clip(t + rng.integers(-2, 3) + (i % 3 == 0),
                                                                              lo, hi)),
                         SUBGROUP: ["short", "medium", "long"][i % 3], "scale_min": lo, "scale_max": hi})
    return pd.DataFrame(rows)


def _kappa(a: np.ndarray, b: np.ndarray) -> float:
    cats = sorted(set(a) | set(b))
    po = float(np.mean(a == b))
    pe = sum(float(np.mean(a == c)) * float(np.mean(b == c)) for c in cats)
    return (po - pe) / (1 - pe)


def _qwk(h: np.ndarray, m: np.ndarray) -> float:
    return 2 * np.cov(h, m, ddof=0)[0][1] / (h.var() + m.var() + (h.mean() - m.mean()) ** 2)


def _prmse(sc1: np.ndarray, sc2: np.ndarray, m: np.ndarray) -> float:
    h = np.column_stack([sc1, sc2])
    c = (~np.isnan(h)).sum(axis=1)
    multi = c > 1
    ve = np.average(np.nanvar(h[multi], axis=1, ddof=1), weights=c[multi] - 1)
    hbar = np.nanmean(h, axis=1)
    total = c.sum()
    vt = ((c * (hbar - np.nanmean(h)) ** 2).sum() - (len(h) - 1) * ve) / (total - (c**2).sum() / total)
    mse = ((c * (hbar - m) ** 2).sum() - len(h) * ve) / total
    return float(1 - mse / vt)


def rsmtool_formulas(preds: pd.DataFrame) -> Figures:
    out: Figures = {}
    for (s, crit), g in preds.groupby(["set", "criterion"]):
        key = f"set{s}/{crit}"
        h, m = g["sc1"].to_numpy(float), g["machine"].to_numpy(float)
        out[(key, "human-machine", "exact")] = float(np.mean(h == m))
        out[(key, "human-machine", "kappa")] = _kappa(h, m)
        out[(key, "human-machine", "qwk")] = _qwk(h, m)
        out[(key, "human-machine", "smd")] = (m.mean() - h.mean()) / h.std(ddof=1)
        mse = np.mean((h - m) ** 2)
        out[(key, "human-machine", "rmse")] = float(np.sqrt(mse))
        out[(key, "human-machine", "r2")] = float(1 - mse / h.var())
        out[(key, "human-machine", "prmse")] = _prmse(h, g["sc2"].to_numpy(float), m)
        for grp, gg in g.groupby(SUBGROUP):
            zh = (gg["sc1"].to_numpy(float) - h.mean()) / h.std(ddof=1)
            zm = (gg["machine"].to_numpy(float) - m.mean()) / m.std(ddof=1)
            out[(key, "human-machine", "dsm", str(grp))] = float(np.mean(zm - zh))
        d = g[g["sc2"].notna()]
        a, b = d["sc1"].to_numpy(float), d["sc2"].to_numpy(float)
        out[(key, "human-human", "exact")] = float(np.mean(a == b))
        out[(key, "human-human", "kappa")] = _kappa(a, b)
        out[(key, "human-human", "qwk")] = _qwk(a, b)
        out[(key, "human-human", "smd")] = (b.mean() - a.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return out


def test_the_reports_figures_equal_rsmtools_definitions_on_the_same_scores(tmp_path: Path) -> None:
    preds = _preds()
    ours = project_figures(preds, f"sqlite:///{tmp_path / 'p.db'}")
    res = compare(ours, rsmtool_formulas(preds))
    # 2 set-criteria x (7 human-machine + 4 human-human + 3 length groups)
    assert res["n_metrics_compared"] == 2 * (7 + 4 + 3)
    assert res["differs"] == [] and res["max_abs_diff"] <= 1e-9, res


def test_compare_names_a_metric_that_differs_or_that_only_one_side_computed() -> None:
    ours: Figures = {("set1/h", "human-machine", "qwk"): 0.80, ("set1/h", "human-machine", "prmse"): float("nan"),
                     ("set1/h", "human-machine", "dsm", "short"): 0.01}
    theirs: Figures = {("set1/h", "human-machine", "qwk"): 0.80 + 2e-6, ("set1/h", "human-machine", "prmse"): 0.7,
                       ("set1/h", "human-machine", "dsm", "short"): 0.01}
    res = compare(ours, theirs)
    assert res["differs"] == ["human-machine:prmse", "human-machine:qwk"]
    assert res["n_metrics_compared"] == 2 and res["max_abs_diff"] == pytest.approx(2e-6)


def test_the_command_is_registered_and_names_a_missing_data_folder(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from scoring.cli import app

    r = CliRunner().invoke(app, ["bench", "rsmtool-parity", "--data-dir", str(tmp_path / "nope"),
                                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "training_set_rel3.tsv not found" in r.output and "Traceback" not in r.output
