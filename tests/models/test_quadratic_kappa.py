"""``quadratic_kappa``: any order of levels, and a clear error for a score outside them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from models.scorers import quadratic_kappa


def test_unsorted_levels_give_scikit_learns_value() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 4, 80), rng.integers(0, 4, 80)
    want = cohen_kappa_score(a, b, weights="quadratic", labels=[0, 1, 2, 3])
    assert quadratic_kappa(a, b, [3, 1, 0, 2]) == pytest.approx(want)
    assert quadratic_kappa(a, b, [3, 2, 1, 0]) == pytest.approx(want)


def test_non_contiguous_levels_match_scikit_learn() -> None:
    rng = np.random.default_rng(4)
    lv = [2, 4, 6, 8, 10, 12]
    a, b = rng.choice(lv, 60), rng.choice(lv, 60)
    assert quadratic_kappa(a, b, lv) == pytest.approx(cohen_kappa_score(a, b, weights="quadratic", labels=lv))


@pytest.mark.parametrize("bad", [5, -1, 9, 1.5])
def test_a_score_outside_the_levels_is_an_error_naming_them(bad: float) -> None:
    a = np.array([0, 1, 2, 3, 2])
    b = np.array([0, 1, bad, 3, 2])
    with pytest.raises(ValueError, match=r"not among the levels \[0, 1, 2, 3\]"):
        quadratic_kappa(a, b, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="not among the levels"):
        quadratic_kappa(b, a, [0, 1, 2, 3])
