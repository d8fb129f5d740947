"""Sentence spans with character offsets, and encoder windows that never split a unit.

Why offsets: a highlight is only useful to an assessor if it can be drawn on the text the teacher
submitted, so every sentence is a ``(start, end)`` span into the original string, whitespace-trimmed.
Why a regex splitter (not pysbd / nltk): reflections and transcripts are short, informal prose; a splitter
that knows common abbreviations, decimals and initials is enough, costs no dependency and never moves
characters.

Why unit windows: the encoder reads at most ``encoder.window`` tokens; packing whole sentences or
turns into each window (splitting only a unit that alone exceeds the window) keeps every utterance
intact inside one embedding, then windows are pooled by token count like ``Encoder.encode`` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np

_ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "eg", "ie", "cf", "no",
    "fig", "approx", "min", "max", "mt", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec", "p", "pp", "vol", "ch", "sec", "gr", "yr", "yrs", "ca", "al",
}  # fmt: skip
# A boundary: terminal punctuation (plus closing quotes/brackets) then whitespace, or a blank line.
_BOUNDARY = re.compile(r"([.!?…]+[\"'”’)\]]*)(\s+)|(\n\s*\n)|(\n)(?=\s*(?:[-*•]|\d+[.)])\s)")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text``, trimmed, in order; ``text[start:end]`` is the sentence.

    A period after a known abbreviation ("Ms.", "e.g."), a single capital initial ("J.") or inside a
    number ("3.5") does not end a sentence, nor does a quoted question or exclamation the sentence goes on
    after (``She asked "why?" and waited``); a blank line or a bulleted new line always does.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if m.group(1):
            cut = m.end(1)
            before = text[start : m.start(1)]
            word = before.rsplit(None, 1)[-1] if before.split() else ""
            token = word.lower().rstrip(".")
            if m.group(1).startswith(".") and len(m.group(1).rstrip("\"'”’)]")) == 1:
                if token in _ABBREV or (len(word) == 1 and word.isupper()):
                    continue
                nxt = text[m.end() : m.end() + 1]
                if nxt and nxt.islower():
                    continue  # "approx. three" or a lower-case run-on: not a boundary
            elif m.group(1)[-1] in "\"'”’)]" and text[m.end() : m.end() + 1].islower():
                continue  # a quoted question inside a sentence: I asked 'why do you think so?' and waited
        else:
            cut = m.start()
        _push(text, start, cut, spans)
        start = m.end()
    _push(text, start, len(text), spans)
    return spans


def _push(text: str, a: int, b: int, out: list[tuple[int, int]]) -> None:
    seg = text[a:b]
    if not seg.strip():
        return
    a2 = a + (len(seg) - len(seg.lstrip()))
    b2 = a + len(seg.rstrip())
    out.append((a2, b2))


class _WindowEncoder(Protocol):
    window: int
    tokenizer: object
    dim: int

    def chunk(self, text: str) -> list: ...

    def encode_windows(self, windows: list[str], show_progress: bool = False) -> np.ndarray: ...


def token_counts(encoder: _WindowEncoder, texts: Sequence[str]) -> list[int]:
    """Word pieces per text (no special tokens), in one tokenizer call."""
    if not texts:
        return []
    enc = encoder.tokenizer(list(texts), add_special_tokens=False, verbose=False)  # type: ignore[operator]
    return [len(ids) for ids in enc["input_ids"]]


def pack_units(encoder: _WindowEncoder, units: Sequence[str], sep: str = "\n") -> list[tuple[str, int]]:
    """Windows ``(text, n_tokens)`` of consecutive whole units within ``encoder.window`` tokens.

    A unit longer than the window is cut by the encoder's own token windows (the only case a unit is
    split); nothing is dropped, so every token of every unit is read once (or twice in an overlap).
    """
    counts = token_counts(encoder, units)
    windows: list[tuple[str, int]] = []
    cur: list[str] = []
    cur_n = 0
    for u, n in zip(units, counts, strict=True):
        if not u.strip():
            continue
        if n > encoder.window:
            if cur:
                windows.append((sep.join(cur), cur_n))
                cur, cur_n = [], 0
            windows.extend((u[c.start : c.end], max(c.n_tokens, 1)) for c in encoder.chunk(u))
            continue
        if cur and cur_n + n + 1 > encoder.window:
            windows.append((sep.join(cur), cur_n))
            cur, cur_n = [], 0
        cur.append(u)
        cur_n += n + (1 if len(cur) > 1 else 0)
    if cur:
        windows.append((sep.join(cur), cur_n))
    return windows


def encode_pooled(encoder: _WindowEncoder, groups: Sequence[Sequence[str]]) -> np.ndarray:
    """One unit vector per group of units: unit-packed windows embedded (cached) and pooled by tokens."""
    all_w: list[str] = []
    weights: list[int] = []
    bounds: list[tuple[int, int]] = []
    for units in groups:
        ws = pack_units(encoder, units)
        bounds.append((len(all_w), len(all_w) + len(ws)))
        all_w.extend(w for w, _ in ws)
        weights.extend(max(n, 1) for _, n in ws)
    vecs = encoder.encode_windows(all_w) if all_w else np.zeros((0, encoder.dim), dtype=np.float32)
    w = np.asarray(weights, dtype=np.float32)
    out = np.zeros((len(groups), encoder.dim), dtype=np.float32)
    for r, (a, b) in enumerate(bounds):
        if b > a:
            v = (vecs[a:b] * w[a:b, None]).sum(axis=0)
            norm = float(np.linalg.norm(v))
            out[r] = v / norm if norm > 0 else v
    return out
