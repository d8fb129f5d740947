"""Per-criterion selection of views and head by nested cross-validation (models.model_selection)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hash_fakes import HashEncoder
from scipy import sparse
from sklearn.metrics import cohen_kappa_score

from models.model_selection import (
    CANDIDATES,
    DEFAULT_VIEWS,
    SelectiveEnsembleScorer,
    bootstrap_interval,
    choose,
    nested_view_predictions,
)
from models.scorers import EnsembleScorer, fit_thresholds, new_tfidf, quadratic_kappa
from models.shortviews import Features, knn_from_sims

LEVELS = [0, 1, 2, 3]
WORDS = {
    0: ["idk", "nothing", "dunno", "whatever"],
    1: ["road", "hot", "tired", "water"],
    2: ["road", "hot", "desert", "thirsty", "water", "hills"],
    3: ["road", "hot", "desert", "thirsty", "water", "hills", "because", "setting", "affects", "cyclist"],
}



def _data(n: int = 200, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    texts = []
    for lv in y:
        words = list(rng.choice(WORDS[int(lv)], size=min(len(WORDS[int(lv)]), 3 + int(lv)), replace=False))
        words += list(rng.choice(["the", "a", "it", "was", "and", "he"], size=3))
        rng.shuffle(words)
        texts.append(" ".join(words) + f" n{rng.integers(50)}.")
    return texts, y


@pytest.fixture(scope="module")
def fitted() -> tuple[SelectiveEnsembleScorer, list[str], np.ndarray]:
    texts, y = _data()
    return SelectiveEnsembleScorer(levels=LEVELS, encoder=HashEncoder(dim=32, signed=True)).fit(texts, y), texts, y


def test_fast_quadratic_kappa_equals_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    for L in (2, 4, 9):
        a = rng.integers(0, L, 80)
        b = np.clip(a + rng.integers(-2, 3, 80), 0, L - 1)
        assert quadratic_kappa(a, b, list(range(L))) == pytest.approx(
            cohen_kappa_score(a, b, weights="quadratic", labels=list(range(L))), abs=1e-12)


def test_thresholds_still_correct_a_biased_expected_score() -> None:
    y = np.repeat(LEVELS, 25)
    cuts = fit_thresholds(y + 0.45, y, LEVELS)
    assert quadratic_kappa(y, np.asarray(LEVELS)[np.searchsorted(cuts, y + 0.45)], LEVELS) == pytest.approx(1.0)


def test_knn_scores_are_the_weighted_scores_of_the_nearest_texts() -> None:
    sims = np.array([[0.9, 0.1, 0.8, -0.5]], dtype=np.float32)
    y = np.array([3.0, 0.0, 1.0, 0.0])
    got = knn_from_sims(sims, y, k=2)
    w = np.array([0.9, 0.8]) ** 4
    assert got[0] == pytest.approx((3 * w[0] + 1 * w[1]) / w.sum(), rel=1e-4)


class _Recorder:
    """A view that remembers which training rows each fit saw and predicts the fit's number."""

    name = "recorder"

    def __init__(self) -> None:
        self.fits: list[set[int]] = []

    def fit(self, F: object, idx: np.ndarray, y: np.ndarray) -> int:
        self.fits.append({int(i) for i in idx})
        return len(self.fits) - 1

    def predict(self, model: int, F: object, idx: np.ndarray | None = None) -> np.ndarray:
        return np.full(len(idx if idx is not None else []), float(model))


def test_inner_predictions_never_come_from_a_model_that_saw_the_outer_fold() -> None:
    n, K = 40, 5
    folds = np.arange(n) % K
    rec = _Recorder()
    F = Features(dense=np.zeros((n, 1)), sparse=None, emb=np.zeros((n, 1)), ngram=None)  # type: ignore[arg-type]
    Q = nested_view_predictions([rec], F, np.zeros(n), folds)
    assert len(rec.fits) == K + K * (K - 1) // 2 and not np.isnan(Q).any()
    for i in range(n):
        for k in range(K):
            seen = rec.fits[int(Q[i, k, 0])]
            assert i not in seen  # never its own fold
            assert not seen & set(np.where(folds == k)[0])  # never the outer fold k


