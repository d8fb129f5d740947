"""The one scorer contract every criterion scorer honours (ensemble, zero-shot, fine-tuned, calibrated).

A scorer behaves like a scikit-learn classifier over a criterion's ordered levels, so routing, calibration,
the batch engine and the API treat them alike:

* ``classes_``: the levels, ascending;
* ``predict_proba(X, embeddings=None)``: one row per text, one column per level in ``classes_`` order,
  rows summing to 1; ``embeddings`` (the encoder's output for ``X``) saves re-encoding, same result;
* ``decide(P)``: one level per row of (possibly calibrated) probabilities. The documented rule: the
  decision is a level of ``classes_`` and is monotone — moving probability mass to higher levels never
  lowers it (expected score, optionally cut by fitted thresholds; never a bare argmax over the levels);
* ``predict(X) == decide(predict_proba(X))``;
* pickling keeps everything but the encoder (re-attached by the loader through ``encoder``).

The shared suite in ``tests/models/test_scorer_contract.py`` checks each shipped scorer against this.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class CriterionScorer(Protocol):
    """What every scorer of a criterion provides (see the module docstring for the rules)."""

    @property
    def classes_(self) -> np.ndarray: ...

    def predict_proba(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray: ...

    def decide(self, proba: np.ndarray) -> np.ndarray: ...

    def predict(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray: ...


def uses_embeddings(scorer: Any) -> bool:
    """Whether a scorer reads the shared encoder's embeddings (a fine-tuned scorer reads the raw text)."""
    return bool(getattr(scorer, "uses_embeddings", True))
