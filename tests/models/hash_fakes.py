"""Test doubles for the model tests: a weight-free encoder and small leveled text sets.

The real encoder costs seconds per call; these tests check the machinery (selection, memos, pickles),
for which a deterministic bag-of-words embedding is enough.
"""

from __future__ import annotations

import hashlib

import numpy as np

LEVELS = [0, 1, 2, 3]
WORDS = {
    0: ["idk", "nothing", "dunno"],
    1: ["road", "hot", "tired"],
    2: ["road", "hot", "desert", "thirsty"],
    3: ["road", "hot", "desert", "thirsty", "because", "setting"],
}


class HashEncoder:
    """Each word adds one (``signed``: plus or minus one) to a hashed coordinate; rows have unit length."""

    name = "hash-test"
    version = "hash-test:fp32"

    def __init__(self, dim: int = 16, signed: bool = False) -> None:
        self.dim = dim
        self.signed = signed

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                h = int(hashlib.md5(w.encode()).hexdigest(), 16)
                out[i, h % self.dim] += -1.0 if self.signed and not (h >> 8) % 2 else 1.0
            out[i] /= np.linalg.norm(out[i]) or 1.0
        return out


def leveled_texts(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``n`` texts whose words reveal their level (one of LEVELS, drawn uniformly), each text unique."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(LEVELS), n)
    texts = [" ".join(rng.permutation(WORDS[int(v)])) + f" x{i}" for i, v in enumerate(y)]
    return texts, y
