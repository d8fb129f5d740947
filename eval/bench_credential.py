"""``scoring bench credential``: credential decisions on ASAP-AES, against the human raters' decisions.

What it does, so the printed figures can be traced:
  1. Per essay set: trains and calibrates as ``scoring bench backlog`` does (fold F's training ids only),
     and gives the set's rubric the award rule of ``eval/policies/asap_awards.yaml``.
  2. Scores fold F's test ids and routes them with the tuned policy; each essay gets the machine's
     credential decision (``scoring.credential``): automatic (earned / not yet) only when every criterion
     was auto-accepted and P(decision) >= the policy's ``decision_min_confidence`` (for an award: its
     ``award_min_confidence``, chosen on the training ids' cross-fitted decisions by ``scoring.award_bar``;
     no bar passing means no automatic awards for that set).
  3. On the auto-decided essays, compares with the decision the RESOLVED scores give (the reference) and
     with the decisions rater 1 and rater 2 give (for the summed sets 1, 7, 8: twice the rater's score):
     ``decision_kappa_auto`` (machine vs resolved), ``human_decision_kappa`` (rater 1 vs rater 2, same essays),
     ``decision_kappa_auto_vs_rater2`` (machine vs rater 2: the like-for-like comparison with rater 1 vs rater 2),
     ``false_award_rate`` / ``false_deny_rate`` (machine says earned / not yet where the resolved decision
     says the other; shares of the auto-decided essays) and the same for rater 1 (``human_false_*``).
The last printed line is one JSON object.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from eval.asap import fold_split, load_asap, rater_multiplier
from eval.bench_asap import criteria_columns
from eval.bench_backlog import prepare, with_award
from eval.decisions import decision_kappa
from models.artifact import load_model

AWARDS = Path(__file__).parent / "policies" / "asap_awards.yaml"


def _kappa(a: list[str], b: list[str]) -> float | None:
    k = decision_kappa(a, b)
    return None if k is None else round(k, 4)


def run(data_dir: Path, fold: int = 0, sets: list[int] | None = None, cache_dir: Path = Path(".scoring/bench-cache"),
        out_dir: Path = Path("bench-out/credential"), echo: Any = print) -> dict[str, Any]:
    from scoring.policy import load_policy
    from scoring.prescore import prescore
    from scoring.usecases.intake import route

    sets = sets or list(range(1, 9))
    awards = yaml.safe_load(AWARDS.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    split = fold_split(load_asap(data_dir), data_dir, fold)
    rows: list[dict[str, Any]] = []
    bars: dict[int, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="credential-", dir=out_dir) as tmp:
        models, policies, _backlogs, _n = prepare(data_dir, fold, sets, cache_dir, Path(tmp), echo, awards=awards)
        for s in sets:
            t0 = time.perf_counter()
            te = split.test[split.test.essay_set == s].reset_index(drop=True)
            model = with_award(load_model(models[s], cache_dir=cache_dir), awards[s])
            policy = load_policy(policies[s])
            bars[s] = policy.award_min_confidence if policy.awards_automatic else None
            items = prescore(model, [str(i) for i in te.essay_id], [{"essay": e} for e in te.essay])
            route(model, policy, None, items)
            cols = criteria_columns(s)
            crit_cols = {c.id: cols[k] for c, k in zip(model.rubric.criteria, cols, strict=True)}
            award = model.rubric.award
            assert award is not None
            for i, it in enumerate(items):
                row = te.iloc[i]
                try:
                    resolved = {c: int(row[cc["target"]]) for c, cc in crit_cols.items()}
                    r1 = {c: int(row[cc["r1"]]) * rater_multiplier(s, c) for c, cc in crit_cols.items()}
                    r2 = {c: int(row[cc["r2"]]) * rater_multiplier(s, c) for c, cc in crit_cols.items()}
                except (TypeError, ValueError):
                    continue  # a missing score: no reference decision
                d = it.decision
                rows.append({
                    "set": s, "id": it.id, "outcome": d.outcome, "machine": d.levels_outcome,
                    "p_earned": d.p_earned, "resolved": "earned" if award.earned(model.rubric, resolved) else "not_yet",
                    "r1": "earned" if award.earned(model.rubric, r1) else "not_yet",
                    "r2": "earned" if award.earned(model.rubric, r2) else "not_yet",
                })
            df = pd.DataFrame([r for r in rows if r["set"] == s])
            auto = df[df.outcome != "needs_human"]
            echo(f"set {s}: {len(df)} essays, auto-decided {len(auto) / max(len(df), 1):.3f}; on those kappa "
                 f"machine-resolved {_kappa(list(auto.machine), list(auto.resolved))}, rater1-rater2 "
                 f"{_kappa(list(auto.r1), list(auto.r2))}; earned (resolved) {np.mean(df.resolved == 'earned'):.2f} "
                 f"[{time.perf_counter() - t0:.0f}s]")
    df = pd.DataFrame(rows)
    df.to_csv(out_dir / "decisions.csv", index=False)
    auto = df[df.outcome != "needs_human"]

    def rate(a: pd.Series, b: pd.Series, got: str, ref: str) -> float | None:
        return round(float(np.mean((a == got) & (b == ref))), 4) if len(a) else None

    summary = {
        "benchmark": "credential", "fold": fold, "sets": sets, "n": len(df), "n_auto": len(auto),
        "n_auto_awards": int((auto.outcome == "earned").sum()) if len(auto) else 0,
        "auto_decision_fraction": round(len(auto) / len(df), 4) if len(df) else 0.0,
        "decision_kappa_auto": _kappa(list(auto.machine), list(auto.resolved)),
        "human_decision_kappa": _kappa(list(auto.r1), list(auto.r2)),
        # like for like: the machine against rater 2, as rater 1 is against rater 2 (the resolved score is
        # built from both raters', so agreeing with it is easier than agreeing with one rater)
        "decision_kappa_auto_vs_rater2": _kappa(list(auto.machine), list(auto.r2)),
        "false_award_rate": rate(auto.machine, auto.resolved, "earned", "not_yet"),
        "false_deny_rate": rate(auto.machine, auto.resolved, "not_yet", "earned"),
        "human_false_award_rate": rate(auto.r1, auto.resolved, "earned", "not_yet"),
        "human_false_deny_rate": rate(auto.r1, auto.resolved, "not_yet", "earned"),
        "decision_kappa_all": _kappa(list(df.machine), list(df.resolved)),
        "human_decision_kappa_all": _kappa(list(df.r1), list(df.r2)),
        "award_bar": {str(k): v for k, v in bars.items()},  # None: awards go to a person (no bar passed its test)
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
