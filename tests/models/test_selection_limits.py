"""Model selection's memory bound: no kNN views (n x n similarity matrices) above ``KNN_MAX_N``."""

from __future__ import annotations

import pytest
from hash_fakes import LEVELS, HashEncoder, leveled_texts

import models.model_selection as ms
from models.model_selection import SelectiveEnsembleScorer


def test_knn_views_are_not_candidates_above_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ms, "KNN_MAX_N", 30)
    texts, y = leveled_texts(40)
    sc = SelectiveEnsembleScorer(levels=LEVELS, encoder=HashEncoder(), heads=("gaussian",)).fit(texts, y)
    configs = [c["config"] for c in sc.selection_["candidates"]]
    assert configs and not any("knn" in c for c in configs)
    assert {"knn_embed", "knn_ngram"} <= set(sc.selection_["not_candidates"])
    assert not any(v.startswith("knn") for v in sc.chosen_views_)


def test_knn_views_stay_candidates_at_or_below_the_cap() -> None:
    texts, y = leveled_texts(40)
    sc = SelectiveEnsembleScorer(levels=LEVELS, encoder=HashEncoder(), heads=("gaussian",)).fit(texts, y)
    assert any("knn" in c["config"] for c in sc.selection_["candidates"])
