"""Pre-scoring: every criterion of every submission, with a probability for every level.

This is the one function the CLI, the batch job and the API call; routing (policy) is applied on its
output, so scoring and deciding stay separately testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.artifact import ScoringModel
from models.scorers import decide
from scoring.evidence import criterion_text
from scoring.train import embed_unique


@dataclass
class CriterionResult:
    score: int
    probabilities: dict[int, float]
    extra: dict[str, Any] = field(default_factory=dict)  # route, reason, prediction_set, highlights...


@dataclass
class ScoredSubmission:
    id: str
    model_version: str
    criteria: dict[str, CriterionResult]

    def to_json(self) -> dict[str, Any]:
        """The stable output contract: one object per submission."""
        return {
            "id": self.id,
            "model_version": self.model_version,
            "criteria": {
                cid: {
                    "score": r.score,
                    "probabilities": {str(k): round(v, 6) for k, v in r.probabilities.items()},
                    **r.extra,
                }
                for cid, r in self.criteria.items()
            },
        }


def criterion_probabilities(model: ScoringModel, evidences: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Probability matrices per criterion (rows = submissions, columns = ascending levels)."""
    rubric = model.rubric
    texts = {c.id: [criterion_text(rubric, c, ev) for ev in evidences] for c in rubric.criteria}
    flat = [t for c in rubric.criteria for t in texts[c.id]]
    emb = embed_unique(model.encoder, flat)
    out: dict[str, np.ndarray] = {}
    for i, c in enumerate(rubric.criteria):
        n = len(evidences)
        out[c.id] = model.scorers[c.id].predict_proba(texts[c.id], embeddings=emb[i * n : (i + 1) * n])
    return out


def prescore(model: ScoringModel, ids: list[str], evidences: list[dict[str, Any]]) -> list[ScoredSubmission]:
    """Score submissions; the score per criterion follows the scorer's own decision rule."""
    probas = criterion_probabilities(model, evidences)
    results = [ScoredSubmission(i, model.version, {}) for i in ids]
    for c in model.rubric.criteria:
        P = probas[c.id]
        scorer = model.scorers[c.id]
        scores = scorer.decide(P) if hasattr(scorer, "decide") else decide(P, np.asarray(c.scores))
        for r, row, s in zip(results, P, scores, strict=True):
            r.criteria[c.id] = CriterionResult(int(s), {lv: float(p) for lv, p in zip(c.scores, row, strict=True)})
    return results
