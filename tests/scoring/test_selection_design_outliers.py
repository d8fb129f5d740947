"""The design phase of selection leaves out the outliers that the k-center phase sets aside."""

from __future__ import annotations

import numpy as np

from scoring.selection import design_order, select_rows


def _backlog(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    X[7] = [40.0, 0.0, 0.0, 0.0]  # one text far from every other
    return X


def test_an_obvious_outlier_is_never_among_the_design_picks() -> None:
    X = _backlog()
    assert 7 in design_order(X, 10)  # the design alone favours it (high leverage) ...
    picks = select_rows(X, np.ones(len(X)), 20, design=X, design_n=50)
    assert 7 not in [p.row for p in picks]  # ... but selection sets it aside


def test_design_order_picks_only_candidates_but_counts_every_row() -> None:
    X = _backlog()
    cand = np.ones(len(X), bool)
    cand[7] = False
    out = design_order(X, 30, candidates=cand)
    assert len(out) == 30 == len(set(out)) and 7 not in out
