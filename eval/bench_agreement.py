"""ASAP-AES acceptance for the audit pipeline: import both raters of every set into a fresh store, build the
report, and check that its human-human QWK per set equals an independent ``cohen_kappa_score`` on the raw
file (and the figures published in the data README) to 3 decimals.

Run: ``python -m eval.bench_agreement --data-dir ../shared/data/asap_aes --out bench-out/agreement``
(or ``scoring audit asap-check`` / ``scoring bench agreement``). The data are read from the given path and
never copied: the store receives ids and scores only, no essay text.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sklearn.metrics import cohen_kappa_score

from eval.asap import load_asap
from eval.report import build_report
from rubrics.schema import parse_rubric
from scoring.store import Store
from scoring.usecases.history import ScoreColumn, import_table

# per-rater scales (the resolved domain1_score of sets 1, 7, 8 is the sum of two raters: not used here)
RATER_SCALE = {1: (1, 6), 2: (1, 6), 3: (0, 3), 4: (0, 3), 5: (0, 4), 6: (0, 4), 7: (0, 12), 8: (0, 30)}
EXTRA = {  # further double-scored criteria: set 2 domain 2, traits of sets 7 and 8
    2: [("conventions", "domain2", (1, 4))],
    7: [(f"trait{i}", f"trait{i}", (0, 3)) for i in range(1, 5)],
    8: [(f"trait{i}", f"trait{i}", (1, 6)) for i in range(1, 7)],
}
# human-human QWK on domain1 as published in shared/data/README.md
PUBLISHED = {1: 0.721, 2: 0.814, 3: 0.769, 4: 0.851, 5: 0.753, 6: 0.776, 7: 0.721, 8: 0.629}


def rubric_for(set_no: int) -> dict[str, Any]:
    lo, hi = RATER_SCALE[set_no]
    crits = [{"id": "holistic", "title": "Holistic (per rater)", "scale": {"min": lo, "max": hi}}]
    for cid, _, (a, b) in EXTRA.get(set_no, []):
        crits.append({"id": cid, "title": cid, "scale": {"min": a, "max": b}})
    return {"id": f"asap-hh-set{set_no}", "version": 1, "title": f"ASAP-AES set {set_no}, per-rater scale",
            "evidence": ["essay"], "criteria": crits}


def run(data_dir: str | Path, out_dir: str | Path, *, db_url: str | None = None, n_boot: int = 200,
        log: Callable[[str], Any] = print) -> dict[str, Any]:
    out = Path(out_dir)
    (out / "rubrics").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    df = load_asap(data_dir)
    db_url = db_url or f"sqlite:///{out / 'asap_store.db'}"
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    store = Store(db_url)
    imported = {}
    try:
        for s in sorted(RATER_SCALE):
            body = rubric_for(s)
            (out / "rubrics" / f"asap-hh-set{s}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
            cols = ["holistic=rater1_domain1", "holistic=rater2_domain1"]
            for cid, col, _ in EXTRA.get(s, []):
                cols += [f"{cid}=rater1_{col}", f"{cid}=rater2_{col}"]
            sub = df[df["essay_set"] == s].drop(columns=["essay"])
            res = import_table(store, parse_rubric(body), sub, id_col="essay_id",
                               score_cols=ScoreColumn.parse_many(cols), meta_cols=["essay_set"], source="asap")
            imported[s] = res.human_scores
            log(f"set {s}: {res.submissions} essays, human scores {res.human_scores}")
        t_import = time.perf_counter() - t0
        rep = build_report(store, out / "report", n_boot=n_boot)
        verification = store.verify_audit()
    finally:
        store.close()
    hh = rep.tables["human_human"]
    rows: list[dict[str, Any]] = []
    for s in sorted(RATER_SCALE):
        sub = df[df["essay_set"] == s]
        for crit, col, (lo, hi) in [("holistic", "domain1", RATER_SCALE[s]), *EXTRA.get(s, [])]:
            a, b = sub[f"rater1_{col}"], sub[f"rater2_{col}"]
            ok = a.notna() & b.notna()
            a, b = a[ok].astype(int), b[ok].astype(int)
            # weights are distances between score values: give sklearn the whole scale. Without `labels` it
            # weights by rank among the labels observed, which differs when a score value never occurs
            # (set 8 holistic: 0.624 instead of 0.629).
            ref = cohen_kappa_score(a, b, weights="quadratic", labels=list(range(lo, hi + 1)))
            ref_observed = cohen_kappa_score(a, b, weights="quadratic")
            r = hh[(hh["rubric_id"] == f"asap-hh-set{s}") & (hh["criterion"] == crit)].iloc[0]
            rows.append({"set": s, "criterion": crit, "n": int(r["n"]), "report_qwk": round(float(r["qwk"]), 3),
                         "sklearn_qwk": round(float(ref), 3),
                         "sklearn_qwk_observed_labels": round(float(ref_observed), 3), "published": PUBLISHED.get(s) if crit == "holistic" else None,
                         "qwk_ci": [round(float(r["qwk_lo"]), 3), round(float(r["qwk_hi"]), 3)] if n_boot else None,
                         "exact": round(100 * float(r["exact"]), 1), "adjacent": round(100 * float(r["adjacent"]), 1),
                         "alpha_ordinal": round(float(r["alpha_ordinal"]), 3)})
    for r in rows:
        match = r["report_qwk"] == r["sklearn_qwk"] and (r["published"] is None or r["published"] == r["report_qwk"])
        r["match"] = match
        log(f"set {r['set']} {r['criterion']:<11} n={r['n']:5d} QWK report {r['report_qwk']:.3f} sklearn "
            f"{r['sklearn_qwk']:.3f} published {r['published'] if r['published'] is not None else '  -  '} "
            f"exact {r['exact']:.1f}% adjacent {r['adjacent']:.1f}% alpha {r['alpha_ordinal']:.3f} "
            f"{'OK' if match else 'MISMATCH'}")
    holistic = [r for r in rows if r["criterion"] == "holistic"]
    return {"rows": rows, "all_match": all(bool(r["match"]) for r in rows),
            "mean_hh_qwk_domain1": round(sum(r["report_qwk"] for r in holistic) / len(holistic), 3),
            "audit_ok": verification.ok, "audit_entries": verification.entries_checked,
            "report": str(rep.html), "figures": len(rep.figures), "import_seconds": round(t_import, 1),
            "total_seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", default="bench-out/agreement")
    ap.add_argument("--db", default=None, help="Store URL (default: a fresh SQLite file in --out).")
    ap.add_argument("--bootstrap", type=int, default=200)
    a = ap.parse_args()
    res = run(a.data_dir, a.out, db_url=a.db, n_boot=a.bootstrap)
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}))
    raise SystemExit(0 if res["all_match"] and res["audit_ok"] else 1)


if __name__ == "__main__":
    main()
