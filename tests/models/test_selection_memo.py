"""Features shared between sibling criteria never outlive a training run nor serve another TF-IDF object."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import models.model_selection as ms
from models.model_selection import SelectiveEnsembleScorer
from models.scorers import SharedTfidf

LEVELS = [0, 1, 2, 3]
WORDS = {
    0: ["idk", "nothing", "dunno"],
    1: ["road", "hot", "tired"],
    2: ["road", "hot", "desert", "thirsty"],
    3: ["road", "hot", "desert", "thirsty", "because", "setting"],
}


class HashEncoder:
    name = "hash-test"
    version = "hash-test:fp32"
    dim = 16

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                h = int(hashlib.md5(w.encode()).hexdigest(), 16)
                out[i, h % self.dim] += 1.0
            out[i] /= np.linalg.norm(out[i]) or 1.0
        return out


def _data(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    texts = [" ".join(rng.permutation(WORDS[int(v)])) + f" x{i}" for i, v in enumerate(y)]
    return texts, y


def test_shared_features_are_only_reused_for_the_same_tfidf_object(monkeypatch: pytest.MonkeyPatch) -> None:
    # Make every id() collide (as a freed object's id can be reused): the memo must still not serve
    # features built with another TF-IDF.
    monkeypatch.setattr(ms, "id", lambda _obj: 7, raising=False)
    texts, y = _data(40)
    emb = HashEncoder().encode(texts)
    a = SelectiveEnsembleScorer(levels=LEVELS, shared_tfidf=SharedTfidf.fit(texts), heads=("gaussian",))
    a.fit(texts, y, embeddings=emb)
    first = ms._FEATURES_MEMO["F"]
    b = SelectiveEnsembleScorer(levels=LEVELS, shared_tfidf=SharedTfidf.fit(texts), heads=("gaussian",))
    b.fit(texts, y, embeddings=emb)
    assert ms._FEATURES_MEMO["F"] is not first
    ms.clear_selection_memos()


def test_train_model_keeps_no_shared_features(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rubrics import load_rubric
    from scoring.ingest import Record
    from scoring.train import train_model

    path = tmp_path / "r.yaml"
    path.write_text("id: t\nversion: 1\ntitle: t\nevidence: [answer]\ncriteria:\n"
                    "  - {id: a, title: A, levels: [{score: 0}, {score: 1}, {score: 2}, {score: 3}]}\n")
    texts, y = _data(ms.SELECT_MIN_N)
    recs = [Record(i + 1, f"r{i}", evidence={"answer": t}, scores={"a": int(v)})
            for i, (t, v) in enumerate(zip(texts, y, strict=True))]
    res = train_model(load_rubric(path), recs, HashEncoder())  # type: ignore[arg-type]
    assert type(res.model.scorers["a"]).__name__ == "SelectiveEnsembleScorer"
    assert not ms._FEATURES_MEMO and not ms._SVD_MEMO