def test_ties_go_to_the_simpler_configuration() -> None:
    configs = [((0, 1), "logistic"), ((0, 1, 2), "logistic"), ((0, 1, 2, 3), "gaussian")]
    assert choose([0.700, 0.701, 0.690], configs) == 0
    assert choose([0.700, 0.720, 0.719], configs) == 1


def test_bootstrap_interval_brackets_the_point_estimate() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 300)
    pred = np.clip(y + rng.integers(-1, 2, 300), 0, 3)
    lo, hi = bootstrap_interval(y, pred, LEVELS, n_boot=300)
    assert lo < quadratic_kappa(y, pred, LEVELS) < hi and hi - lo < 0.2


def test_selection_is_recorded_and_its_nested_figure_is_reported_with_an_interval(fitted) -> None:  # type: ignore[no-untyped-def]
    sc, _, _ = fitted
    sel = sc.selection_
    assert tuple(sel["chosen"]["views"]) in CANDIDATES and sel["chosen"]["head"] in ("logistic", "gaussian")
    nc = sel["nested_cv"]
    assert nc["interval95"][0] <= nc["qwk"] <= nc["interval95"][1]
    assert nc["qwk"] > 0.6  # the planted signal is learnt
    assert len(nc["outer_choices"]) == nc["folds"] == 5
    assert len(sel["candidates"]) == 2 * len(CANDIDATES)
    assert "nested-CV QWK" in sc.describe()


def test_the_selected_scorer_keeps_the_scorer_contract(fitted) -> None:  # type: ignore[no-untyped-def]
    sc, texts, y = fitted
    p = sc.predict_proba(texts[:30])
    assert p.shape == (30, len(LEVELS)) and np.allclose(p.sum(axis=1), 1)
    assert list(sc.classes_) == LEVELS
    assert np.array_equal(sc.predict(texts[:30]), sc.decide(p))
    cf = sc.cross_fitted_proba()
    assert cf.shape == (len(y), len(LEVELS))
    back = pickle.loads(pickle.dumps(sc))
    assert back.encoder is None
    back.encoder = HashEncoder(dim=32, signed=True)
    assert np.allclose(back.predict_proba(texts[:30]), p)


def test_new_texts_are_not_scored_with_the_training_similarity_matrix(fitted) -> None:  # type: ignore[no-untyped-def]
    sc, texts, _ = fitted
    one = sc.predict_proba([texts[5]])
    batch = sc.predict_proba(texts[:10])
    assert np.allclose(one[0], batch[5])


