"""Benchmark: transcript evidence and highlights on TalkMoves, reflection categories on CEReD.

What it measures, and why this way:

* Lessons, not sentences, are split into train/test (fixed seed): sentences of one lesson share a
  teacher, a topic and a transcriber, so a sentence split would leak them.
* Each lesson is written out as a plain ``Speaker: text`` transcript and parsed back with
  ``scoring.transcripts`` (so parsing, speaker roles and offsets are exercised on real, messy labels);
  ``role_agreement`` is the share of turns whose inferred role matches whether annotators coded the
  turn as a teacher turn.
* For each "Accountable talk" move, a turn-level scorer (sentence embeddings + word n-grams, logistic
  regression; C chosen on a validation split of TRAIN lessons) learns from train lessons' teacher
  turns with the human codes as labels. On each test lesson the highlight ranking (strength toward
  "move present", ``models.highlights``) over the lesson's teacher-role turns gives
  ``highlight_precision_at_5``: the share of the top 5 that carry the human code, averaged over the
  test lessons where the move occurs at all, next to ``base_rate``: the same lessons' share of coded
  turns (what 5 random teacher turns would score).
* ``seconds_per_9000_words``: one long transcript (~9,000 words), cold embedding cache, parsed, scored
  and highlighted for every criterion through the same door the CLI uses (``scoring.highlights``).
* CEReD: sentence categories, trained on train, C chosen on val, macro-F1 on test (never tuned on test).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, f1_score

from models.highlights import margins
from rubrics.schema import Rubric, load_rubric
from scoring.transcripts import Transcript, normalise_speaker, parse_transcript

# TalkMoves teacher codes (coding manual numbering) -> the bundled rubric's criterion ids.
MOVES: dict[int, str] = {
    2: "keeping_together",
    3: "relating",
    5: "revoicing",
    8: "pressing_accuracy",
    9: "pressing_reasoning",
}
RUBRIC_PATH = Path(__file__).resolve().parent.parent / "rubrics" / "bundled" / "accountable-talk-moves.yaml"
_TAG = re.compile(r"^\s*(\d)(?!\d)")
_SPEAKER_OK = re.compile(r"^[^\W\d_][\w.'’ /&-]{0,38}$")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})$")

# CEReD categories -> depth of reflection (documented in the README section): 0 not about the
# practice, 1 describes, 2 evaluates, 3 reflects (reasons, other perspectives, lessons, intentions).
DEPTH = {
    "Other": 0,
    "Experience": 1,
    "Feeling": 1,
    "Belief": 2,
    "Difficulty": 2,
    "Reflection": 3,
    "Perspective": 3,
    "Learning": 3,
    "Intention": 3,
}


def normalise_tag(tag: str) -> int | None:
    """``"8 - press for  accuracy"``, ``"8 - Press for Accuracy"``, ``"7\\"`` -> 8, 8, 7; junk -> None."""
    m = _TAG.match(str(tag))
    return int(m.group(1)) if m else None


@dataclass
class Lesson:
    """One TalkMoves lesson as a transcript plus the human codes of each written line (= turn)."""

    file: str
    text: str
    codes: list[set[int]] = field(default_factory=list)  # per line
    teacher_coded: list[bool] = field(default_factory=list)  # per line: annotators coded a teacher move
    transcript: Transcript | None = None

    @property
    def n_words(self) -> int:
        return len(self.text.split())


def _speaker(label: str) -> str:
    s = normalise_speaker(label)
    return s if _SPEAKER_OK.match(s) else "Unknown"


def load_lessons(data_dir: str | Path, unit: str = "utterance") -> list[Lesson]:
    """Every lesson, written as a plain transcript (one line per turn, timestamps where known).

    ``unit="utterance"`` writes each coded row (the annotators' unit, about a sentence) as its own
    ``Speaker: text`` line, so a parsed turn is one coded utterance; ``unit="turn"`` merges the rows
    of one numbered speaker turn into one line (a turn then carries every code of its rows).
    """
    if unit not in ("utterance", "turn"):
        raise ValueError(f"unit must be 'utterance' or 'turn', found {unit!r}")
    path = Path(data_dir) / "talkmoves_transcripts.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: pass --data-dir pointing at the talkmoves folder")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    stamp = df["TimeStamp"].where(df["TimeStamp"] != "", df.get("TImeStamp", ""))
    df = df.assign(_stamp=stamp)
    lessons: list[Lesson] = []
    for file, g in df.groupby("file", sort=True):
        # Consecutive rows with the same key form one written line: [key, stamp, texts, codes, coded].
        groups: list[list[Any]] = []
        for row, (spk, turn, sent, ttag, stamp) in enumerate(
            zip(g["Speaker"], g["Turn"], g["Sentence"], g["Teacher Tag"], g["_stamp"], strict=True)
        ):
            text = " ".join(str(sent).split())
            if not text:
                continue
            key = (_speaker(spk), turn.strip() if unit == "turn" else str(row))
            if not groups or groups[-1][0] != key:
                groups.append([key, stamp, [], set(), False])
            grp = groups[-1]
            grp[2].append(text)
            code = normalise_tag(ttag)
            if code is not None:
                grp[3].add(code)
            grp[4] = grp[4] or bool(ttag.strip())
        lines: list[str] = []
        for (speaker, _), stamp, texts, _codes, _coded in groups:
            m = _CLOCK.search(stamp.strip())
            ts = f"[{int(m.group(1)):02d}:{m.group(2)}:{m.group(3)}] " if m else ""
            lines.append(f"{ts}{speaker}: {' '.join(texts)}")
        if lines:
            lessons.append(
                Lesson(
                    str(file), "\n".join(lines) + "\n", [grp[3] for grp in groups], [grp[4] for grp in groups]
                )
            )
    return lessons


def split_lessons(lessons: list[Lesson], seed: int, test_share: float) -> tuple[list[Lesson], list[Lesson]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lessons))
    n_test = max(1, round(test_share * len(lessons)))
    test_idx = set(order[:n_test].tolist())
    return [x for i, x in enumerate(lessons) if i not in test_idx], [
        x for i, x in enumerate(lessons) if i in test_idx
    ]


def turn_labels(lesson: Lesson) -> tuple[list[int], list[set[int]], list[bool]]:
    """Per parsed turn: its line's codes and whether annotators coded it as a teacher turn.

    Turns map back to written lines by line number (a line the parser merged into the previous turn
    as a continuation contributes its codes to that turn).
    """
    assert lesson.transcript is not None
    line_of = [t.line for t in lesson.transcript.turns]
    codes: list[set[int]] = []
    coded: list[bool] = []
    bounds = line_of[1:] + [len(lesson.codes) + 1]
    for a, b in zip(line_of, bounds, strict=True):
        cs: set[int] = set()
        tc = False
        for ln in range(a, b):
            cs |= lesson.codes[ln - 1]
            tc = tc or lesson.teacher_coded[ln - 1]
        codes.append(cs)
        coded.append(tc)
    return line_of, codes, coded


class TurnMoveScorer:
    """Yes/no scorer for one talk move over turn texts: embeddings + word n-gram TF-IDF, logistic head.

    Honours the project's scorer contract (``predict_proba(texts, embeddings=None)``, columns in
    ascending level order 0, 1) so ``models.highlights`` and ``scoring.highlights`` use it unchanged.
    """

    def __init__(self, encoder: Any, C: float = 1.0):
        self.encoder = encoder
        self.C = C
        self.classes_ = np.array([0, 1])

    def _x(self, texts: list[str], emb: np.ndarray | None) -> sparse.csr_matrix:
        emb = self.encoder.encode(texts) if emb is None else emb
        return sparse.hstack([sparse.csr_matrix(emb), self.tfidf_.transform(texts)]).tocsr()

    def fit(self, texts: list[str], y: Any, embeddings: np.ndarray | None = None) -> TurnMoveScorer:
        self.tfidf_ = TfidfVectorizer(ngram_range=(1, 2), min_df=3, max_features=30000, sublinear_tf=True)
        self.tfidf_.fit(texts)
        self.clf_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=3000)
        self.clf_.fit(self._x(texts, embeddings), np.asarray(y, dtype=int))
        return self

    def predict_proba(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.clf_.predict_proba(self._x(list(texts), embeddings))


def _p_at_k(scores: np.ndarray, hits: np.ndarray, k: int) -> float:
    order = np.argsort(-scores, kind="stable")[:k]
    return float(hits[order].mean())


def bench_talkmoves(
    data_dir: str | Path,
    encoder_factory: Callable[[Path | None], Any],
    cache_dir: Path,
    seed: int = 13,
    test_share: float = 0.2,
    max_lessons: int | None = None,
    log: Callable[[str], None] = print,
    unit: str = "utterance",
    max_train_turns: int | None = 40000,
) -> dict[str, Any]:
    """Train on train lessons, measure highlights on test lessons, time one long transcript."""
    t0 = time.perf_counter()
    lessons = load_lessons(data_dir, unit)
    if max_lessons:
        lessons = lessons[:max_lessons]
    for les in lessons:
        les.transcript = parse_transcript(les.text, format="plain")
    n_lines = sum(len(le.codes) for le in lessons)
    n_turns = sum(len(le.transcript.turns) for le in lessons if le.transcript)
    train, test = split_lessons(lessons, seed, test_share)
    rng = np.random.default_rng(seed + 1)
    val_idx = set(rng.permutation(len(train))[: max(1, len(train) // 8)].tolist())
    fit_l = [x for i, x in enumerate(train) if i not in val_idx]
    val_l = [x for i, x in enumerate(train) if i in val_idx]
    log(
        f"lessons {len(lessons)} (train {len(fit_l)}, val {len(val_l)}, test {len(test)}); "
        f"lines {n_lines}, parsed turns {n_turns}; load+parse {time.perf_counter() - t0:.1f}s"
    )

    # Role inference vs annotators: a turn is a teacher turn if annotators gave it a teacher code.
    agree = total = 0
    for les in lessons:
        _, _, coded = turn_labels(les)
        for t, c in zip(les.transcript.turns, coded, strict=True):  # type: ignore[union-attr]
            agree += (t.role == "teacher") == c
            total += 1
    role_agreement = agree / max(total, 1)
    log(f"role agreement (parsed role == annotators coded a teacher move): {role_agreement:.3f}")

    encoder = encoder_factory(cache_dir)

    def teacher_rows(ls: list[Lesson], by: str) -> tuple[list[str], list[set[int]], list[int]]:
        """Texts, codes, lesson index of teacher turns: by annotators' coding (train) or parsed role (test)."""
        texts, codes, owner = [], [], []
        for li, les in enumerate(ls):
            _, cs, coded = turn_labels(les)
            for t, c, tc in zip(les.transcript.turns, cs, coded, strict=True):  # type: ignore[union-attr]
                if (tc if by == "coded" else t.role == "teacher") and t.clean_text:
                    texts.append(t.clean_text)
                    codes.append(c)
                    owner.append(li)
        return texts, codes, owner

    tr_x, tr_c, _ = teacher_rows(fit_l, "coded")
    if max_train_turns and len(tr_x) > max_train_turns:  # bounded training cost; a fixed-seed sample
        keep = np.sort(np.random.default_rng(seed + 2).permutation(len(tr_x))[:max_train_turns])
        tr_x, tr_c = [tr_x[i] for i in keep], [tr_c[i] for i in keep]
    va_x, va_c, _ = teacher_rows(val_l, "coded")
    te_x, te_c, te_owner = teacher_rows(test, "role")
    t1 = time.perf_counter()
    emb_tr, emb_va, emb_te = (encoder.encode(x) for x in (tr_x, va_x, te_x))
    log(f"encoded {len(tr_x) + len(va_x) + len(te_x)} teacher turns in {time.perf_counter() - t1:.1f}s")

    te_owner_a = np.asarray(te_owner)
    results: dict[str, Any] = {}
    scorers: dict[str, TurnMoveScorer] = {}
    for code, cid in MOVES.items():
        y_tr = np.array([code in c for c in tr_c], dtype=int)
        y_va = np.array([code in c for c in va_c], dtype=int)
        best = (-1.0, 1.0)
        for C in (0.1, 0.3, 1.0, 3.0):
            s = TurnMoveScorer(encoder, C).fit(tr_x, y_tr, embeddings=emb_tr)
            ap = average_precision_score(y_va, s.predict_proba(va_x, embeddings=emb_va)[:, 1])
            best = max(best, (ap, C))
        scorer = TurnMoveScorer(encoder, best[1]).fit(
            tr_x + va_x, np.concatenate([y_tr, y_va]), embeddings=np.vstack([emb_tr, emb_va])
        )
        scorers[cid] = scorer
        y_te = np.array([code in c for c in te_c], dtype=int)
        strength = margins(scorer.predict_proba(te_x, embeddings=emb_te), 1)
        p5, base = [], []
        for li in range(len(test)):
            m = te_owner_a == li
            if y_te[m].sum() == 0:
                continue
            p5.append(_p_at_k(strength[m], y_te[m], 5))
            base.append(float(y_te[m].mean()))
        r = {
            "code": code,
            "C": best[1],
            "val_ap": round(best[0], 4),
            "test_lessons_with_move": len(p5),
            "highlight_precision_at_5": round(float(np.mean(p5)), 4) if p5 else None,
            "base_rate": round(float(np.mean(base)), 4) if base else None,
            "lift": round(float(np.mean(p5)) / float(np.mean(base)), 2)
            if base and np.mean(base) > 0
            else None,
            "turn_average_precision": round(float(average_precision_score(y_te, strength)), 4)
            if y_te.sum()
            else None,
            "turn_prevalence": round(float(y_te.mean()), 4),
        }
        results[cid] = r
        log(
            f"{cid:<20} P@5 {r['highlight_precision_at_5']}  base {r['base_rate']}  lift x{r['lift']}  "
            f"AP {r['turn_average_precision']} (prevalence {r['turn_prevalence']}, C={best[1]}, "
            f"{len(p5)} test lessons)"
        )

    timing = time_long_transcript(test, scorers, encoder_factory, log)
    return {
        "lessons": len(lessons),
        "train_lessons": len(fit_l) + len(val_l),
        "test_lessons": len(test),
        "seed": seed,
        "role_agreement": round(role_agreement, 4),
        "criteria": results,
        **timing,
    }


