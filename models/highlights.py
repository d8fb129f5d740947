"""Evidence highlights: which sentences or turns make a criterion's score what it is.

The design is chosen to be cheap and scorer-agnostic. A scorer is any object with
``predict_proba(texts) -> (n, n_levels)``; each unit (a sentence of a reflection, a turn of a
transcript) is scored on its own, through the same encoder (one cached pass over the units), and
its *strength* toward the target level is its probability margin

    strength(u) = p_u(target) - max_{l != target} p_u(l)          (in [-1, 1])

i.e. how far the unit, read alone, pulls toward the target level rather than toward its strongest
rival. Positive units are *support*, negative ones *counter*-evidence (they read as another level).
The target defaults to the level predicted for the whole evidence. The margin needs no baseline or
background sample (unlike SHAP/occlusion), costs one ``predict_proba`` over the units, and reduces to
``2 p(level) - 1`` for a yes/no criterion, so ranking by it is ranking by the scorer's confidence.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np


class ProbaScorer(Protocol):
    """The scorer contract highlights need (``models.scorers`` and any scikit-learn pipeline fit it)."""

    def predict_proba(self, X: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Unit:
    """A span of one evidence field: ``evidence[field][start:end] == text``."""

    start: int
    end: int
    text: str
    field: str = ""
    label: str = ""  # e.g. the speaker of a turn; shown to assessors, not scored
    read: str = ""  # what the scorer reads when it differs from ``text`` (markup stripped); default text

    @property
    def scored_text(self) -> str:
        return self.read or self.text


@dataclass(frozen=True)
class Highlight:
    """One highlighted span with its pull toward (support) or away from (counter) the target level."""

    start: int
    end: int
    text: str
    strength: float
    kind: Literal["support", "counter"]
    field: str = ""
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["strength"] = round(float(self.strength), 4)
        return d


class HighlightError(ValueError):
    """Inputs highlights cannot be computed from (shape mismatch, unknown level)."""


def accepts_embeddings(scorer: Any) -> bool:
    """Whether ``scorer.predict_proba`` takes precomputed ``embeddings=`` and reads them (a fine-tuned one does not)."""
    if not getattr(scorer, "uses_embeddings", True):
        return False
    try:
        return "embeddings" in inspect.signature(scorer.predict_proba).parameters
    except (TypeError, ValueError):
        return False


def scorer_proba(scorer: ProbaScorer, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
    """``predict_proba`` with precomputed embeddings when the scorer can use them."""
    if embeddings is not None and accepts_embeddings(scorer):
        return np.asarray(scorer.predict_proba(texts, embeddings=embeddings), dtype=np.float64)  # type: ignore[call-arg]
    return np.asarray(scorer.predict_proba(texts), dtype=np.float64)


def margins(unit_proba: np.ndarray, target: int) -> np.ndarray:
    """Per-unit strength toward column ``target``: ``p[target] - max(p[other])``."""
    p = np.asarray(unit_proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise HighlightError(f"expected probabilities of shape (n_units, n_levels>=2), found {p.shape}")
    if not 0 <= target < p.shape[1]:
        raise HighlightError(f"target column {target} is outside the {p.shape[1]} levels")
    rivals = np.delete(p, target, axis=1).max(axis=1)
    return p[:, target] - rivals


def rank_highlights(
    units: Sequence[Unit],
    unit_proba: np.ndarray,
    target: int,
    k: int = 3,
    counter: bool = True,
) -> list[Highlight]:
    """The ``k`` strongest supporting units (strength > 0) then the ``k`` strongest counter units (< 0).

    Ties keep document order, so results are deterministic.
    """
    if len(units) != len(unit_proba):
        raise HighlightError(f"{len(units)} units but {len(unit_proba)} probability rows")
    if k <= 0 or not units:
        return []
    s = margins(unit_proba, target)
    order = np.argsort(-s, kind="stable")
    out = [_hl(units[i], s[i], "support") for i in order[:k] if s[i] > 0]
    if counter:
        order_c = np.argsort(s, kind="stable")
        out += [_hl(units[i], s[i], "counter") for i in order_c[:k] if s[i] < 0]
    return out


def _hl(u: Unit, strength: float, kind: Literal["support", "counter"]) -> Highlight:
    return Highlight(u.start, u.end, u.text, float(strength), kind, u.field, u.label)


def highlight_units(
    scorer: ProbaScorer,
    units: Sequence[Unit],
    k: int = 3,
    target: int | None = None,
    doc_proba: np.ndarray | None = None,
    unit_embeddings: np.ndarray | None = None,
) -> tuple[list[Highlight], np.ndarray]:
    """Score the units with ``scorer`` and rank them toward ``target`` (default: argmax of ``doc_proba``).

    Returns the highlights and the per-unit strengths (document order), so callers can show a heat map.
    """
    if target is None:
        if doc_proba is None:
            raise HighlightError("give the target level column or the document's probabilities")
        target = int(np.argmax(doc_proba))
    if not units:
        return [], np.zeros(0)
    p = scorer_proba(scorer, [u.scored_text for u in units], unit_embeddings)
    return rank_highlights(units, p, target, k), margins(p, target)
