"""Choosing what humans score first: diverse, uncertain, deterministic with a seed; bad requests refused."""

from __future__ import annotations

import numpy as np
import pytest

import scoring.selection as sel
from scoring.selection import SelectionError, design_order, design_space, ordinal_uncertainty, select

CLASSES = np.array([0, 1, 2])


def clusters(per: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four tight clusters of unit vectors; cluster c's texts all get the same probabilities."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:4]
    E = np.vstack([c + rng.normal(0, 0.02, (per, 8)) for c in centres])
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    P = np.tile([0.2, 0.6, 0.2], (len(E), 1))
    return E, P


def test_picks_cover_every_cluster_before_taking_a_second_from_any() -> None:
    E, P = clusters()
    picks = select(E, P, CLASSES, 4, seed=1)
    assert sorted(p.row // 30 for p in picks) == [0, 1, 2, 3]


def test_among_equally_distant_texts_the_uncertain_ones_are_chosen() -> None:
    E, P = clusters()
    P[30:60] = [0.98, 0.01, 0.01]  # cluster 1: the model is sure
    P[60:90] = [0.5, 0.0, 0.5]  # cluster 2: it cannot tell the ends apart
    # the k-center phase (after the design's first scores): uncertainty weights the distance
    first_three = {p.row // 30 for p in select(E, P, CLASSES, 3, seed=1, design_n=0)}
    assert 2 in first_three and 1 not in first_three
    done = np.zeros(len(E), bool)
    done[[0, 31, 61, 91]] = True  # one scored text per cluster, as many as the design wanted
    nxt = {p.row // 30 for p in select(E, P, CLASSES, 2, seed=1, exclude=done, design_n=4)}
    assert 2 in nxt and 1 not in nxt


def test_same_seed_same_queue_and_scored_texts_are_never_picked_again() -> None:
    E, P = clusters()
    a = [p.row for p in select(E, P, CLASSES, 10, seed=7)]
    assert a == [p.row for p in select(E, P, CLASSES, 10, seed=7)]
    done = np.zeros(len(E), bool)
    done[a] = True
    b = [p.row for p in select(E, P, CLASSES, 10, seed=7, exclude=done)]
    assert not set(a) & set(b)


def test_uncertainty_is_the_level_variance_over_its_maximum() -> None:
    u = ordinal_uncertainty(np.array([[1.0, 0, 0], [0.5, 0, 0.5], [0, 1.0, 0]]), CLASSES)
    np.testing.assert_allclose(u, [0.0, 1.0, 0.0])


def test_bad_requests_are_refused_in_words() -> None:
    E, P = clusters(per=3)
    with pytest.raises(SelectionError, match="asked for 20 submissions, but the backlog holds only 12"):
        select(E, P, CLASSES, 20)
    with pytest.raises(SelectionError, match="at least 1, found 0"):
        select(E, P, CLASSES, 0)
    with pytest.raises(SelectionError, match="one embedding and one probability row per text, found 12 and 11"):
        select(E, P[:11], CLASSES, 2)


def test_the_design_picks_texts_that_stand_for_many_and_reduce_prediction_variance() -> None:
    rng = np.random.default_rng(3)
    # a big cluster of 80 and a small one of 10: the design's first two picks take one of each
    E = np.vstack([np.eye(6)[0] + rng.normal(0, 0.05, (80, 6)), np.eye(6)[1] + rng.normal(0, 0.05, (10, 6))])
    P = np.tile([0.2, 0.6, 0.2], (len(E), 1))
    picks = select(E, P, CLASSES, 2)
    assert sorted(p.row >= 80 for p in picks) == [False, True]
    # summed ridge predictive variance over the backlog after 10 picks: the design beats random draws
    X = rng.normal(size=(300, 12)) * np.linspace(3, 0.2, 12)
    Z = design_space(X)

    def variance(rows: list[int]) -> float:
        A = 0.1 * np.eye(Z.shape[1]) + Z[rows].T @ Z[rows]
        return float(np.trace(Z @ np.linalg.solve(A, Z.T)))

    chosen = design_order(Z, 10)
    randoms = [variance(list(rng.choice(300, 10, replace=False))) for _ in range(20)]
    assert variance(chosen) < min(randoms)


def test_the_kernel_and_feature_forms_of_the_design_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    Z = design_space(rng.normal(size=(120, 10)))
    done = np.zeros(120, bool)
    done[[4, 9]] = True
    dual = design_order(Z, 8, exclude=done)
    monkeypatch.setattr(sel, "_DUAL_MAX", 10)
    assert design_order(Z, 8, exclude=done) == dual and not {4, 9} & set(dual)
