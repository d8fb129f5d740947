"""``scoring bench asap-aes``: quality and speed of the pre-scoring pipeline on ASAP-AES.

What it does, so the printed figures can be traced:
  1. Reads ``training_set_rel3.tsv`` and the standard 5-fold split; trains on fold F's training ids only
     (per essay set: ``holistic`` = domain1 resolved score; set 2 also ``conventions`` = domain2; sets 7
     and 8 also each trait, trained on rater 1's trait scores because no resolved trait score exists).
  2. Reports on fold F's test ids, per set and criterion: QWK of the machine score vs the resolved score
     and vs each rater, next to human-human QWK (rater 1 vs rater 2) on the same ids. Where the resolved
     score is the sum of two raters (sets 1, 7, 8) the machine score is halved (rounded half up) to be
     compared with a single rater.
  3. Fits the TF-IDF + length + ridge baseline on the same split (``baseline_qwk_mean``).
  4. Throughput: ``run_batch`` (what ``scoring score`` runs) over the test essays with a COLD embedding
     cache, next to bare ``SentenceTransformer.encode`` over exactly the windows the pipeline encodes,
     same batch size, same process; then the same job again with the warm cache (``rerun_speedup``).
  5. With ``--route``: calibration, conformal sets and routing (``eval.bench_route``), calibrated on the
     training ids (cross-fitted by default, or a carved-out split), evaluated on the test ids.
QWK always uses the rubric's full scale as labels (``cohen_kappa_score(..., labels=levels)``).
The last printed line is one JSON object.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from eval.asap import TRAITS, fold_split, load_asap, rater_multiplier
from eval.baselines import tfidf_ridge_baseline
from models.artifact import ScoringModel, load_model, save_model
from models.encoder import DEFAULT_BATCH_SIZE, get_encoder
from rubrics import BUNDLED_DIR, load_rubric
from scoring.batch import run_batch
from scoring.ingest import ColumnMap, Record, read_records
from scoring.train import FineTuning, train_model

ASAP_RUBRICS = BUNDLED_DIR / "asap"


def qwk(a: Any, b: Any, levels: list[int]) -> float:
    return float(cohen_kappa_score(np.asarray(a, int), np.asarray(b, int), weights="quadratic", labels=levels))


def _half(x: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(x, float) / 2 + 0.5).astype(int)


def criteria_columns(essay_set: int) -> dict[str, dict[str, str]]:
    """criterion -> {target, r1, r2} columns of the ASAP file."""
    cols = {"holistic": {"target": "domain1_score", "r1": "rater1_domain1", "r2": "rater2_domain1"}}
    if essay_set == 2:
        cols["conventions"] = {"target": "domain2_score", "r1": "rater1_domain2", "r2": "rater2_domain2"}
    for k in range(1, TRAITS.get(essay_set, 0) + 1):
        cols[f"trait{k}"] = {"target": f"rater1_trait{k}", "r1": f"rater1_trait{k}", "r2": f"rater2_trait{k}"}
    return cols


def _records(df: pd.DataFrame, crit_cols: dict[str, str]) -> list[Record]:
    out = []
    for n, row in enumerate(df.itertuples(index=False), start=1):
        scores = {c: (None if pd.isna(getattr(row, col)) else int(getattr(row, col))) for c, col in crit_cols.items()}
        out.append(Record(n, str(row.essay_id), evidence={"essay": row.essay}, scores=scores))
    return out


def train_set(essay_set: int, train: pd.DataFrame, cache_dir: Path, seed: int = 13,
              finetune: FineTuning | None = None, select: bool = True) -> tuple[ScoringModel, dict[str, str]]:
    """Train the set's model; returns it and the rubric-criterion -> ASAP-column mapping used."""
    rubric = load_rubric(ASAP_RUBRICS / f"asap-set{essay_set}.yaml")
    cols = criteria_columns(essay_set)
    crit_ids = [c.id for c in rubric.criteria]
    # rubric criteria order: holistic, [conventions], traits in file order
    mapping = {cid: cols[key]["target"] for cid, key in zip(crit_ids, cols, strict=True)}
    enc = get_encoder("all-MiniLM-L6-v2", cache_dir)
    res = train_model(rubric, _records(train, mapping), enc, min_labelled=30, seed=seed, finetune=finetune,
                      select=select)
    res.model.card["bench"] = {"essay_set": essay_set}
    return res.model, {cid: key for cid, key in zip(crit_ids, cols, strict=True)}


