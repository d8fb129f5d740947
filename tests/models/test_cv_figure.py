"""The model card's cross-validated QWK for a small sample (below nested selection): nothing that produced a
text's score was fitted on that text, so it does not flatter a model that has learnt nothing."""

from __future__ import annotations

import numpy as np
from hash_fakes import HashEncoder

from models.scorers import EnsembleScorer, quadratic_kappa

LEVELS = [0, 1, 2, 3]
VOCAB = ["road", "hot", "desert", "water", "hills", "because", "tired", "setting", "cyclist", "thirsty", "idk"]


def _noise(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Texts that say nothing about their scores (drawn apart): any agreement above 0 is the figure's own."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(VOCAB, size=6)) + f" n{i}." for i in range(n)]
    return texts, np.random.default_rng(seed + 1000).integers(0, 4, n)


def test_a_model_that_learnt_nothing_gets_no_credit_from_its_own_cut_points() -> None:
    held, flattering = [], []
    for seed in range(8):
        texts, y = _noise(30, seed)
        m = EnsembleScorer(levels=LEVELS, encoder=HashEncoder(dim=32, signed=True), random_state=seed).fit(texts, y)
        held.append(quadratic_kappa(y, m.held_out_predict(), LEVELS))
        flattering.append(quadratic_kappa(y, m.oof_predict(), LEVELS))  # head and cut-points saw every row
    assert abs(np.mean(held)) < 0.12, held
    assert np.mean(flattering) > np.mean(held) + 0.1, (flattering, held)


def test_held_out_scores_come_from_each_folds_own_head_and_cut_points() -> None:
    texts, y = _noise(40, 3)
    m = EnsembleScorer(levels=LEVELS, encoder=HashEncoder(dim=32, signed=True)).fit(texts, y)
    pred = m.held_out_predict()
    assert pred.shape == y.shape and set(np.unique(pred)) <= set(LEVELS)
    before = pred.copy()
    m.oof_y_ = m.oof_y_.copy()
    fold = m.oof_folds_ == m.oof_folds_[0]
    m.oof_y_[fold] = (m.oof_y_[fold] + 1) % 4  # relabel one fold: its own predictions must not move
    assert np.array_equal(m.held_out_predict()[fold], before[fold])


def test_a_rare_level_all_in_one_fold_does_not_stop_training() -> None:
    """29 scores at one level and 1 at another: a fold's complement may hold one level only, where a
    logistic head cannot be fitted; that fold's head predicts the one level it has seen."""
    texts, _ = _noise(30, 5)
    y = np.full(30, 2)
    y[7] = 1
    m = EnsembleScorer(levels=LEVELS, encoder=HashEncoder(dim=32, signed=True)).fit(texts, y)
    assert m.held_out_predict().shape == (30,)
    P = m.cross_fitted_proba()
    assert P.shape == (30, 4) and np.allclose(P.sum(axis=1), 1.0)
