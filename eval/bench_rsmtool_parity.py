"""``scoring bench rsmtool-parity``: the report's figures next to RSMTool's, for the same scores.

What it does, so the printed figures can be traced:
  1. Machine predictions for the ASAP-AES fold-F test ids of every set, from the existing bench pipeline
     (:func:`eval.bench_asap.train_set` on the fold's training ids, embedding cache ``--cache-dir``; then
     ``prescore``). Saved to ``<out>/predictions-fold<F>.csv`` and reused on a re-run (``--fresh`` retrains).
     Per set and criterion the comparison is on the raters' scale: ``sc1`` = rater 1, ``sc2`` = rater 2,
     ``machine`` = the prediction (halved, rounded half up, where the resolved score is the raters' sum:
     sets 1, 7, 8 holistic). ``essay_length`` (word-count terciles within the set) is the subgroup for DSM.
  2. The project's figures: the scores go into a fresh store (rater 1 ``first``, rater 2 ``second``, the
     machine score) and are read back by the report's own code (:mod:`eval.agreement`):
     human-machine exact agreement, kappa, QWK, SMD (RSMTool's unpooled human-system SMD), R2, RMSE, PRMSE,
     human-human exact agreement, kappa, QWK, SMD (pooled), and DSM per length group.
  3. RSMTool's figures: ``rsmeval`` (RSMTool installed into its own virtual environment, by default
     ``.scoring/rsmtool-venv``, created with pip on first use; never a project dependency) on the same
     scores, one experiment per set and criterion, offline; its ``eval``, ``consistency``,
     ``true_score_eval`` and ``eval_by_essay_length`` outputs are read back.
  4. Every pair of figures is compared; the last printed line is one JSON object with
     ``n_metrics_compared``, ``max_abs_diff`` and ``differs`` (metrics whose difference exceeds 1e-6).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eval.agreement import human_human_table, human_machine_table, load_frames, subgroup_table
from rubrics.schema import parse_rubric
from scoring.store import HumanScoreIn, MachineScoreIn, Store

TOLERANCE = 1e-6
SUBGROUP = "essay_length"
HM_METRICS = ("exact", "kappa", "qwk", "smd", "r2", "rmse", "prmse")
HH_METRICS = ("exact", "kappa", "qwk", "smd")
Figures = dict[tuple[str, ...], float]  # (set-criterion, pair, metric[, group]) -> value


# ------------------------------------------------------------------------------------------ predictions


def _half(x: Any) -> np.ndarray:
    return np.floor(np.asarray(x, float) / 2 + 0.5).astype(int)


def _length_groups(texts: pd.Series) -> list[str]:
    words = texts.str.split().str.len().to_numpy(float)
    lo, hi = np.quantile(words, [1 / 3, 2 / 3])
    return ["short" if w <= lo else "long" if w > hi else "medium" for w in words]


def predictions(data_dir: Path, fold: int, cache_dir: Path, out_dir: Path, sets: list[int], fresh: bool = False,
                echo: Callable[[str], Any] = print) -> pd.DataFrame:
    """Fold-F test predictions per set and criterion, on the raters' scale (see the module docstring)."""
    path = out_dir / f"predictions-fold{fold}.csv"
    if path.exists() and not fresh:
        df = pd.read_csv(path)
        if set(sets) <= set(df["set"]):
            echo(f"# predictions reused from {path} (--fresh retrains)")
            return df[df["set"].isin(sets)].reset_index(drop=True)
    from eval.asap import fold_split, load_asap, rater_multiplier
    from eval.bench_asap import criteria_columns, train_set
    from scoring.prescore import prescore

    data = load_asap(data_dir)
    split = fold_split(data, data_dir, fold)
    rows = []
    for s in sets:
        t0 = time.perf_counter()
        tr = split.train[split.train.essay_set == s].reset_index(drop=True)
        te = split.test[split.test.essay_set == s].reset_index(drop=True)
        model, key_of = train_set(s, tr, cache_dir)
        items = prescore(model, [str(i) for i in te.essay_id], [{"essay": e} for e in te.essay])
        groups = _length_groups(te.essay)
        cols = criteria_columns(s)
        for c in model.rubric.criteria:
            key = key_of[c.id]
            pred = np.array([it.criteria[c.id].score for it in items])
            machine = _half(pred) if rater_multiplier(s, key) == 2 else pred
            levels = sorted(set(_half(c.scores)) if rater_multiplier(s, key) == 2 else set(c.scores))
            r1, r2 = te[cols[key]["r1"]], te[cols[key]["r2"]]
            for k in range(len(te)):
                if pd.isna(r1.iloc[k]):
                    continue
                rows.append({"set": s, "criterion": c.id, "essay_id": int(te.essay_id.iloc[k]),
                             "sc1": int(r1.iloc[k]), "sc2": None if pd.isna(r2.iloc[k]) else int(r2.iloc[k]),
                             "machine": int(machine[k]), SUBGROUP: groups[k],
                             "scale_min": int(levels[0]), "scale_max": int(levels[-1])})
        echo(f"set {s}: {len(te)} test essays predicted [{time.perf_counter() - t0:.0f}s]")
    df = pd.DataFrame(rows)
    # a scale wide enough for every score seen (a rater may use a level outside the documented range)
    for key, g in df.groupby(["set", "criterion"]):
        m = (df["set"] == key[0]) & (df["criterion"] == key[1])
        seen = pd.concat([g["sc1"], g["sc2"].dropna(), g["machine"]])
        df.loc[m, "scale_min"] = int(min(g["scale_min"].min(), seen.min()))
        df.loc[m, "scale_max"] = int(max(g["scale_max"].max(), seen.max()))
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return df