def evaluate_set(essay_set: int, model: ScoringModel, key_of: dict[str, str], test: pd.DataFrame) -> list[dict[str, Any]]:
    from scoring.prescore import prescore

    cols = criteria_columns(essay_set)
    items = prescore(model, [str(i) for i in test.essay_id], [{"essay": e} for e in test.essay])
    rows = []
    for c in model.rubric.criteria:
        key = key_of[c.id]
        cc = cols[key]
        pred = np.array([it.criteria[c.id].score for it in items])
        t = test[cc["target"]].to_numpy()
        r1, r2 = test[cc["r1"]].to_numpy(), test[cc["r2"]].to_numpy()
        ok = ~(pd.isna(t) | pd.isna(r1) | pd.isna(r2))
        levels = c.scores
        halve = rater_multiplier(essay_set, key) == 2
        rater_levels = sorted({int(v) for v in np.concatenate([r1[ok], r2[ok]])} | set(_half(np.asarray(levels))) if halve else levels)
        rl = list(range(min(rater_levels), max(rater_levels) + 1))
        mp = _half(pred[ok]) if halve else pred[ok]
        rows.append(
            {
                "set": essay_set,
                "criterion": c.id if key == "holistic" or key == "conventions" else f"{key}:{c.id}",
                "n": int(ok.sum()),
                "qwk": round(qwk(pred[ok], t[ok], levels), 4),
                "qwk_r1": round(qwk(mp, r1[ok], rl), 4),
                "qwk_r2": round(qwk(mp, r2[ok], rl), 4),
                "human_qwk": round(qwk(r1[ok], r2[ok], rl), 4),
                "exact": round(float(np.mean(pred[ok] == t[ok])), 4),
                "adjacent": round(float(np.mean(np.abs(pred[ok] - t[ok]) <= 1)), 4),
            }
        )
    return rows


def throughput(models: dict[int, ScoringModel], test: pd.DataFrame, work: Path, batch_size: int) -> dict[str, Any]:
    """Cold-cache pipeline vs bare encode over the same windows; then a warm re-run."""
    cold = work / "cold-cache"
    shutil.rmtree(cold, ignore_errors=True)
    model_dirs = {}
    for s, m in models.items():
        model_dirs[s] = work / "models" / f"set{s}"
        if not (model_dirs[s] / "LATEST").exists():
            save_model(m, model_dirs[s], {}, "bench")
    inputs = {}
    for s in models:
        p = work / f"test-set{s}.jsonl"
        with p.open("w", encoding="utf-8") as fh:
            for r in test[test.essay_set == s].itertuples(index=False):
                fh.write(json.dumps({"id": str(r.essay_id), "essay": r.essay}) + "\n")
        inputs[s] = p
    n_texts = int(sum(len(test[test.essay_set == s]) for s in models))

    def run_all(tag: str) -> float:
        t0 = time.perf_counter()
        for s, p in inputs.items():
            m = load_model(model_dirs[s], cache_dir=cold, batch_size=batch_size)
            recs = read_records(p, m.rubric, ColumnMap(id="id", text={"essay": "essay"}))
            run_batch(m, recs, p, work / f"out-{tag}-set{s}.jsonl", progress=False, overwrite=True)
        return time.perf_counter() - t0

    t_cold = run_all("cold")
    enc = get_encoder("all-MiniLM-L6-v2", cold, batch_size=batch_size)
    windows = enc.windows_of(test[test.essay_set.isin(list(models))].essay.tolist())
    t0 = time.perf_counter()
    enc.model.encode(windows, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True)
    t_raw = time.perf_counter() - t0
    t_warm = run_all("warm")
    return {
        "n_texts": n_texts,
        "n_windows": len(windows),
        "texts_per_s": round(n_texts / t_cold, 2),
        "raw_encode_texts_per_s": round(n_texts / t_raw, 2),
        "throughput_ratio": round(t_raw / t_cold, 3),
        "cold_s": round(t_cold, 2),
        "raw_s": round(t_raw, 2),
        "warm_s": round(t_warm, 2),
        "rerun_speedup": round(t_cold / t_warm, 1),
        "precision": enc.precision,
        "batch_size": batch_size,
    }


