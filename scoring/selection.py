"""Which submissions humans should score first: diverse over the embedding space, weighted by uncertainty.

Why this method: with no or few scores, the first human scores are the scarcest resource. Two things make
a score teach the model much: the text is *unlike* the texts already scored (a second score on a near
duplicate adds little), and the model is *unsure* about it. We use greedy k-center selection, the
core-set approach of Sener & Savarese (2018, "Active Learning for Convolutional Neural Networks: A
Core-Set Approach", ICLR), with each candidate's distance to the nearest already-chosen text multiplied
by its uncertainty, as in uncertainty-weighted core-sets (cf. BADGE, Ash et al. 2020, which weights
diversity by the gradient magnitude a label would cause).

* Space: the unit text embedding joined with the model's expected score (scaled to the embedding's
  spread), so the chosen texts also cover the whole scale, not only the topics: a scorer cannot learn
  where the top level starts from texts that all sit in the middle.
* Uncertainty: the variance of the level distribution divided by the largest variance the scale
  allows (1 = the model cannot tell the ends apart).
* Outliers and representativeness: plain k-center picks the strangest texts first (the empty answer,
  the pasted essay), which teach a model little about the texts it will meet. Candidates are the texts
  whose distance to their 10th nearest neighbour is below the 95th percentile (the rest stay in the
  backlog for people), and each weight is also multiplied by the text's density (inverse mean distance to
  its 20 nearest neighbours, at most 1), so a pick stands for many texts, as in typicality-based selection
  for small budgets (Hacohen et al. 2022, "Active Learning on a Budget"). Chosen on ASAP-AES training
  ids (``scoring bench coldstart --dev``) over plain k-center and score-stratified k-center.
* Start: one of the candidates nearest the batch centroid (weighted by uncertainty), drawn with
  ``seed``; the same backlog, model and seed give the same queue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class SelectionError(ValueError):
    """A selection request that cannot be met (too few texts, a bad count)."""


@dataclass(frozen=True)
class Pick:
    """One chosen submission: its row in the backlog, the order it was picked, and why."""

    row: int
    rank: int
    uncertainty: float
    distance: float  # to the nearest text chosen before it (inf for the first)


def ordinal_uncertainty(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Variance of each row's level distribution over the largest variance possible on the scale (0-1)."""
    c = np.asarray(classes, float)
    mean = proba @ c
    var = proba @ (c**2) - mean**2
    vmax = ((c.max() - c.min()) / 2) ** 2 or 1.0
    return np.clip(var / vmax, 0.0, 1.0)


def _neighbourhood(X: np.ndarray, k: int = 10, quantile: float = 0.95, m: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Per text: whether its k-th nearest neighbour is not unusually far (an inlier), and its density.

    Density is the inverse mean distance to its ``m`` nearest neighbours, scaled to a maximum of 1.
    """
    n = len(X)
    if n <= max(k, m) + 1:
        return np.ones(n, bool), np.ones(n)
    kth, near = np.empty(n), np.empty(n)
    for a in range(0, n, 1024):
        d = np.sqrt(_sqdist(X[a : a + 1024], X))
        part = np.partition(d, max(k, m), axis=1)
        kth[a : a + 1024] = part[:, k]
        near[a : a + 1024] = np.sort(part[:, : m + 1], axis=1)[:, 1:].mean(axis=1)
    dens = 1.0 / (near + 1e-9)
    return kth <= np.quantile(kth, quantile), dens / dens.max()


def _sqdist(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.maximum((A**2).sum(1)[:, None] + (B**2).sum(1)[None, :] - 2 * A @ B.T, 0.0)


def features(embeddings: np.ndarray, scores: np.ndarray, score_weight: float = 1.0) -> np.ndarray:
    """The selection space: embeddings joined with expected scores (0-1 per criterion) scaled to their spread."""
    E = np.asarray(embeddings, dtype=np.float64)
    S = np.asarray(scores, dtype=np.float64).reshape(len(E), -1)
    spread = float(np.sqrt(E.var(axis=0).sum())) or 1.0
    return np.hstack([E, score_weight * spread * S / np.sqrt(S.shape[1])])


def select(
    embeddings: np.ndarray,
    proba: np.ndarray,
    classes: np.ndarray,
    n: int,
    seed: int = 13,
    exclude: np.ndarray | None = None,
    score_weight: float = 1.0,
    floor: float = 0.0,
) -> list[Pick]:
    """Pick ``n`` rows by uncertainty-weighted greedy k-center for one criterion (see the module docstring).

    ``exclude``: a boolean mask of rows already scored (they count as chosen: new picks keep away from
    them, and are never picked again).
    """
    E = np.asarray(embeddings, dtype=np.float64)
    P = np.asarray(proba, dtype=np.float64)
    if E.ndim != 2 or P.ndim != 2 or len(E) != len(P):
        raise SelectionError(f"expected one embedding and one probability row per text, found {len(E)} and {len(P)}")
    c = np.asarray(classes, float)
    score = (P @ c - c.min()) / ((c.max() - c.min()) or 1.0)
    return select_rows(features(E, score, score_weight), ordinal_uncertainty(P, c), n, seed, exclude, floor)


def select_rows(
    X: np.ndarray, uncertainty: np.ndarray, n: int, seed: int = 13, exclude: np.ndarray | None = None,
    floor: float = 0.0,
) -> list[Pick]:
    """Greedy k-center over the rows of ``X``, each candidate's distance weighted by its uncertainty and density."""
    X = np.asarray(X, dtype=np.float64)
    done = np.zeros(len(X), bool) if exclude is None else np.asarray(exclude, bool)
    if len(done) != len(X) or len(uncertainty) != len(X):
        raise SelectionError(f"expected one uncertainty and one exclusion flag per text ({len(X)}), found "
                             f"{len(uncertainty)} and {len(done)}")
    free = int((~done).sum())
    if n < 1:
        raise SelectionError(f"expected a number of submissions to select of at least 1, found {n}")
    if n > free:
        raise SelectionError(f"asked for {n} submissions, but the backlog holds only {free} not yet scored")
    inlier, density = _neighbourhood(X)
    raw_u = np.asarray(uncertainty, dtype=np.float64)
    u = np.maximum(raw_u, floor) * density
    ok = inlier & ~done
    if ok.sum() < n:  # a small backlog: outliers are allowed back in rather than picking fewer
        ok = ~done
    rng = np.random.default_rng(seed)
    tiebreak = rng.random(len(X)) * 1e-9
    mind = np.full(len(X), np.inf)
    if done.any():
        for a in range(0, len(X), 1024):
            mind[a : a + 1024] = _sqdist(X[a : a + 1024], X[done]).min(axis=1)
    picks: list[Pick] = []
    for rank in range(n):
        if np.isinf(mind).all():  # nothing chosen yet: one of the most typical, most uncertain texts
            centre = X[ok].mean(axis=0)
            gain = np.where(ok, u / (1.0 + _sqdist(X, centre[None, :])[:, 0]), -np.inf)
            top = np.argsort(-gain, kind="stable")[: max(1, min(20, int(ok.sum()) // 20))]
            i = int(rng.choice(top))
        else:
            gain = np.where(ok, u * np.sqrt(mind) + tiebreak, -np.inf)
            i = int(np.argmax(gain))
        picks.append(Pick(row=i, rank=rank + 1, uncertainty=round(float(raw_u[i]), 4),
                          distance=float(np.sqrt(mind[i]))))
        ok[i] = False
        mind = np.minimum(mind, _sqdist(X, X[i : i + 1])[:, 0])
    return picks
