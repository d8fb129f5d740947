"""``scoring bench backlog``: what recording a backlog in the store costs, and that it adds up.

What it does, so the printed figures can be traced:
  1. ASAP-AES, standard fold F: per essay set, trains the model on the training ids (embedding cache
     ``--cache-dir``), calibrates it and tunes a routing policy on the training ids' cross-fitted
     probabilities (never the test ids), and saves both, as ``scoring calibrate`` does.
  2. Scores fold F's test essays of every set with the policy three ways, each in a fresh process state
     with a COLD embedding cache (a new backlog is new text): files only (``scoring score --policy``),
     into a fresh SQLite store (``--store``), and into a fresh PostgreSQL schema when one answers.
  3. Prints ``texts_per_s_files_only``, ``texts_per_s_with_store`` (SQLite), their ``store_overhead``
     (1 - with_store / files_only; target <= 0.10), ``queued`` (queue slots made), ``auto_fraction`` (share
     of criterion scores whose machine score stands, as the batch counted it), ``report_auto_fraction``
     (the same share computed by ``scoring report``'s automation table from the store), ``audit_verified``
     and whether the output files of the store runs equal the files-only run's.
The last printed line is one JSON object.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eval.asap import fold_split, load_asap, rater_multiplier
from eval.bench_asap import criteria_columns, train_set
from models.artifact import load_model, save_model
from models.encoder import DEFAULT_BATCH_SIZE
from scoring.ingest import ColumnMap, read_records
from scoring.policy import RoutingPolicy, save_policy
from scoring.store import Store

COVERAGE, AUDIT_RATE, DOUBLE_RATE = 0.9, 0.1, 0.05


def with_award(model: Any, award: dict[str, Any]) -> Any:
    """``model`` whose rubric carries ``award`` (a rule from ``eval/policies/asap_awards.yaml``)."""
    from rubrics.schema import parse_rubric

    rubric = parse_rubric({**model.rubric.model_dump(mode="json"), "award": award}, f"award rule:{model.rubric.id}")
    return dataclasses.replace(model, rubric=rubric)


def _num(a: Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(a), errors="coerce").to_numpy(float)


def prepare(data_dir: Path, fold: int, sets: list[int], cache_dir: Path, work: Path, echo: Any,
            awards: dict[int, dict[str, Any]] | None = None) -> tuple[
        dict[int, Path], dict[int, Path], dict[int, Path], int]:
    """Train + calibrate per set; write each set's test essays as a backlog file. Returns model dirs,
    policy files, backlog files and the number of test essays. ``awards``: set -> award rule given to the
    set's rubric before calibration, so the policy's award bar is tested on the calibration decisions."""
    from scoring.award_bar import with_award_bar
    from scoring.optimise import CriterionCalibrationData, calibrate_model, cross_fitted_probabilities

    df = load_asap(data_dir)
    split = fold_split(df, data_dir, fold)
    models: dict[int, Path] = {}
    policies: dict[int, Path] = {}
    backlogs: dict[int, Path] = {}
    n = 0
    for s in sets:
        t0 = time.perf_counter()
        tr = split.train[split.train.essay_set == s].reset_index(drop=True)
        te = split.test[split.test.essay_set == s].reset_index(drop=True)
        model, key_of = train_set(s, tr, cache_dir)
        if awards is not None:
            model = with_award(model, awards[s])
        evs = [{"essay": e} for e in tr.essay]
        data = {}
        for c in model.rubric.criteria:
            cc = criteria_columns(s)[key_of[c.id]]
            P = cross_fitted_probabilities(model, c.id, evs)
            y = _num(tr[cc["target"]])
            ok = np.isfinite(y) & np.isfinite(P).all(axis=1)
            data[c.id] = CriterionCalibrationData(proba_raw=P[ok], y=y[ok].astype(int),
                                                  ids=[str(i) for i in tr.essay_id[ok]],
                                                  first=_num(tr[cc["r1"]])[ok], second=_num(tr[cc["r2"]])[ok],
                                                  # machine vs rater 2 on the sum scales: raters doubled
                                                  rater_multiplier=rater_multiplier(s, key_of[c.id]))
        res = calibrate_model(model, data, coverage=COVERAGE, audit_rate=AUDIT_RATE, double_rate=DOUBLE_RATE)
        policy = with_award_bar(res.model, res.policy, data, rater_scale={"holistic": 2.0} if rater_multiplier(s, "holistic") == 2 else None)
        models[s] = work / "models" / f"set{s}"
        save_model(res.model, models[s], {}, "bench-backlog")
        policies[s] = save_policy(policy, work / "policies" / f"set{s}.yaml")
        if policy.award_evidence:
            ev = policy.award_evidence
            echo(f"set {s}: award bar {ev.get('chosen')} ({len(ev.get('tested', []))} bar(s) tested on "
                 f"{ev.get('n_items', 0)} calibration decisions)")
        backlogs[s] = work / f"backlog-set{s}.jsonl"
        with backlogs[s].open("w", encoding="utf-8") as fh:
            for r in te.itertuples(index=False):
                fh.write(json.dumps({"id": str(r.essay_id), "essay": r.essay}) + "\n")
        n += len(te)
        echo(f"set {s}: trained and calibrated on {len(tr)} training essays, {len(te)} test essays "
             f"[{time.perf_counter() - t0:.0f}s]")
    return models, policies, backlogs, n


def score_all(models: dict[int, Path], policies: dict[int, Path], backlogs: dict[int, Path], out: Path,
              store_url: str | None, batch_size: int) -> dict[str, Any]:
    """One timed pass over every set's backlog, cold embedding cache, as ``scoring score`` runs it."""
    from scoring.policy import load_policy
    from scoring.usecases.backlog import reading_tag, score_backlog

    cache = out / "cold-cache"
    shutil.rmtree(cache, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    store = Store(store_url) if store_url else None
    accepted = total = 0
    t0 = time.perf_counter()
    try:
        for s, path in backlogs.items():
            m = load_model(models[s], cache_dir=cache, batch_size=batch_size)
            pol: RoutingPolicy = load_policy(policies[s])
            cols = ColumnMap(id="id", text={"essay": "essay"})
            run = score_backlog(m, read_records(path, m.rubric, cols), path, out / f"scores-set{s}.jsonl",
                                read_tag=reading_tag(cols, path, None, "utf-8", True, 500_000), block_size=256,
                                policy=pol, store=store, owner="bench")
            if run.recorded is not None:
                accepted += round(run.recorded["auto_fraction"] * run.recorded["criterion_scores"])
                total += run.recorded["criterion_scores"]
        seconds = time.perf_counter() - t0
        res: dict[str, Any] = {"seconds": seconds}
        if store is not None:
            from eval.agreement import automation_table, load_frames
            from scoring.store import queue

            au = automation_table(load_frames(store))
            per = au[au["criterion"] != "(all)"]
            res.update(
                auto_fraction=accepted / total if total else 0.0,
                report_auto_fraction=float(per["n_accepted"].sum() / per["n"].sum()) if len(per) else 0.0,
                queued=queue.count_for_submissions(store, [x.id for x in store.submissions()]),
                audit_verified=store.verify_audit().ok,
                machine_scores=len(store.machine_scores()),
            )
        return res
    finally:
        if store is not None:
            store.close()


PG_URL = os.environ.get("SCORING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_schema(action: str, schema: str) -> bool:
    """Create or drop the run's own PostgreSQL schema; False when no server answers."""
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            if action == "create":
                c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        eng.dispose()
        return True
    except Exception:  # noqa: BLE001 - no server: the PostgreSQL pass is skipped and says so
        return False


def _same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("scores-set*.jsonl*") if not p.name.endswith((".lock", ".progress.json")))
    return bool(names) and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def run(data_dir: Path, fold: int = 0, sets: list[int] | None = None, cache_dir: Path = Path(".scoring/bench-cache"),
        out_dir: Path = Path("bench-out/backlog"), batch_size: int = DEFAULT_BATCH_SIZE, echo: Any = print) -> dict[str, Any]:
    sets = sets or list(range(1, 9))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="backlog-", dir=out_dir) as tmp:
        work = Path(tmp)
        models, policies, backlogs, n = prepare(data_dir, fold, sets, cache_dir, work, echo)
        echo(f"# {n} test essays; timing files only, then with a SQLite store, then PostgreSQL (cold caches)")
        files = score_all(models, policies, backlogs, work / "files", None, batch_size)
        echo(f"files only: {n / files['seconds']:.2f} texts/s")
        sq = score_all(models, policies, backlogs, work / "sqlite", f"sqlite:///{work / 'bench.db'}", batch_size)
        echo(f"with SQLite store: {n / sq['seconds']:.2f} texts/s, auto_fraction {sq['auto_fraction']:.4f} "
             f"(report {sq['report_auto_fraction']:.4f}), queued {sq['queued']}, audit verified {sq['audit_verified']}")
        schema = f"bench_backlog_{os.getpid()}"
        pg = None
        if _pg_schema("create", schema):
            try:
                pg = score_all(models, policies, backlogs, work / "pg", f"{PG_URL}?options=-csearch_path%3D{schema}",
                               batch_size)
            finally:
                _pg_schema("drop", schema)
        if pg is not None:
            echo(f"with PostgreSQL store: {n / pg['seconds']:.2f} texts/s, audit verified {pg['audit_verified']}")
        files_tps, store_tps = n / files["seconds"], n / sq["seconds"]
        summary: dict[str, Any] = {
            "benchmark": "backlog", "fold": fold, "sets": sets, "n": n,
            "texts_per_s_files_only": round(files_tps, 2),
            "texts_per_s_with_store": round(store_tps, 2),
            "store_overhead": round(1 - store_tps / files_tps, 4),
            "queued": sq["queued"],
            "auto_fraction": round(sq["auto_fraction"], 4),
            "report_auto_fraction": round(sq["report_auto_fraction"], 4),
            "audit_verified": sq["audit_verified"],
            "files_equal_files_only": _same_files(work / "files", work / "sqlite"),
        }
        if pg is not None:
            summary.update(texts_per_s_with_postgres=round(n / pg["seconds"], 2),
                           postgres_overhead=round(1 - (n / pg["seconds"]) / files_tps, 4),
                           postgres_audit_verified=pg["audit_verified"],
                           postgres_auto_fraction=round(pg["report_auto_fraction"], 4),
                           postgres_files_equal=_same_files(work / "files", work / "pg"))
        else:
            summary["postgres"] = "skipped: no server answered"
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
