"""The machine's suggestion for one criterion, explained in the words an assessor reads.

Why this exists: a scorer's level is not always the most probable one. Our ensemble scorers decide by the
*expected level* (the probability-weighted average of the levels) cut at fitted cut-points, which errs
less on an ordinal scale than taking the most probable level when the mass is split between neighbours.
Shown bare beside the probabilities, that reads as a contradiction ("Machine: 1" beside ``0: 0.51``).
So the page shows one coherent suggestion: the level the machine recorded (the one routing and agreement
use), the probability the model gives it, the rule that chose it with its numbers, and how sure the model
is in plain words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Suggestion:
    level: int
    label: str
    p_level: float  # the probability the model gives the suggested level
    top_level: int  # the single most probable level
    p_top: float
    rule: str  # "expected" (expected level, cut-points) | "argmax" | "recorded" (rule unknown)
    expected: float  # probability-weighted average of the levels
    cuts: tuple[float, ...]  # the level boundaries on the expected level (midpoints when none were fitted)
    sureness: str  # "sure" | "leaning" | "unsure"
    plain: str  # how sure the model is, in words
    why: str  # the rule and its numbers, in words
    probabilities: tuple[tuple[int, float], ...]  # (level, p) in scale order

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _base(scorer: Any) -> Any:
    seen = 0
    while hasattr(scorer, "base") and seen < 5:  # calibration wrappers keep the base scorer's rule
        scorer, seen = scorer.base, seen + 1
    return scorer


def decision_rule(scorer: Any | None, scale: Sequence[int]) -> tuple[str, tuple[float, ...]]:
    """The scorer's rule and its cut-points on the expected level (``"recorded"`` when unknown)."""
    mids = tuple(float(a) + (float(b) - float(a)) / 2 for a, b in zip(scale[:-1], scale[1:], strict=True))
    if scorer is None:
        return "recorded", mids
    base = _base(scorer)
    cuts = getattr(base, "thresholds_", None)
    if cuts is not None:
        return "expected", tuple(float(c) for c in np.asarray(cuts).ravel())
    rule = getattr(base, "decision", None)
    if rule == "argmax":
        return "argmax", mids
    if rule in ("expected", "thresholds"):
        return "expected", mids
    return "recorded", mids


def _pct(p: float) -> str:
    return f"{round(100 * p)}%"


def explain(level: int, probabilities: Mapping[str, float] | Mapping[int, float], levels: Sequence[tuple[int, str]],
            scorer: Any | None = None) -> Suggestion:
    """One coherent suggestion for a recorded machine ``level``; ``levels`` is the scale as (score, label)."""
    scale = [s for s, _ in levels]
    labels = dict(levels)
    probs = {int(k): float(v) for k, v in probabilities.items()}
    row = [(s, probs.get(s, 0.0)) for s in scale]
    total = sum(p for _, p in row) or 1.0
    row = [(s, p / total) for s, p in row]
    expected = float(sum(s * p for s, p in row))
    top, p_top = max(row, key=lambda sp: sp[1])
    p_level = dict(row).get(level, 0.0)
    rule, cuts = decision_rule(scorer, scale)
    if rule == "expected" and scale[int(np.searchsorted(np.asarray(cuts), expected))] != level:
        rule = "recorded"  # recorded by another model version, or by a rule these numbers cannot show
    elif rule == "argmax" and level != top:
        rule = "recorded"
    ranked = sorted(row, key=lambda sp: -sp[1])
    second, p_second = ranked[1] if len(ranked) > 1 else ranked[0]
    if p_level >= 0.8:
        sureness, plain = "sure", f"The model is fairly sure: it gives level {level} {_pct(p_level)}."
    elif p_level >= 0.6 and level == top:
        sureness, plain = "leaning", (f"The model leans to level {level} ({_pct(p_level)}); "
                                      f"next is level {second} ({_pct(p_second)}).")
    else:
        a, b = sorted([ranked[0], ranked[1]] if len(ranked) > 1 else ranked, key=lambda sp: sp[0])
        sureness, plain = "unsure", (f"The model is unsure: it splits between level {a[0]} ({_pct(a[1])}) and "
                                     f"level {b[0]} ({_pct(b[1])}). Read the evidence closely.")
    if rule == "expected":
        i = scale.index(level) if level in scale else 0
        lo = f"{cuts[i - 1]:.2f}" if 0 < i <= len(cuts) else None
        hi = f"{cuts[i]:.2f}" if i < len(cuts) else None
        band = (f"between {lo} and {hi}" if lo and hi else f"below {hi}" if hi else f"at or above {lo}" if lo
                else "in its band")
        near = any(abs(expected - c) < 0.005 for c in cuts)  # 1.496 must not read as "1.50, below 1.50"
        shown = f"{expected:.3f}" if near else f"{expected:.2f}"
        why = (f"Chosen by the model's rule for ordered scales: the expected level (probabilities times levels, "
               f"added up) is {shown}, {band}, which is level {level}.")
        if level != top:
            why += (f" The single most likely level is {top} ({_pct(p_top)}); the expected level counts how far "
                    "off the other levels are, so a split between neighbours lands on the level between them.")
    elif rule == "argmax":
        why = f"Chosen as the most likely level ({_pct(p_level)})."
    else:
        why = f"The level the model recorded; the model gives it {_pct(p_level)}."
    return Suggestion(level, labels.get(level, str(level)), p_level, top, p_top, rule, expected, cuts, sureness,
                      plain, why, tuple(row))
