"""Degenerate samples give defined answers (None / no interval), never NumPy division warnings."""

from __future__ import annotations

import warnings

import numpy as np

from eval.agreement import (
    agreement_metrics,
    bootstrap_ci,
    bootstrap_prediction_ci,
    prmse_items,
    true_score_variance,
)


def test_constant_scores_give_no_interval_instead_of_a_warning() -> None:
    human, machine = np.full(12, 2.0), np.array([1, 2, 3] * 4, float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails the test
        pred = bootstrap_prediction_ci(human, machine, n_boot=50)
        agree = bootstrap_ci(np.full(12, 2), np.full(12, 2), [0, 1, 2, 3], n_boot=50)
    assert "r2" not in pred and "rmse" in pred  # R2 is undefined when the human scores never vary
    assert "smd" not in agree and agree["exact"] == (1.0, 1.0)


def test_one_double_scored_response_has_no_true_score_variance() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert true_score_variance(np.array([[1.0, 2.0]])) is None
        out = prmse_items([1.0, np.nan], [2.0, np.nan], [1.0, 2.0])
    assert out["prmse"] is None and out["prmse_n_double"] == 1


def test_one_shared_level_gives_nan_kappa_not_a_scikit_learn_warning() -> None:
    """Two raters who both gave one response the same single level: kappa is undefined (NaN in the tables),
    and the report's user sees no scikit-learn warning about ``y1`` and ``y2``."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = agreement_metrics(np.array([2, 2]), np.array([2, 2]), [0, 1, 2, 3])
    assert np.isnan(out["qwk"]) and np.isnan(out["kappa"]) and out["exact"] == 1.0
