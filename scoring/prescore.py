"""Pre-scoring: every criterion of every submission, with a probability for every level.

This is the one function the CLI, the batch job and the API call; routing (policy) is applied on its
output, so scoring and deciding stay separately testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.artifact import ScoringModel
from models.cache import text_key
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
    decision: Any = None  # scoring.credential.Decision, when the rubric has an award rule and routing ran

    def to_json(self) -> dict[str, Any]:
        """The stable output contract: one object per submission."""
        out = {
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
        if self.decision is not None:
            out["decision"] = self.decision.to_json()
        return out


def criterion_probabilities(model: ScoringModel, evidences: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Probability matrices per criterion (rows = submissions, columns = ascending levels).

    Why a probability cache: a saved model version never changes, so the probabilities it gives a text
    never change either; re-running an unchanged backlog (after a crash that lost outputs, or to route
    it under a new policy) then skips the encoder and every feature. Keys are (model version, criterion,
    text hash) in the embedding cache's file; values are stored as exact float64 bytes, so a cached
    re-run writes byte-identical output.
    """
    rubric = model.rubric
    n = len(evidences)
    texts = {c.id: [criterion_text(rubric, c, ev) for ev in evidences] for c in rubric.criteria}
    cache = getattr(model.encoder, "cache", None) if model.version else None
    keys: dict[str, list[str]] = {}
    out: dict[str, np.ndarray] = {}
    todo: dict[str, list[int]] = {}
    for c in rubric.criteria:
        if cache is None:
            todo[c.id] = list(range(n))
            continue
        keys[c.id] = [text_key(f"proba|{model.version}|{c.id}", t) for t in texts[c.id]]
        found = cache.get_many(keys[c.id])
        out[c.id] = np.zeros((n, len(c.scores)))
        todo[c.id] = []
        for i, k in enumerate(keys[c.id]):
            if k in found:
                out[c.id][i] = found[k].view(np.float64)
            else:
                todo[c.id].append(i)
    # Encode only for scorers that read embeddings (a fine-tuned scorer reads the raw text).
    embeds = [c for c in rubric.criteria if getattr(model.scorers[c.id], "uses_embeddings", True)]
    flat = [texts[c.id][i] for c in embeds for i in todo[c.id]]
    emb = embed_unique(model.encoder, flat)
    start = 0
    for c in rubric.criteria:
        idx = todo[c.id]
        if not idx:
            continue
        E = None
        if c in embeds:
            E, start = emb[start : start + len(idx)], start + len(idx)
        P = model.scorers[c.id].predict_proba([texts[c.id][i] for i in idx], embeddings=E)
        if cache is None:
            out[c.id] = P
            continue
        out[c.id][idx] = P
        cache.put_many((keys[c.id][i], np.ascontiguousarray(row, dtype=np.float64).view(np.float32)) for i, row in zip(idx, P, strict=True))
    return out


def prescore(model: ScoringModel, ids: list[str], evidences: list[dict[str, Any]]) -> list[ScoredSubmission]:
    """Score submissions; the score per criterion follows the scorer's own decision rule."""
    probas = criterion_probabilities(model, evidences)
    results = [ScoredSubmission(i, model.version, {}) for i in ids]
    for c in model.rubric.criteria:
        P = probas[c.id]
        scorer = model.scorers[c.id]
        scores = scorer.decide(P)  # every scorer's own rule (models.contract.CriterionScorer)
        for r, row, s in zip(results, P, scores, strict=True):
            r.criteria[c.id] = CriterionResult(int(s), {lv: float(p) for lv, p in zip(c.scores, row, strict=True)})
    return results
