"""The machine's suggestion as the assessor reads it: the level, its probability and the rule that chose it
agree. The three contradictions assessors reported ("Machine: 3" beside ``4: 0.74``, "Machine: 2" beside
``2: 0.00``, "Machine: 2" beside ``1: 0.53 2: 0.46``) come from the expected-level rule; each is explained
with its own numbers, and a level the rule could not have chosen is never explained as if it had."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from models.scorers import decide_with_cuts
from scoring.suggestion import decision_rule, explain

LEVELS_1_4 = [(1, "Beginning"), (2, "Developing"), (3, "Proficient"), (4, "Exemplary")]
LEVELS_0_2 = [(0, "Not yet"), (1, "Developing"), (2, "Proficient")]


def _scorer(cuts: list[float]) -> SimpleNamespace:
    """A calibrated scorer wrapping an ensemble with fitted cut-points (the shape of the real ones)."""
    return SimpleNamespace(base=SimpleNamespace(decision="thresholds", thresholds_=np.array(cuts)))


@pytest.mark.parametrize(("levels", "probs", "cuts"), [
    (LEVELS_1_4, {1: 0.20, 2: 0.03, 3: 0.03, 4: 0.74}, [1.5, 2.5, 3.5]),
    (LEVELS_0_2, {0: 0.50, 1: 0.00, 2: 0.50}, [0.5, 1.5]),
    (LEVELS_0_2, {0: 0.01, 1: 0.53, 2: 0.46}, [0.5, 1.4]),
])
def test_the_reported_contradictions_are_the_expected_level_rule_and_say_so(levels, probs, cuts) -> None:  # type: ignore[no-untyped-def]
    scale = [s for s, _ in levels]
    P = np.array([[probs[s] for s in scale]])
    level = int(decide_with_cuts(P, np.array(scale), np.array(cuts))[0])  # the real decision code
    top = max(probs, key=probs.__getitem__)
    assert level != top, "each reported case is a level that is not the most probable one"
    s = explain(level, {str(k): v for k, v in probs.items()}, levels, _scorer(cuts))
    assert s.rule == "expected" and s.level == level and s.p_level == pytest.approx(probs[level])
    expected = sum(k * v for k, v in probs.items())
    assert f"{expected:.2f}" in s.why or f"{expected:.3f}" in s.why
    assert f"single most likely level is {top}" in s.why
    assert s.sureness == "unsure" and "unsure" in s.plain


def test_a_confident_argmax_level_reads_as_sure() -> None:
    s = explain(2, {"0": 0.02, "1": 0.08, "2": 0.90}, LEVELS_0_2, _scorer([0.5, 1.5]))
    assert (s.sureness, s.top_level) == ("sure", 2) and "fairly sure" in s.plain and "90%" in s.plain
    assert "single most likely" not in s.why


def test_a_level_the_rule_cannot_give_is_not_explained_by_it() -> None:
    # recorded by another model version (or a bug): the page says "recorded", never a made-up reason
    s = explain(0, {"0": 0.05, "1": 0.15, "2": 0.80}, LEVELS_0_2, _scorer([0.5, 1.5]))
    assert s.rule == "recorded" and "recorded" in s.why and "5%" in s.why


def test_rules_are_read_through_calibration_wrappers() -> None:
    assert decision_rule(None, [0, 1, 2]) == ("recorded", (0.5, 1.5))
    assert decision_rule(SimpleNamespace(decision="argmax"), [1, 2, 3])[0] == "argmax"
    assert decision_rule(_scorer([0.7, 1.4]), [0, 1, 2]) == ("expected", (0.7, 1.4))