def long_transcript(lessons: list[Lesson], words: int = 9000) -> str:
    """The lesson closest to ``words`` words, extended with the next closest until it reaches that many."""
    out: list[str] = []
    n = 0
    for les in sorted(lessons, key=lambda x: (abs(x.n_words - words), x.file)):
        out.append(les.text)
        n += les.n_words
        if n >= words:
            break
    return "".join(out)


def time_long_transcript(
    test: list[Lesson],
    scorers: dict[str, Any],
    encoder_factory: Callable[[Path | None], Any],
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Parse, score and highlight one ~9,000-word transcript for every criterion, cold cache."""
    from scoring.highlights import explain

    rubric: Rubric = load_rubric(RUBRIC_PATH)
    text = long_transcript(test)
    with tempfile.TemporaryDirectory() as cold:
        t_load = time.perf_counter()
        enc = encoder_factory(Path(cold))
        # One-time per process, like loading the weights: the first forward pass builds the CPU kernels.
        # Done on the raw model so the embedding cache stays cold.
        enc.model.encode(["warm up"], normalize_embeddings=True)
        load_s = time.perf_counter() - t_load
        for s in scorers.values():
            s.encoder = enc
        model = SimpleNamespace(rubric=rubric, encoder=enc, scorers=scorers)
        load_before = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        tr = parse_transcript(text)
        evidence: dict[str, str | Transcript] = {"transcript": tr, "reflection": ""}
        n_hl = 0
        for cid in scorers:
            out = explain(model, cid, evidence, k=5, level=1)
            n_hl += len(out["highlights"])
            assert all(text[h.start : h.end] == h.text for h in out["highlights"])
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        stats = dict(enc.stats)
    words = len(text.split())
    load = max(load_before, os.getloadavg()[0])
    log(
        f"long transcript: {words} words, {len(tr.turns)} turns, {len(scorers)} criteria, {n_hl} highlights: "
        f"{secs:.2f}s wall, {cpu:.2f}s CPU, cold cache ({secs * 9000 / words:.2f}s per 9,000 words; "
        f"{stats['windows_encoded']} strings encoded, {stats['windows_cached']} from cache; encoder load + warm-up "
        f"{load_s:.1f}s extra; load average {load:.1f} on {os.cpu_count()} CPUs)"
    )
    return {
        "long_transcript_words": words,
        "long_transcript_turns": len(tr.turns),
        "seconds_long_transcript": round(secs, 3),
        "seconds_per_9000_words": round(secs * 9000 / words, 3),
        "cpu_seconds_long_transcript": round(cpu, 3),
        "strings_encoded_long_transcript": stats["windows_encoded"],
        "encoder_load_seconds": round(load_s, 2),
        "load_average_during_timing": round(load, 2),
        "cpus": os.cpu_count(),
    }


def bench_cered(cered_dir: str | Path, encoder: Any, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Sentence categories of student teachers' reflections: train on train, choose C on val, test once."""
    base = Path(cered_dir) / "sentences_en"
    frames = {}
    for split in ("train", "val", "test"):
        p = base / split / "sentences.tsv"
        if not p.exists():
            raise FileNotFoundError(
                f"{p} not found: pass --cered-dir pointing at the cered_reflections folder"
            )
        frames[split] = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
    X = {s: encoder.encode(f["sentence"].tolist()) for s, f in frames.items()}
    Y = {s: f["y"].to_numpy() for s, f in frames.items()}
    out: dict[str, Any] = {"cered_sizes": {s: len(f) for s, f in frames.items()}}
    for name, mapper in (("reflection", None), ("reflection_depth", DEPTH)):
        ys = {s: (np.array([mapper.get(v, 0) for v in y]) if mapper else y) for s, y in Y.items()}
        best = (-1.0, 1.0)
        for C in (0.1, 0.3, 1.0, 3.0, 10.0):
            clf = LogisticRegression(C=C, class_weight="balanced", max_iter=3000).fit(X["train"], ys["train"])
            best = max(best, (f1_score(ys["val"], clf.predict(X["val"]), average="macro"), C))
        clf = LogisticRegression(C=best[1], class_weight="balanced", max_iter=3000).fit(
            X["train"], ys["train"]
        )
        f1 = f1_score(ys["test"], clf.predict(X["test"]), average="macro")
        out[f"{name}_macro_f1"] = round(float(f1), 4)
        out[f"{name}_val_macro_f1"] = round(best[0], 4)
        out[f"{name}_C"] = best[1]
        log(f"CEReD {name}: test macro-F1 {f1:.4f} (val {best[0]:.4f}, C={best[1]})")
    return out


def run(
    data_dir: str | Path,
    cered_dir: str | Path | None,
    encoder_factory: Callable[[Path | None], Any],
    cache_dir: Path,
    seed: int = 13,
    test_share: float = 0.2,
    max_lessons: int | None = None,
    log: Callable[[str], None] = print,
    unit: str = "utterance",
    max_train_turns: int | None = 40000,
) -> dict[str, Any]:
    """The whole benchmark; returns the figures the CLI prints as its last JSON line."""
    t0 = time.perf_counter()
    out = bench_talkmoves(
        data_dir, encoder_factory, cache_dir, seed, test_share, max_lessons, log, unit, max_train_turns
    )
    out["unit"] = unit
    if cered_dir:
        out.update(bench_cered(cered_dir, encoder_factory(cache_dir), log))
    crit = out["criteria"]
    out["targets"] = {
        "precision_at_5_ge_3x_base": all(c["lift"] is not None and c["lift"] >= 3.0 for c in crit.values()),
        "under_10s_per_9000_words": out["seconds_per_9000_words"] < 10.0,
    }
    out["total_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=True)
