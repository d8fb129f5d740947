"""Every agreement formula written here is checked against an independent computation.

SMD, DSM and PRMSE are re-derived from RSMTool's published formulas (documentation of ``rsmtool.utils``:
``standardized_mean_difference(method='pooled')``, ``difference_of_standardized_means``, ``prmse_true``)
with plain Python / numpy on small fixed tables, and PRMSE is also checked against its meaning on simulated
true scores.
"""

from __future__ import annotations

import math
import statistics as st

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from eval.agreement import (
    agreement_metrics,
    bootstrap_ci,
    dsm,
    expected_calibration_error,
    prmse_true,
    qwk,
    qwk_indices,
    smd,
    variance_of_errors,
)

H = [1, 2, 2, 3, 4, 0, 1, 3, 2, 4, 3, 1]
M = [1, 2, 3, 3, 3, 1, 1, 4, 2, 4, 2, 2]
LABELS = [0, 1, 2, 3, 4]


def _qwk_by_hand(a: list[int], b: list[int], labels: list[int]) -> float:
    """Textbook QWK: 1 - sum w*O / sum w*E with w = (i-j)^2 over score values."""
    n = len(a)
    ca = {v: a.count(v) for v in labels}
    cb = {v: b.count(v) for v in labels}
    num = sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) / n
    den = sum((i - j) ** 2 * ca[i] * cb[j] for i in labels for j in labels) / n / n
    return 1 - num / den


def test_qwk_matches_textbook_formula_and_fast_path_matches_sklearn() -> None:
    assert qwk(H, M, LABELS) == pytest.approx(_qwk_by_hand(H, M, LABELS), abs=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 6, 50), rng.integers(0, 6, 50)
        ref = cohen_kappa_score(a, b, labels=list(range(6)), weights="quadratic")
        assert qwk_indices(a, b, 6) == pytest.approx(ref, abs=1e-12)


def test_smd_is_rsmtool_pooled_definition() -> None:
    expected = (st.mean(M) - st.mean(H)) / math.sqrt((st.variance(H) + st.variance(M)) / 2)
    assert smd(H, M) == pytest.approx(expected, abs=1e-12)
    assert smd([1, 2, 3], [2, 3, 4]) > 0  # machine scores higher -> positive


def test_dsm_is_rsmtool_difference_of_standardized_means() -> None:
    group = [0, 2, 5, 7, 9]  # indices of one subgroup
    hg, mg = [H[i] for i in group], [M[i] for i in group]
    pop = (st.mean(H), st.mean(M), st.stdev(H), st.stdev(M))
    expected = (st.mean(mg) - pop[1]) / pop[3] - (st.mean(hg) - pop[0]) / pop[2]
    assert dsm(hg, mg, *pop) == pytest.approx(expected, abs=1e-12)


def _prmse_two_raters_by_hand(system: list[float], h1: list[float], h2: list[float]) -> float:
    """RSMTool's prmse_true specialised to every response scored exactly twice (n_i = 2, M = 2N)."""
    n = len(system)
    ve = sum((a - b) ** 2 / 2 for a, b in zip(h1, h2, strict=True)) / n  # per-response var, ddof=1
    means = [(a + b) / 2 for a, b in zip(h1, h2, strict=True)]
    grand = sum(h1 + h2) / (2 * n)
    var_true = (2 * sum((m - grand) ** 2 for m in means) - (n - 1) * ve) / (2 * n - 2)
    mse = (2 * sum((m - s) ** 2 for m, s in zip(means, system, strict=True)) - n * ve) / (2 * n)
    return 1 - mse / var_true


def test_prmse_matches_rsmtool_formula_on_a_fixed_table() -> None:
    h2 = [1, 3, 2, 3, 3, 0, 2, 3, 1, 4, 3, 2]
    system = [1.2, 2.1, 2.6, 3.0, 3.4, 0.7, 1.4, 3.6, 1.9, 3.8, 2.5, 1.8]
    got = prmse_true(system, np.column_stack([H, h2]))
    assert got == pytest.approx(_prmse_two_raters_by_hand(system, H, h2), abs=1e-12)