# ------------------------------------------------------------------------------- the project's figures


def project_figures(preds: pd.DataFrame, db_url: str) -> Figures:
    """Record the scores in a fresh store and compute the figures with the report's own code."""
    store = Store(db_url)
    try:
        for s, g in preds.groupby("set"):
            crits = g.groupby("criterion")[["scale_min", "scale_max"]].first()
            rub = parse_rubric({"id": f"asap-parity-set{s}", "version": 1, "title": f"ASAP set {s} (rater scale)",
                                "evidence": ["essay"],
                                "criteria": [{"id": c, "title": c, "scale": {"min": int(r.scale_min),
                                                                             "max": int(r.scale_max)}}
                                             for c, r in crits.iterrows()]})
            store.register_rubric(rub)
            first = g.drop_duplicates("essay_id")
            subs = store.add_submissions(rub.id, 1, [(str(e), {}, {SUBGROUP: grp}) for e, grp in
                                                     zip(first["essay_id"], first[SUBGROUP], strict=True)])
            sid = {int(x.external_id): x.id for x in subs}
            hs, ms = [], []
            for r in g.itertuples():
                hs.append(HumanScoreIn(sid[r.essay_id], r.criterion, int(r.sc1), "rater1", "first"))
                if not pd.isna(r.sc2):
                    hs.append(HumanScoreIn(sid[r.essay_id], r.criterion, int(r.sc2), "rater2", "second"))
                ms.append(MachineScoreIn(sid[r.essay_id], r.criterion, int(r.machine), model_version="fold"))
            store.record_human_scores(hs)
            store.record_machine_scores(ms)
        frames = load_frames(store)
        out: Figures = {}
        hm = human_machine_table(frames)
        for r in hm.to_dict(orient="records"):
            key = f"set{r['rubric_id'].removeprefix('asap-parity-set')}/{r['criterion']}"
            for m in HM_METRICS:
                out[(key, "human-machine", m)] = r["smd_unpooled"] if m == "smd" else r[m]
        hh = human_human_table(frames)
        for r in hh.to_dict(orient="records"):
            key = f"set{r['rubric_id'].removeprefix('asap-parity-set')}/{r['criterion']}"
            for m in HH_METRICS:
                out[(key, "human-human", m)] = r[m]
        sg = subgroup_table(frames, SUBGROUP)
        for r in sg.to_dict(orient="records"):
            key = f"set{r['rubric_id'].removeprefix('asap-parity-set')}/{r['criterion']}"
            out[(key, "human-machine", "dsm", r["group"])] = r["dsm"]
        return out
    finally:
        store.close()


# ------------------------------------------------------------------------------------ RSMTool's figures


def ensure_rsmtool(venv: Path, echo: Callable[[str], Any] = print) -> Path:
    """The ``rsmeval`` of RSMTool in its own virtual environment, created with pip on first use."""
    venv = venv.absolute()  # rsmeval runs inside each experiment's folder
    exe = venv / "bin" / "rsmeval"
    if exe.exists():
        return exe
    echo(f"# installing RSMTool into {venv} (first use; a few minutes) ...")
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    res = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "rsmtool"], capture_output=True, text=True)
    if res.returncode != 0 or not exe.exists():
        tail = "\n".join(line for line in res.stderr.splitlines() if not line.startswith("WARNING"))[-2000:]
        raise RuntimeError(f"could not install RSMTool into {venv} with pip: {tail}")
    return exe


