"""Every scorer the project ships honours one scikit-learn-like contract over ordered levels."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from models.scorers import (
    EnsembleScorer,
    ScorerError,
    ZeroShotScorer,
    apply_thresholds,
    decide,
    fit_thresholds,
)

pytestmark = pytest.mark.slow

LEVELS = [0, 1, 2]
GOOD = [
    "I asked open questions and probed each student's reasoning with follow-up questions.",
    "Students explained their thinking to partners and I pressed them to justify answers.",
]
WEAK = ["I lectured and asked if everyone understood.", "We copied notes from the board."]


def _data(n: int = 60):
    rng = np.random.default_rng(0)
    texts, y = [], []
    for i in range(n):
        lvl = i % 3
        base = WEAK[i % 2] if lvl == 0 else GOOD[i % 2]
        extra = " Some students answered." if lvl == 1 else (" Many students shared ideas and I followed up." if lvl == 2 else "")
        texts.append(f"{base}{extra} Lesson {rng.integers(1000)}.")
        y.append(lvl)
    return texts, np.array(y)


def _scorers(encoder):
    return [
        EnsembleScorer(levels=LEVELS, encoder=encoder),
        ZeroShotScorer(levels=LEVELS, level_texts=[WEAK, ["Some open questions; few students answer."], GOOD], encoder=encoder),
    ]


@pytest.mark.parametrize("kind", [0, 1], ids=["ensemble", "zero-shot"])
def test_predict_proba_covers_every_level_in_order(encoder, kind):
    texts, y = _data()
    s = _scorers(encoder)[kind].fit(texts, y)
    P = s.predict_proba(texts[:7])
    assert P.shape == (7, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)
    assert (P >= 0).all()
    assert list(s.classes_) == LEVELS
    assert set(s.predict(texts[:7])) <= set(LEVELS)


@pytest.mark.parametrize("kind", [0, 1], ids=["ensemble", "zero-shot"])
def test_scorer_pickles_without_the_encoder(encoder, kind):
    texts, y = _data()
    s = _scorers(encoder)[kind].fit(texts, y)
    clone = pickle.loads(pickle.dumps(s))
    assert clone.encoder is None
    clone.encoder = encoder
    np.testing.assert_allclose(clone.predict_proba(texts[:3]), s.predict_proba(texts[:3]), atol=1e-6)


def test_trained_scorer_learns_the_planted_signal(encoder):
    texts, y = _data(90)
    s = EnsembleScorer(levels=LEVELS, encoder=encoder).fit(texts[:60], y[:60])
    acc = float(np.mean(s.predict(texts[60:]) == y[60:]))
    assert acc >= 0.8


def test_labels_off_the_scale_are_refused(encoder):
    texts, y = _data(40)
    y[3] = 7
    with pytest.raises(ScorerError, match=r"scores \[7\] are not levels"):
        EnsembleScorer(levels=LEVELS, encoder=encoder).fit(texts, y)
    with pytest.raises(ScorerError, match="need at least two levels"):
        EnsembleScorer(levels=LEVELS, encoder=encoder).fit(texts, np.zeros(40, int))


def test_zero_shot_prefers_the_level_whose_descriptor_matches(encoder):
    s = _scorers(encoder)[1].fit()
    P = s.predict_proba([GOOD[0], WEAK[0]])
    assert P[0].argmax() == 2 and P[1].argmax() == 0


def test_zero_shot_needs_a_descriptor_per_level(encoder):
    with pytest.raises(ScorerError, match=r"levels \[1\] have no descriptor"):
        ZeroShotScorer(levels=LEVELS, level_texts=[["a"], [""], ["c"]], encoder=encoder).fit()


def test_expected_decision_rounds_the_mean_not_the_mode():
    P = np.array([[0.45, 0.10, 0.45], [0.6, 0.4, 0.0]])
    assert list(decide(P, np.array(LEVELS), "expected")) == [1, 0]
    assert list(decide(P, np.array(LEVELS), "argmax")) == [0, 0]


def test_fitted_thresholds_correct_a_biased_expected_score():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    ev = y + rng.normal(0.3, 0.6, 400)  # biased upwards: plain rounding over-scores
    levels = [0, 1, 2, 3]
    th = fit_thresholds(ev, y, levels)
    q_round = cohen_kappa_score(y, np.clip(np.rint(ev), 0, 3).astype(int), weights="quadratic")
    q_th = cohen_kappa_score(y, apply_thresholds(ev, th, np.array(levels)), weights="quadratic")
    assert q_th > q_round + 0.01, "cut-points should undo the upward bias that plain rounding keeps"
    assert np.all(np.diff(th) > 0)


def test_criteria_reading_the_same_evidence_share_one_tfidf_view_after_loading(demo_model_dir, encoder_cache):
    from models.artifact import load_model

    m = load_model(demo_model_dir, cache_dir=encoder_cache)
    views = {id(s.tfidf_) for s in m.scorers.values()}
    assert len(views) == 1, "three criteria over one reflection should transform it once"
    texts = ["I asked open questions.", "We copied notes."]
    first = m.scorers["questioning"].tfidf_.transform(texts)
    assert m.scorers["adjusting"].tfidf_.transform(list(texts)) is first


def test_cross_fitted_probabilities_of_a_fold_ignore_that_folds_own_labels(encoder):
    """What calibration may rely on: a training row's cross-fitted probabilities were fitted without its label."""
    texts, y = _data(90)
    s = EnsembleScorer(levels=LEVELS, encoder=encoder).fit(texts, y)
    P = s.cross_fitted_proba()
    assert P.shape == (90, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)
    assert float(np.mean(s.decide(P) == y)) >= 0.7, "held-out probabilities should still carry the planted signal"
    fold0 = s.oof_folds_ == 0
    s.oof_y_ = s.oof_y_.copy()
    s.oof_y_[fold0] = (s.oof_y_[fold0] + 1) % 3  # relabel fold 0 only
    Q = s.cross_fitted_proba()
    np.testing.assert_allclose(Q[fold0], P[fold0], atol=1e-9, err_msg="fold 0's rows must not depend on fold 0's labels")
    assert not np.allclose(Q[~fold0], P[~fold0]), "other folds' heads learn from fold 0's labels"


def test_training_rows_are_identified_by_text_hash_not_kept_as_text(encoder):
    from models.scorers import text_hash

    texts, y = _data(60)
    s = EnsembleScorer(levels=LEVELS, encoder=encoder).fit(texts, y)
    assert s.train_hashes_ == [text_hash(t) for t in texts]
    assert not any(t in pickle.dumps(s).decode("latin-1") for t in texts[:5])
