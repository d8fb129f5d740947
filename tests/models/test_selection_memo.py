"""Features shared between sibling criteria never outlive a training run nor serve another TF-IDF object."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hash_fakes import LEVELS, HashEncoder, leveled_texts

import models.model_selection as ms
from models.model_selection import SelectiveEnsembleScorer
from models.scorers import SharedTfidf


@pytest.fixture(autouse=True)
def _no_memo_left() -> Iterator[None]:
    yield
    ms.clear_selection_memos()  # a failed test must not hand its features to the next one


def test_shared_features_are_only_reused_for_the_same_tfidf_object() -> None:
    # Same texts, same embeddings, so the same memo key: only the TF-IDF object differs, and features
    # built with another TF-IDF must not be served.
    texts, y = leveled_texts(40)
    emb = HashEncoder().encode(texts)
    a = SelectiveEnsembleScorer(levels=LEVELS, shared_tfidf=SharedTfidf.fit(texts), heads=("gaussian",))
    a.fit(texts, y, embeddings=emb)
    first = ms._FEATURES_MEMO["F"]
    b = SelectiveEnsembleScorer(levels=LEVELS, shared_tfidf=SharedTfidf.fit(texts), heads=("gaussian",))
    b.fit(texts, y, embeddings=emb)
    second = ms._FEATURES_MEMO["F"]
    assert second is not first
    # the same TF-IDF object again: the features are served from the memo, not rebuilt
    c = SelectiveEnsembleScorer(levels=LEVELS, shared_tfidf=b.shared_tfidf, heads=("gaussian",))
    c.fit(texts, y, embeddings=emb)
    assert ms._FEATURES_MEMO["F"] is second


def test_train_model_keeps_no_shared_features(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rubrics import load_rubric
    from scoring.ingest import Record
    from scoring.train import train_model

    path = tmp_path / "r.yaml"
    path.write_text("id: t\nversion: 1\ntitle: t\nevidence: [answer]\ncriteria:\n"
                    "  - {id: a, title: A, levels: [{score: 0}, {score: 1}, {score: 2}, {score: 3}]}\n")
    texts, y = leveled_texts(ms.SELECT_MIN_N)
    recs = [Record(i + 1, f"r{i}", evidence={"answer": t}, scores={"a": int(v)})
            for i, (t, v) in enumerate(zip(texts, y, strict=True))]
    res = train_model(load_rubric(path), recs, HashEncoder())  # type: ignore[arg-type]
    assert type(res.model.scorers["a"]).__name__ == "SelectiveEnsembleScorer"
    assert not ms._FEATURES_MEMO and not ms._SVD_MEMO


def test_a_failed_training_run_keeps_no_shared_features_either(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rubrics import load_rubric
    from scoring.ingest import Record
    from scoring.train import TrainingError, train_model

    path = tmp_path / "r.yaml"
    path.write_text("id: t\nversion: 1\ntitle: t\nevidence: [answer]\ncriteria:\n"
                    "  - {id: a, title: A, levels: [{score: 0}, {score: 1}, {score: 2}, {score: 3}]}\n"
                    "  - {id: b, title: B, levels: [{score: 0}, {score: 1}]}\n")
    texts, y = leveled_texts(ms.SELECT_MIN_N)
    recs = [Record(i + 1, f"r{i}", evidence={"answer": t}, scores={"a": int(v)})
            for i, (t, v) in enumerate(zip(texts, y, strict=True))]
    with pytest.raises(TrainingError, match="criterion 'b'"):  # a is fitted first, then b has nothing to learn from
        train_model(load_rubric(path), recs, HashEncoder())  # type: ignore[arg-type]
    assert not ms._FEATURES_MEMO and not ms._SVD_MEMO