def rsmtool_figures(preds: pd.DataFrame, work: Path, rsmeval: Path, echo: Callable[[str], Any] = print) -> Figures:
    """Run ``rsmeval`` once per set and criterion on exactly these scores and read its outputs back."""
    out: Figures = {}
    for (s, crit), g in preds.groupby(["set", "criterion"]):
        exp = f"set{s}_{crit}"
        d = work / exp
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        g.rename(columns={"essay_id": "spkitemid", "machine": "system"})[
            ["spkitemid", "sc1", "sc2", "system", SUBGROUP]].to_csv(d / "predictions.csv", index=False)
        cfg = {"experiment_id": exp, "predictions_file": "predictions.csv", "system_score_column": "system",
               "human_score_column": "sc1", "second_human_score_column": "sc2", "id_column": "spkitemid",
               "trim_min": int(g["scale_min"].iloc[0]), "trim_max": int(g["scale_max"].iloc[0]),
               "subgroups": [SUBGROUP], "exclude_zero_scores": False, "general_sections": ["data_description"]}
        (d / "config.json").write_text(json.dumps(cfg, indent=1))
        t0 = time.perf_counter()
        res = subprocess.run([str(rsmeval), "config.json", "out"], cwd=d, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"rsmeval failed on {exp}: {res.stderr[-2000:]}")
        o = d / "out" / "output"
        key = f"set{s}/{crit}"
        ev = pd.read_csv(o / f"{exp}_eval.csv", index_col=0).loc["raw_trim"]
        names = {"exact": "exact_agr", "kappa": "kappa", "qwk": "wtkappa", "smd": "SMD", "r2": "R2", "rmse": "RMSE"}
        for m, col in names.items():
            out[(key, "human-machine", m)] = float(ev[col]) / (100 if m == "exact" else 1)
        ts = pd.read_csv(o / f"{exp}_true_score_eval.csv", index_col=0).loc["raw_trim"]
        out[(key, "human-machine", "prmse")] = float(ts["PRMSE true"])
        cons = pd.read_csv(o / f"{exp}_consistency.csv", index_col=0).iloc[0]
        for m, col in {"exact": "exact_agr", "kappa": "kappa", "qwk": "wtkappa", "smd": "SMD"}.items():
            out[(key, "human-human", m)] = float(cons[col]) / (100 if m == "exact" else 1)
        by = pd.read_csv(o / f"{exp}_eval_by_{SUBGROUP}.csv", index_col=0)
        for grp, r in by.iterrows():
            if grp != "All data":
                out[(key, "human-machine", "dsm", str(grp))] = float(r["DSM.raw_trim"])
        echo(f"rsmeval {exp}: n={len(g)} [{time.perf_counter() - t0:.0f}s]")
    return out


# ------------------------------------------------------------------------------------------ comparison


def compare(ours: Figures, theirs: Figures, tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Every figure present on both sides, paired; ``differs`` names the metrics (pair/metric) whose
    difference exceeds ``tolerance`` anywhere, or that one side could not compute where the other did."""
    keys = sorted(set(ours) | set(theirs))
    diffs: dict[str, float] = {}
    differs: set[str] = set()
    missing = []
    n = 0
    for k in keys:
        name = f"{k[1]}:{k[2]}"
        a, b = ours.get(k), theirs.get(k)
        fa = a is not None and np.isfinite(a)
        fb = b is not None and np.isfinite(b)
        if not fa and not fb:
            continue
        if fa != fb:
            differs.add(name)
            missing.append("/".join(k))
            continue
        n += 1
        d = abs(float(a) - float(b))  # type: ignore[arg-type]
        diffs[name] = max(diffs.get(name, 0.0), d)
        if d > tolerance:
            differs.add(name)
    return {"n_metrics_compared": n, "max_abs_diff": float(max(diffs.values())) if diffs else None,
            "max_abs_diff_by_metric": {k: float(f"{v:.3g}") for k, v in sorted(diffs.items())},
            "differs": sorted(differs), "only_one_side": missing[:20]}


def run(data_dir: Path, *, fold: int = 0, sets: list[int] | None = None, cache_dir: Path = Path(".scoring/bench-cache"),
        out_dir: Path = Path("bench-out/rsmtool-parity"), venv: Path = Path(".scoring/rsmtool-venv"),
        fresh: bool = False, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    sets = sets or list(range(1, 9))
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    preds = predictions(data_dir, fold, cache_dir, out_dir, sets, fresh=fresh, echo=echo)
    db = out_dir / "parity.db"
    db.unlink(missing_ok=True)
    ours = project_figures(preds, f"sqlite:///{db}")
    rsmeval = ensure_rsmtool(venv, echo)
    version = subprocess.run([str(venv / "bin" / "python"), "-c", "import rsmtool; print(rsmtool.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    theirs = rsmtool_figures(preds, out_dir / "rsmeval", rsmeval, echo)
    summary = {"benchmark": "rsmtool-parity", "fold": fold, "sets": sets, "rsmtool": version,
               "n_items": int(len(preds)), "n_set_criteria": int(preds.groupby(["set", "criterion"]).ngroups),
               **compare(ours, theirs), "seconds": round(time.perf_counter() - t0, 1)}
    rows = [{"key": "/".join(k), "ours": ours.get(k), "rsmtool": theirs.get(k)} for k in sorted(set(ours) | set(theirs))]
    pd.DataFrame(rows).to_csv(out_dir / "figures.csv", index=False)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
