"""The fine-tuned transformer scorer: it learns from human scores, keeps the scorer contract, survives
save and load, and is used only where a criterion has enough scores."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from models.finetuned import FineTunedScorer
from models.scorers import EnsembleScorer, ScorerError

pytestmark = pytest.mark.slow

LEVELS = [0, 1, 2]
PHRASES = {
    0: ["I lectured and we copied notes from the board.", "Students listened quietly while I read the slides."],
    1: ["A few students answered my questions.", "Some students raised hands to reply."],
    2: ["Students justified answers with evidence and I pressed their reasoning.",
        "Pairs debated strategies and explained why each one works."],
}
FILLER = ["on Monday", "in period three", "during fractions", "after lunch", "in the science unit", "before the quiz"]


def _data(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    texts = [f"{PHRASES[int(k)][rng.integers(2)]} It was {FILLER[rng.integers(len(FILLER))]}." for k in y]
    return texts, y


@pytest.fixture(scope="module")
def fitted() -> FineTunedScorer:
    texts, y = _data(90, seed=1)
    return FineTunedScorer(LEVELS, epochs=3, learning_rate=2e-4, batch_size=8, max_length=32, random_state=3).fit(texts, y)


def test_it_learns_the_scores_and_generalises_to_unseen_texts(fitted: FineTunedScorer) -> None:
    texts, y = _data(60, seed=2)
    qwk = cohen_kappa_score(y, fitted.predict(texts), weights="quadratic", labels=LEVELS)
    assert qwk >= 0.8, f"held-out QWK {qwk:.3f}"
    assert [h["epoch"] for h in fitted.history_] == [1.0, 2.0, 3.0]  # one validation figure per epoch
    assert fitted.val_qwk_ >= 0.8 and fitted.n_val_ == 20 and fitted.n_train_ == 70


def test_it_honours_the_scorer_contract(fitted: FineTunedScorer) -> None:
    texts, _ = _data(7, seed=4)
    P = fitted.predict_proba(texts)
    assert P.shape == (7, 3) and (P >= 0).all()
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)
    assert list(fitted.classes_) == LEVELS
    np.testing.assert_array_equal(fitted.predict(texts), fitted.decide(P))
    assert set(fitted.predict(texts)) <= set(LEVELS)
    assert fitted.uses_embeddings is False


def test_pickled_weights_give_the_same_probabilities(fitted: FineTunedScorer) -> None:
    texts, _ = _data(12, seed=5)
    before = fitted.predict_proba(texts)
    blob = pickle.dumps(fitted)
    assert len(blob) < 60e6  # fp16 weights, no tokenizer or module objects inside
    again = pickle.loads(blob)
    assert again._net is None  # rebuilt from the stored weights on first use
    np.testing.assert_array_equal(again.predict_proba(texts), before)  # the fitted scorer runs the saved weights


def test_bad_training_data_is_refused_with_the_reason() -> None:
    texts, y = _data(50, seed=6)
    with pytest.raises(ScorerError, match="at least 60 scores, found 50"):
        FineTunedScorer(LEVELS).fit(texts, y)
    with pytest.raises(ScorerError, match="need at least two levels"):
        FineTunedScorer(LEVELS).fit(texts + texts, np.ones(100, int))
    with pytest.raises(ScorerError, match=r"scores \[7\] are not levels"):
        FineTunedScorer(LEVELS).fit(texts, np.r_[y[:-1], 7])


def test_train_model_fine_tunes_only_where_data_allows_and_the_model_round_trips(
    tmp_path: Path, demo_files: tuple[Path, Path], encoder
) -> None:
    from models.artifact import load_model, save_model
    from rubrics import load_rubric
    from scoring.demo import DEMO_RUBRIC
    from scoring.ingest import ColumnMap, infer_columns, read_records
    from scoring.prescore import criterion_probabilities
    from scoring.train import FineTuning, train_model

    rubric = load_rubric(DEMO_RUBRIC)
    cols = infer_columns(rubric, ColumnMap(id="id", scores={c.id: c.id for c in rubric.criteria}))
    records = list(read_records(demo_files[0], rubric, cols))
    for r in records[40:]:  # only the first criterion keeps all 160 scores
        for c in rubric.criteria[1:]:
            r.scores[c.id] = None
    res = train_model(rubric, records, encoder, finetune=FineTuning(min_scores=100, epochs=1, max_length=32))
    first, *rest = [c.id for c in rubric.criteria]
    assert isinstance(res.model.scorers[first], FineTunedScorer) and res.metrics[first]["scorer"] == "finetuned"
    assert res.metrics[first]["n_val"] == 24 and len(res.metrics[first]["epochs"]) == 1
    for cid in rest:
        assert isinstance(res.model.scorers[cid], EnsembleScorer)
        assert res.metrics[cid]["why_not_finetuned"] == "40 human scores < 100: the ensemble instead"

    path = save_model(res.model, tmp_path / "model", res.metrics, res.data_hash)
    loaded = load_model(path)
    evidences = [r.evidence for r in records[:6]]
    np.testing.assert_allclose(criterion_probabilities(loaded, evidences)[first],
                               criterion_probabilities(res.model, evidences)[first], atol=5e-3)

    seen: dict[str, object] = {}
    for cid in (first, rest[0]):
        scorer = loaded.scorers[cid]
        orig = scorer.predict_proba

        def spy(texts, embeddings=None, _cid=cid, _orig=orig):  # type: ignore[no-untyped-def]
            seen[_cid] = embeddings
            return _orig(texts, embeddings=embeddings)

        scorer.predict_proba = spy
    loaded.version = ""  # no probability cache: every criterion is predicted
    criterion_probabilities(loaded, evidences)
    assert seen[first] is None, "the fine-tuned criterion reads raw text: nothing is encoded for it"
    assert np.asarray(seen[rest[0]]).shape == (6, encoder.dim)


def test_cross_fitted_calibration_is_refused_for_a_fine_tuned_criterion(fitted: FineTunedScorer, encoder) -> None:
    from models.artifact import ScoringModel
    from rubrics import load_rubric
    from scoring.demo import DEMO_RUBRIC
    from scoring.errors import CalibrationDataError
    from scoring.optimise import cross_fitted_probabilities

    rubric = load_rubric(DEMO_RUBRIC)
    model = ScoringModel(rubric=rubric, scorers={c.id: fitted for c in rubric.criteria}, encoder=encoder)
    with pytest.raises(CalibrationDataError, match="FineTunedScorer, which keeps no cross-fitted probabilities"):
        cross_fitted_probabilities(model, rubric.criteria[0].id, [{"reflection": "text"}])


def test_a_fine_tuned_criterion_calibrates_on_held_out_scores_and_keeps_reading_raw_text(fitted: FineTunedScorer, encoder) -> None:
    from models.artifact import ScoringModel
    from rubrics import load_rubric
    from scoring.demo import DEMO_RUBRIC
    from scoring.optimise import CriterionCalibrationData, calibrate_model
    from scoring.prescore import criterion_probabilities

    rubric = load_rubric(DEMO_RUBRIC)
    assert rubric.criteria[0].scores == LEVELS
    cid = rubric.criteria[0].id
    model = ScoringModel(rubric=rubric, scorers={c.id: fitted for c in rubric.criteria}, encoder=encoder)
    texts, y = _data(80, seed=7)
    P = criterion_probabilities(model, [{"reflection": t} for t in texts])[cid]
    res = calibrate_model(model, {cid: CriterionCalibrationData(P, y, [f"h{i}" for i in range(80)], human_qwk=0.5)},
                          n_boot=100)
    cal = res.model.scorers[cid]
    assert cal.uses_embeddings is False and res.policy.criteria[cid].evidence["n_cal"] == 80
    Q = cal.predict_proba(texts[:5])
    np.testing.assert_allclose(Q.sum(axis=1), 1.0, atol=1e-6)
    assert set(cal.decide(Q)) <= set(LEVELS)
    assert res.policy.criteria[cid].enabled  # the fake criterion is easy: QWK far above the 0.5 bar
