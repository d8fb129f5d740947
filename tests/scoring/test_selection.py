"""Choosing what humans score first: diverse, uncertain, deterministic with a seed; bad requests refused."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.selection import SelectionError, ordinal_uncertainty, select

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
    first_three = {p.row // 30 for p in select(E, P, CLASSES, 3, seed=1)}
    assert 2 in first_three and 1 not in first_three


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
