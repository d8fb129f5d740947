"""Synthetic stand-ins for the routing tests (a module of its own so pickle can find the classes): no real encoder, no real data, runs in well under a second.

A text carries a noisy reading of its latent quality ("quality=2.37 ..."); the fake encoder reads it back
as a one-number embedding; the fake scorer turns it into deliberately OVER-confident level probabilities
(a sharp softmax), so calibration has something real to fix; human scores are the latent quality plus
rater noise. Confidence is therefore informative, as with a real scorer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from models.scorers import decide

LEVELS = [0, 1, 2, 3, 4]


class FakeEncoder:
    """Deterministic 'embedding': the quality number written in the text (plus a constant)."""

    name = "fake"
    version = "fake:fp32"
    dim = 2

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        q = [float(re.search(r"quality=(-?[0-9.]+)", t).group(1)) for t in texts]  # type: ignore[union-attr]
        return np.column_stack([q, np.ones(len(q))]).astype(np.float32)


class OverconfidentScorer:
    """Scorer contract over texts; probabilities peak far too sharply around the quality reading."""

    def __init__(self, levels: list[int] = LEVELS, sharpness: float = 3.0, encoder: Any = None):
        self.classes_ = np.asarray(levels)
        self.sharpness = sharpness
        self.encoder = encoder

    def predict_proba(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        emb = embeddings if embeddings is not None else self.encoder.encode(list(texts))
        q = np.asarray(emb)[:, 0]
        logits = -self.sharpness * (self.classes_[None, :] - q[:, None]) ** 2
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        return decide(proba, self.classes_)


def synthetic(n: int, seed: int, rater_sd: float = 0.45) -> dict[str, Any]:
    """Texts, resolved human score, two raters; reading noise varies per item (some items are hard).

    ``rater_sd``: each rater's noise around the latent quality (larger: humans agree less with each other,
    so the machine's confident items clear the human bar by a wider margin)."""
    rng = np.random.default_rng(seed)
    latent = rng.uniform(-0.4, 4.4, n)
    hard = rng.random(n) < 0.4
    reading = latent + rng.normal(0, np.where(hard, 1.0, 0.2))
    r1 = np.clip(np.round(latent + rng.normal(0, rater_sd, n)), 0, 4).astype(int)
    r2 = np.clip(np.round(latent + rng.normal(0, rater_sd, n)), 0, 4).astype(int)
    y = np.clip(np.round(latent + rng.normal(0, 0.25, n)), 0, 4).astype(int)
    ids = [f"s{seed}-{i}" for i in range(n)]
    texts = [f"quality={v:.4f} essay {i}" for i, v in zip(ids, reading, strict=True)]
    return {"ids": ids, "texts": texts, "y": y, "r1": r1, "r2": r2}


RUBRIC = {
    "id": "synthetic-routing",
    "version": 1,
    "title": "Synthetic rubric for routing tests",
    "evidence": ["essay"],
    "criteria": [
        {"id": "quality", "title": "Quality", "scale": {"min": 0, "max": 4}},
        {"id": "style", "title": "Style", "scale": {"min": 0, "max": 4}},
    ],
}


def write_jsonl(path: Path, ids: list[str], texts: list[str]) -> Path:
    import json

    with path.open("w", encoding="utf-8") as fh:
        for i, t in zip(ids, texts, strict=True):
            fh.write(json.dumps({"id": i, "essay": t}) + "\n")
    return path


def backlog_file(path: Path, n: int = 24, seed: int = 3) -> Path:
    """A synthetic backlog of ``n`` essays as JSONL (``id``, ``essay``)."""
    d = synthetic(n, seed=seed)
    return write_jsonl(path, d["ids"], d["texts"])


def score_into_store(model: Any, policy: Any, store: Any, data: Path, out: Path) -> Any:
    """``scoring score --store`` as the batch engine runs it, for issuer ``issuer-a`` (blocks of 5)."""
    from scoring.ingest import ColumnMap, infer_columns, read_records
    from scoring.usecases.backlog import score_backlog

    cols = infer_columns(model.rubric, ColumnMap(id="id"))
    return score_backlog(model, read_records(data, model.rubric, cols), data, out, read_tag="t", block_size=5,
                         policy=policy, store=store, owner="issuer-a")
