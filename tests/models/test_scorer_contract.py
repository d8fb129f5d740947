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


def _fitted(kind: str, encoder):  # type: ignore[no-untyped-def]
    """Each scorer the project ships, fitted on the same planted data."""
    texts, y = _data()
    if kind == "ensemble":
        return EnsembleScorer(levels=LEVELS, encoder=encoder).fit(texts, y)
    if kind == "zero-shot":
        return ZeroShotScorer(levels=LEVELS, level_texts=[WEAK, ["Some open questions; few students answer."], GOOD],
                              encoder=encoder).fit()
    if kind == "cold-start":
        from models.coldstart import ColdStartScorer

        return ColdStartScorer(levels=LEVELS, level_texts=[WEAK, ["Some open questions; few students answer."], GOOD],
                               encoder=encoder).fit(texts)
    if kind == "fine-tuned":
        from models.finetuned import FineTunedScorer

        return FineTunedScorer(LEVELS, epochs=1, learning_rate=2e-4, batch_size=8, max_length=24,
                               random_state=3).fit(texts, y)
    if kind == "calibrated":
        from models.calibration import CalibratedScorer

        base = EnsembleScorer(levels=LEVELS, encoder=encoder).fit(texts, y)
        return CalibratedScorer(base, method="temperature").fit_calibration(base.cross_fitted_proba(), y)
    raise AssertionError(kind)


KINDS = ["ensemble", "zero-shot", "cold-start", "fine-tuned", "calibrated"]


@pytest.fixture(scope="module", params=KINDS)
def scorer(request, encoder):  # type: ignore[no-untyped-def]
    return _fitted(request.param, encoder)


def test_every_scorer_satisfies_the_typed_protocol(scorer) -> None:  # type: ignore[no-untyped-def]
    from models.contract import CriterionScorer

    assert isinstance(scorer, CriterionScorer)


def test_probabilities_cover_every_level_in_order_and_sum_to_one(scorer) -> None:  # type: ignore[no-untyped-def]
    texts, _ = _data(7)
    P = scorer.predict_proba(texts)
    assert P.shape == (7, 3) and (P >= 0).all()
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)
    assert list(scorer.classes_) == LEVELS


def test_same_inputs_give_the_same_columns_with_or_without_precomputed_embeddings(scorer, encoder) -> None:  # type: ignore[no-untyped-def]
    from models.contract import uses_embeddings

    texts, _ = _data(9)
    P = scorer.predict_proba(texts)
    np.testing.assert_allclose(scorer.predict_proba(list(texts)), P, atol=1e-6)
    if uses_embeddings(scorer):
        np.testing.assert_allclose(scorer.predict_proba(texts, embeddings=encoder.encode(texts)), P, atol=1e-5)
    np.testing.assert_allclose(scorer.predict_proba(texts[3:5]), P[3:5], atol=1e-5)  # row-wise: no batch effects


def test_predict_is_decide_of_the_probabilities_and_decide_follows_the_documented_rule(scorer) -> None:  # type: ignore[no-untyped-def]
    texts, _ = _data(12)
    P = scorer.predict_proba(texts)
    np.testing.assert_array_equal(scorer.predict(texts), scorer.decide(P))
    assert set(scorer.decide(P)) <= set(LEVELS)
    # monotone: shifting probability mass to higher levels never lowers the decision
    rng = np.random.default_rng(5)
    Q = rng.dirichlet(np.ones(3), size=200)
    up = Q.copy()
    moved = up[:, 0] * rng.uniform(0, 1, 200)
    up[:, 0] -= moved
    up[:, 2] += moved
    assert (scorer.decide(up) >= scorer.decide(Q)).all()
    assert scorer.decide(np.array([[0.0, 0.0, 1.0]]))[0] >= scorer.decide(np.array([[1.0, 0.0, 0.0]]))[0]


def test_pickling_round_trips_without_the_encoder(scorer, encoder) -> None:  # type: ignore[no-untyped-def]
    texts, _ = _data(5)
    clone = pickle.loads(pickle.dumps(scorer))
    if getattr(clone, "encoder", None) is None:
        clone.encoder = encoder  # what the model loader does
    # the fine-tuned scorer stores its weights in fp16 (a 4x smaller model file): equal within 5e-3
    np.testing.assert_allclose(clone.predict_proba(texts), scorer.predict_proba(texts), atol=5e-3)
    np.testing.assert_array_equal(clone.predict(texts), scorer.predict(texts))


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
    s = _fitted("zero-shot", encoder)
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
