"""``scoring bench short``: short answers through the user's CLI path (train, then score), next to a peer.

What it does, so the printed figures can be traced:
  1. ASAP-AES sets 3-6 (source-based responses of a few sentences, scored 0-3 / 0-4), fold 0 of the
     standard split: the training ids are written to a JSONL file (id, essay, holistic) and the test ids
     to another (id, essay); ``scoring train --rubric rubrics/bundled/asap/asap-setS.yaml`` trains on the
     first and ``scoring score`` scores the second, each as a subprocess, exactly as a user runs them.
     QWK of the scores against the resolved score on the rubric's full scale.
  2. CEReD reflection sentences (its own train/val/test split): a generated rubric with one yes/no
     criterion per reflection category ("does this sentence reach Reflection?"); trained and scored the
     same way; a sentence's category is the criterion with the highest probability of "present".
     Macro-F1 over the nine categories of the training split (test's "Difficulties" is "Difficulty").
  3. The peer, fitted on the same training ids: TF-IDF word 1-2-grams + multinomial logistic regression
     (scikit-learn defaults, C=1), predicting the score (ASAP) or the category (CEReD) as a class.
  4. Training time per criterion (the card's ``train_s``: selection and fitting, not encoding) and the
     wall time of each ``scoring train`` run (encoding included; a warm or cold cache, as found).
The last printed line is one JSON object.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from eval.asap import fold_split, load_asap
from models.scorers import quadratic_kappa
from rubrics import BUNDLED_DIR

ASAP_SHORT_SETS = (3, 4, 5, 6)
CERED_CATEGORIES = ("Experience", "Feeling", "Belief", "Difficulty", "Reflection", "Perspective", "Learning",
                    "Intention", "Other")
_CERED_ALIASES = {"Difficulties": "Difficulty"}


def tfidf_logistic_peer(train_texts: list[str], y: Any, test_texts: list[str]) -> np.ndarray:
    """The plain peer: TF-IDF word 1-2-grams + multinomial logistic regression; one class per text."""
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    clf = LogisticRegression(C=1.0, max_iter=3000).fit(vec.fit_transform(train_texts), np.asarray(y))
    return clf.predict(vec.transform(test_texts))


def read_cered(cered_dir: Path, split: str) -> pd.DataFrame:
    path = cered_dir / "sentences_en" / split / "sentences.tsv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: pass --data-dir holding cered_reflections/")
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    df["y"] = df["y"].map(lambda v: _CERED_ALIASES.get(v, v))
    return df


def cered_rubric() -> dict[str, Any]:
    return {
        "id": "cered-reflection-categories",
        "version": 1,
        "title": "Reflection categories of a diary sentence (CEReD annotation manual)",
        "evidence": ["sentence"],
        "criteria": [
            {"id": c.lower(), "title": f"The sentence is {c}",
             "levels": [{"score": 0, "label": "absent"}, {"score": 1, "label": "present"}]}
            for c in CERED_CATEGORIES
        ],
    }


def _cli(args: list[str], cache_dir: Path, echo: Any) -> tuple[float, str]:
    """Run ``scoring ARGS`` as a user would; return (wall seconds, stderr)."""
    env = {**os.environ, "SCORING_CACHE_DIR": str(cache_dir), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "scoring.cli", *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"scoring {' '.join(args[:1])} failed ({res.returncode}): {res.stderr[-2000:]}")
    return wall, res.stderr


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def _read_scores(path: Path) -> dict[str, dict[str, Any]]:
    out = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            out[d["id"]] = d["criteria"]
    return out


def _card(model_dir: Path) -> dict[str, Any]:
    version = (model_dir / "LATEST").read_text().strip()
    return json.loads((model_dir / version / "card.json").read_text())


def _train_lines(stderr: str) -> list[str]:
    return [ln.rstrip() for ln in stderr.splitlines() if ln.startswith("  ") and ":" in ln]


def _train_and_score(d: Path, rubric: Path, text_col: str, score_cols: list[str], cache_dir: Path, echo: Any,
                     tag: str, select: bool = True) -> tuple[float, float, dict[str, Any]]:
    """``scoring train`` on d/train.jsonl, then ``scoring score`` on d/test.jsonl, as a user runs them.

    Returns both wall times and the scores by id; the per-criterion lines ``train`` prints are echoed under ``tag``.
    """
    train_wall, err = _cli(["train", "--rubric", str(rubric), "--data", str(d / "train.jsonl"), "--out", str(d / "model"),
                            "--id-col", "id", "--text-col", f"{text_col}={text_col}", *score_cols,
                            *([] if select else ["--no-select"])], cache_dir, echo)
    for ln in _train_lines(err):
        echo(f"{tag} train:{ln}")
    score_wall, _ = _cli(["score", "--model", str(d / "model"), "--data", str(d / "test.jsonl"), "--out",
                          str(d / "scores.jsonl"), "--id-col", "id", "--text-col", f"{text_col}={text_col}",
                          "--no-progress", "--overwrite"], cache_dir, echo)
    return train_wall, score_wall, _read_scores(d / "scores.jsonl")


def run_asap_set(s: int, split: Any, work: Path, cache_dir: Path, echo: Any, select: bool = True) -> dict[str, Any]:
    tr = split.train[split.train.essay_set == s]
    te = split.test[split.test.essay_set == s]
    d = work / f"asap-set{s}"
    d.mkdir(parents=True, exist_ok=True)
    _write_jsonl(d / "train.jsonl", [{"id": str(r.essay_id), "essay": r.essay, "holistic": int(r.domain1_score)}
                                     for r in tr.itertuples(index=False)])
    _write_jsonl(d / "test.jsonl", [{"id": str(r.essay_id), "essay": r.essay} for r in te.itertuples(index=False)])
    rubric = BUNDLED_DIR / "asap" / f"asap-set{s}.yaml"
    train_wall, score_wall, scores = _train_and_score(d, rubric, "essay", ["--score-col", "holistic=holistic"],
                                                      cache_dir, echo, f"set {s}", select)
    levels = yaml.safe_load(rubric.read_text())["criteria"][0]["levels"]
    lv = [int(x["score"]) for x in levels]
    truth = te.domain1_score.astype(int).to_numpy()
    pred = np.array([int(scores[str(i)]["holistic"]["score"]) for i in te.essay_id])
    peer = tfidf_logistic_peer(tr.essay.tolist(), tr.domain1_score.astype(int).to_numpy(), te.essay.tolist())
    m = _card(d / "model")["metrics"]["holistic"]
    return {
        "set": s, "n_train": len(tr), "n_test": len(te),
        "qwk": round(quadratic_kappa(truth, pred, lv), 4),
        "peer_qwk": round(quadratic_kappa(truth, peer.astype(int), lv), 4),
        "human_qwk": round(quadratic_kappa(te.rater1_domain1.astype(int), te.rater2_domain1.astype(int), lv), 4),
        "configuration": m.get("configuration"), "cv_qwk": m.get("cv_qwk"), "cv_qwk_interval95": m.get("cv_qwk_interval95"),
        "train_s": m.get("train_s"), "train_wall_s": round(train_wall, 1), "score_wall_s": round(score_wall, 1),
    }


def run_cered(cered_dir: Path, work: Path, cache_dir: Path, echo: Any, select: bool = True) -> dict[str, Any]:
    d = work / "cered"
    d.mkdir(parents=True, exist_ok=True)
    train, test = read_cered(cered_dir, "train"), read_cered(cered_dir, "test")
    (d / "rubric.yaml").write_text(yaml.safe_dump(cered_rubric(), sort_keys=False))
    crit = [c.lower() for c in CERED_CATEGORIES]
    _write_jsonl(d / "train.jsonl", [{"id": f"tr{r.idx}", "sentence": r.sentence,
                                      **{c: int(r.y.lower() == c) for c in crit}} for r in train.itertuples(index=False)])
    _write_jsonl(d / "test.jsonl", [{"id": f"te{r.idx}", "sentence": r.sentence} for r in test.itertuples(index=False)])
    score_cols = [x for c in crit for x in ("--score-col", f"{c}={c}")]
    train_wall, score_wall, scores = _train_and_score(d, d / "rubric.yaml", "sentence", score_cols, cache_dir, echo,
                                                      "cered", select)
    truth = test.y.tolist()
    pred = [CERED_CATEGORIES[int(np.argmax([scores[f"te{i}"][c]["probabilities"]["1"] for c in crit]))] for i in test.idx]
    peer = tfidf_logistic_peer(train.sentence.tolist(), train.y.tolist(), test.sentence.tolist())
    labels = list(CERED_CATEGORIES)
    metrics = _card(d / "model")["metrics"]
    return {
        "n_train": len(train), "n_test": len(test),
        "macro_f1": round(float(f1_score(truth, pred, labels=labels, average="macro", zero_division=0)), 4),
        "peer_macro_f1": round(float(f1_score(truth, list(peer), labels=labels, average="macro", zero_division=0)), 4),
        "accuracy": round(float(np.mean(np.asarray(pred) == np.asarray(truth))), 4),
        "peer_accuracy": round(float(np.mean(np.asarray(peer) == np.asarray(truth))), 4),
        "per_criterion": {c: {k: metrics[c].get(k) for k in ("configuration", "cv_qwk", "cv_qwk_interval95", "train_s")}
                          for c in crit},
        "train_wall_s": round(train_wall, 1), "score_wall_s": round(score_wall, 1),
    }


def run(data_dir: Path, cache_dir: Path, out_dir: Path, sets: list[int] | None = None, fold: int = 0,
        cered: bool = True, echo: Any = print, select: bool = True) -> dict[str, Any]:
    sets = list(sets or ASAP_SHORT_SETS)
    out_dir.mkdir(parents=True, exist_ok=True)
    asap_dir = data_dir / "asap_aes"
    df = load_asap(asap_dir)
    split = fold_split(df, asap_dir, fold)
    rows = []
    for s in sets:
        r = run_asap_set(s, split, out_dir, cache_dir, echo, select)
        echo(f"set {s}: QWK {r['qwk']:.3f} (peer {r['peer_qwk']:.3f}, human-human {r['human_qwk']:.3f}) "
             f"n_test={r['n_test']}; {r['configuration']}; train {r['train_s']}s (wall {r['train_wall_s']}s)")
        rows.append(r)
    summary: dict[str, Any] = {
        "benchmark": "short", "fold": fold, "sets": sets, "selection": select,
        "qwk_mean_short": round(float(np.mean([r["qwk"] for r in rows])), 4),
        "peer_qwk_mean_short": round(float(np.mean([r["peer_qwk"] for r in rows])), 4),
        "human_qwk_mean_short": round(float(np.mean([r["human_qwk"] for r in rows])), 4),
    }
    train_s = [r["train_s"] for r in rows if r["train_s"] is not None]
    if cered:
        c = run_cered(data_dir / "cered_reflections", out_dir, cache_dir, echo, select)
        for cid, m in c["per_criterion"].items():
            echo(f"cered {cid}: {m['configuration']}; cv QWK {m['cv_qwk']} {m['cv_qwk_interval95']}; train {m['train_s']}s")
        echo(f"cered: macro-F1 {c['macro_f1']:.3f} (peer {c['peer_macro_f1']:.3f}), accuracy {c['accuracy']:.3f} "
             f"(peer {c['peer_accuracy']:.3f}); train wall {c['train_wall_s']}s")
        summary.update(cered_macro_f1=c["macro_f1"], peer_cered_macro_f1=c["peer_macro_f1"],
                       cered_accuracy=c["accuracy"], peer_cered_accuracy=c["peer_accuracy"],
                       cered_train_wall_s=c["train_wall_s"])
        train_s += [m["train_s"] for m in c["per_criterion"].values() if m["train_s"] is not None]
        summary["cered"] = {k: v for k, v in c.items() if k != "per_criterion"}
    summary["train_s_median"] = round(float(np.median(train_s)), 2) if train_s else None
    summary["per_set"] = {str(r["set"]): {k: r[k] for k in ("qwk", "peer_qwk", "human_qwk", "configuration", "cv_qwk",
                                                            "cv_qwk_interval95", "train_s", "train_wall_s")} for r in rows}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
