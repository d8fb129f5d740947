"""Model selection's memory bound: no kNN views (n x n similarity matrices) above ``KNN_MAX_N``."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import models.model_selection as ms
from models.model_selection import SelectiveEnsembleScorer

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


def test_knn_views_are_not_candidates_above_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ms, "KNN_MAX_N", 30)
    texts, y = _data(40)
    sc = SelectiveEnsembleScorer(levels=LEVELS, encoder=HashEncoder(), heads=("gaussian",)).fit(texts, y)
    configs = [c["config"] for c in sc.selection_["candidates"]]
    assert configs and not any("knn" in c for c in configs)
    assert {"knn_embed", "knn_ngram"} <= set(sc.selection_["not_candidates"])
    assert not any(v.startswith("knn") for v in sc.chosen_views_)


def test_knn_views_stay_candidates_at_or_below_the_cap() -> None:
    texts, y = _data(40)
    sc = SelectiveEnsembleScorer(levels=LEVELS, encoder=HashEncoder(), heads=("gaussian",)).fit(texts, y)
    assert any("knn" in c["config"] for c in sc.selection_["candidates"])