def test_prmse_with_some_single_scored_responses_uses_weighted_error_variance() -> None:
    human = np.array([[1, 2], [2, 2], [3, np.nan], [4, 3], [0, np.nan], [2, 3]], float)
    # error variance uses only double-scored rows: mean of (a-b)^2/2 over rows 0, 1, 3, 5
    assert variance_of_errors(human) == pytest.approx((0.5 + 0 + 0.5 + 0.5) / 4)
    n = np.array([2, 2, 1, 2, 1, 2])
    means = np.nanmean(human, axis=1)
    grand = np.nanmean(human)
    ve = 0.375
    var_true = ((n * (means - grand) ** 2).sum() - 5 * ve) / (n.sum() - (n**2).sum() / n.sum())
    system = np.array([1.5, 2.0, 2.8, 3.4, 0.4, 2.4])
    mse = (((means - system) ** 2 * n).sum() - 6 * ve) / n.sum()
    assert prmse_true(system, human) == pytest.approx(1 - mse / var_true, abs=1e-12)
    assert prmse_true(system, human[:, :1]) is None  # no double-scored response, no PRMSE


def test_prmse_recovers_the_true_score_explained_variance_on_simulated_raters() -> None:
    """Humans = truth + noise; system = truth + noise of variance 0.25: PRMSE should be 1 - 0.25/1."""
    rng = np.random.default_rng(1)
    truth = rng.normal(0, 1, 40_000)
    humans = np.column_stack([truth + rng.normal(0, 0.6, truth.size), truth + rng.normal(0, 0.6, truth.size)])
    system = truth + rng.normal(0, 0.5, truth.size)
    assert prmse_true(system, humans) == pytest.approx(0.75, abs=0.02)


def test_ece_on_a_hand_computed_example() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    truth = np.array([0, 1, 1, 1])
    # bins of width 0.1: {0.9} acc 1; {0.8} acc 0; {0.7} acc 1; {0.6} acc 1
    expected = (abs(1 - 0.9) + abs(0 - 0.8) + abs(1 - 0.7) + abs(1 - 0.6)) / 4
    ece, table = expected_calibration_error(probs, truth, n_bins=10)
    assert ece == pytest.approx(expected)
    assert table["n"].sum() == 4


def test_agreement_metrics_cover_exact_adjacent_kappa_and_alpha() -> None:
    m = agreement_metrics(H, M, LABELS)
    diffs = [abs(a - b) for a, b in zip(H, M, strict=True)]
    assert m["exact"] == pytest.approx(sum(d == 0 for d in diffs) / len(H))
    assert m["adjacent"] == pytest.approx(sum(d <= 1 for d in diffs) / len(H))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(H, M, labels=LABELS))
    assert m["pearson_r"] == pytest.approx(np.corrcoef(H, M)[0, 1])
    perfect = agreement_metrics(H, H, LABELS)
    assert perfect["alpha_ordinal"] == pytest.approx(1.0) and perfect["qwk"] == pytest.approx(1.0)
    assert -1 < m["alpha_ordinal"] < perfect["alpha_ordinal"]


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 5, 400)
    a = np.clip(truth + rng.integers(-1, 2, 400), 0, 4)
    b = np.clip(truth + rng.integers(-1, 2, 400), 0, 4)
    ci1 = bootstrap_ci(a, b, LABELS, n_boot=300, seed=5)
    ci2 = bootstrap_ci(a, b, LABELS, n_boot=300, seed=5)
    assert ci1 == ci2
    point = qwk(a, b, LABELS)
    assert ci1["qwk"][0] < point < ci1["qwk"][1]
    small = bootstrap_ci(a[:60], b[:60], LABELS, n_boot=300, seed=5)
    assert (small["qwk"][1] - small["qwk"][0]) > (ci1["qwk"][1] - ci1["qwk"][0])