def run(
    data_dir: Path,
    fold: int = 0,
    cache_dir: Path = Path(".scoring/bench-cache"),
    out_dir: Path = Path("bench-out/asap-aes"),
    sets: list[int] | None = None,
    do_throughput: bool = True,
    route: bool = False,
    calibration: str = "cross-fit",
    bar: str = "same-items",
    method: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    echo: Any = print,
    finetune: FineTuning | None = None,
    select: bool = True,
) -> dict[str, Any]:
    sets = sets or list(range(1, 9))
    out_dir.mkdir(parents=True, exist_ok=True)
    df = load_asap(data_dir)
    split = fold_split(df, data_dir, fold)
    echo(f"# ASAP-AES fold {fold}: {len(split.train)} train / {len(split.test)} test essays; sets {sets}")
    rows: list[dict[str, Any]] = []
    base: dict[int, float] = {}
    models: dict[int, ScoringModel] = {}
    set_results: list[dict[str, Any]] = []
    for s in sets:
        tr = split.train[split.train.essay_set == s].reset_index(drop=True)
        te = split.test[split.test.essay_set == s].reset_index(drop=True)
        cal = None
        if route and calibration == "split":  # calibration data carved from the training ids, never the test ids
            rng = np.random.default_rng(fold * 100 + s)
            mask = rng.random(len(tr)) < 0.2
            cal, tr = tr[mask].reset_index(drop=True), tr[~mask].reset_index(drop=True)
        t0 = time.perf_counter()
        model, key_of = train_set(s, tr, cache_dir, finetune=finetune, select=select)
        models[s] = model
        set_rows = evaluate_set(s, model, key_of, te)
        rows += set_rows
        levels = model.rubric.criterion("holistic").scores
        bpred = tfidf_ridge_baseline(tr.essay.tolist(), tr.domain1_score.astype(int).to_numpy(), te.essay.tolist(), levels)
        base[s] = qwk(bpred, te.domain1_score.astype(int), levels)
        for r in set_rows:
            echo(
                f"set {s} {r['criterion']:<22} n={r['n']:<4} QWK {r['qwk']:.3f} (r1 {r['qwk_r1']:.3f}, r2 {r['qwk_r2']:.3f}) "
                f"human-human {r['human_qwk']:.3f}" + (f"  baseline {base[s]:.3f}" if r["criterion"] == "holistic" else "")
                + f"  [{time.perf_counter() - t0:.0f}s]"
            )
        set_results.append(
            {"set": s, "model": model, "train": tr, "cal": cal, "test": te, "criteria_columns": criteria_columns(s), "key_of": key_of}
        )
    hol = [r for r in rows if r["criterion"] == "holistic"]
    summary: dict[str, Any] = {
        "benchmark": "asap-aes",
        "fold": fold,
        "sets": sets,
        "scorer": "finetuned" if finetune is not None else "ensemble",
        "selection": select,
        "qwk_mean": round(float(np.mean([r["qwk"] for r in hol])), 4),
        "human_qwk_mean": round(float(np.mean([r["human_qwk"] for r in hol])), 4),
        "baseline_qwk_mean": round(float(np.mean(list(base.values()))), 4),
        "qwk_r1_mean": round(float(np.mean([r["qwk_r1"] for r in hol])), 4),
        "qwk_r2_mean": round(float(np.mean([r["qwk_r2"] for r in hol])), 4),
    }
    traits = [r for r in rows if r["criterion"] != "holistic"]
    if traits:
        summary["trait_qwk_vs_r1_mean"] = round(float(np.mean([r["qwk"] for r in traits])), 4)
        summary["trait_human_qwk_mean"] = round(float(np.mean([r["human_qwk"] for r in traits])), 4)
    summary["per_criterion"] = rows
    if route:
        from eval.bench_route import route_benchmark  # calibration, conformal sets, routing

        summary.update(route_benchmark(set_results, out_dir, bar=bar, method=method))
    if do_throughput:
        echo("# throughput: cold cache pipeline vs bare encode, then warm re-run ...")
        with tempfile.TemporaryDirectory(prefix="asap-tp-", dir=out_dir) as tmp:
            summary.update(throughput(models, split.test[split.test.essay_set.isin(sets)], Path(tmp), batch_size))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    pd.DataFrame(rows).to_csv(out_dir / "per_criterion.csv", index=False)
    return summary