def test_train_model_selects_only_with_enough_scores(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rubrics import load_rubric
    from scoring.ingest import Record
    from scoring.train import cv_figure, train_model

    path = tmp_path / "r.yaml"
    path.write_text("id: t\nversion: 1\ntitle: t\nevidence: [answer]\ncriteria:\n"
                    "  - {id: a, title: A, levels: [{score: 0}, {score: 1}, {score: 2}, {score: 3}]}\n"
                    "  - {id: b, title: B, levels: [{score: 0}, {score: 1}, {score: 2}, {score: 3}]}\n")
    rubric = load_rubric(path)
    texts, y = _data(180, seed=4)
    recs = [Record(i + 1, f"r{i}", evidence={"answer": t}, scores={"a": int(v), "b": int(v) if i < 60 else None})
            for i, (t, v) in enumerate(zip(texts, y, strict=True))]
    res = train_model(rubric, recs, HashEncoder(dim=32, signed=True))  # type: ignore[arg-type]
    a, b = res.metrics["a"], res.metrics["b"]
    assert type(res.model.scorers["a"]).__name__ == "SelectiveEnsembleScorer"
    assert a["cv_qwk_interval95"][0] <= a["cv_qwk"] <= a["cv_qwk_interval95"][1] and "selection" in a
    assert "nested-CV QWK" in cv_figure(a) and a["configuration"] in cv_figure(a)
    assert type(res.model.scorers["b"]).__name__ == "EnsembleScorer" and "why_no_selection" in b
    assert "cv QWK" in cv_figure(b)
    # --no-select (scoring train, bench asap-aes, bench short): the fixed ensemble for every criterion
    off = train_model(rubric, recs, HashEncoder(dim=32, signed=True), select=False)  # type: ignore[arg-type]
    assert type(off.model.scorers["a"]).__name__ == "EnsembleScorer"
    assert off.metrics["a"]["why_no_selection"] == "selection off" and "selection" not in off.metrics["a"]


def test_the_fixed_ensembles_configuration_stays_unless_another_beats_it_by_more_than_a_tie() -> None:
    configs = [((0, 1), "logistic"), ((0, 1, 2), "logistic"), ((0, 1, 2, 3, 4), "logistic")]
    # the two-view candidate is best by less than TIE: the default (index 1) stays
    assert choose([0.7015, 0.7000, 0.6900], configs, default=1) == 1
    # ... by more than TIE: it wins
    assert choose([0.7100, 0.7000, 0.6900], configs, default=1) == 0
    # without a default: the fewest views within TIE of the best
    assert choose([0.7000, 0.7015, 0.6900], configs) == 0


def test_the_resampled_qwk_is_sklearns_quadratic_kappa() -> None:
    from models.model_selection import qwk_resampled

    rng = np.random.default_rng(3)
    for levels in ([0, 1, 2, 3], [1, 2, 5]):
        y, p = rng.choice(levels, 80), rng.choice(levels, 80)
        idx = np.stack([np.arange(80), rng.integers(0, 80, 80)])
        got = qwk_resampled(y, p, levels, idx)
        for row, want in zip(idx, got, strict=True):
            assert want == pytest.approx(cohen_kappa_score(y[row], p[row], weights="quadratic", labels=levels))


def test_a_winner_within_one_standard_error_of_the_default_does_not_replace_it() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 300)
    noisy = np.clip(y + rng.integers(-1, 2, 300), 0, 3)  # the default: agrees up to one level
    # another draw of the same noise: higher QWK here by chance (seed chosen for that), by far less than its SE
    lucky = np.clip(y + np.random.default_rng(119).integers(-1, 2, 300), 0, 3)
    better = np.where(rng.random(300) < 0.8, y, noisy)  # clearly better
    configs = [((0, 1), "logistic"), ((0, 1, 2), "logistic")]
    qwk = [quadratic_kappa(y, p, LEVELS) for p in (lucky, noisy)]
    assert qwk[0] - qwk[1] > 0.002  # beats the tie ...
    assert choose(qwk, configs, 1, [lucky, noisy], y, LEVELS) == 1  # ... not the noise
    qwk = [quadratic_kappa(y, p, LEVELS) for p in (better, noisy)]
    assert choose(qwk, configs, 1, [better, noisy], y, LEVELS) == 0


def test_restricted_to_the_fixed_ensembles_views_and_head_it_is_the_fixed_ensemble() -> None:
    # the default candidate must be EnsembleScorer itself, so that choosing it never costs agreement: the
    # tfidf view's out-of-fold predictions come from a TF-IDF fitted without the held-out fold, as there
    texts, y = _data(n=160, seed=4)
    new, _ = _data(n=40, seed=5)
    enc = HashEncoder(dim=32, signed=True)
    fixed = EnsembleScorer(levels=LEVELS, encoder=enc).fit(texts, y)
    sel = SelectiveEnsembleScorer(levels=LEVELS, encoder=enc, candidates=(DEFAULT_VIEWS,), heads=("logistic",)).fit(texts, y)
    np.testing.assert_allclose(sel.oof_views_, fixed.oof_views_, atol=1e-6)
    np.testing.assert_allclose(sel.predict_proba(new), fixed.predict_proba(new), atol=1e-6)


def test_a_folds_tfidf_is_fitted_on_that_folds_texts_only() -> None:
    texts = ["alpha beta", "alpha gamma", "beta gamma", "zeta zeta", "zeta alpha"]
    surface = np.zeros((5, 1))
    full = new_tfidf().fit(texts)
    F = Features(dense=np.zeros((5, 2)), sparse=sparse.hstack([full.transform(texts), sparse.csr_matrix(surface)]).tocsr(),
                 emb=np.zeros((5, 2)), ngram=full.transform(texts), texts=texts, surface=surface)
    assert F.sparse_without(np.arange(5)) is F.sparse, "all rows: the shared TF-IDF"
    inner = new_tfidf().fit(texts[:3])
    X = F.sparse_without(np.arange(3))
    assert X.shape[1] == len(inner.get_feature_names_out()) + 1 < F.sparse.shape[1], "'zeta' is not in the fold's vocabulary"
    np.testing.assert_allclose(X[:, :-1].toarray(), inner.transform(texts).toarray())
