"""Check a routing policy's promise on fresh double-scored data (``scoring policy check``, the drift monitor).

The promise: on the items a policy auto-accepts, the machine agrees with the human at least as well as two
humans agree with each other. On new data with two independent human scores per item, per criterion:
  * the accepted items are those the router accepted (``auto`` / ``audit``, or a ``double`` sample whose
    machine rule was ``auto``), read from the routed output of ``scoring score --policy``;
  * machine vs rater 2 and rater 1 vs rater 2 on exactly those items (the machine stands in for rater 1, both
    are judged by the same reference: ``scoring.human_bar``), QWK and exact agreement, each with a 95% paired
    bootstrap interval, and the difference on the statistic the policy's bar uses (:func:`policy_bar`: the
    statistic and rater scale recorded in the policy's evidence, so a policy is checked as it was chosen);
  * ``fail`` when that interval lies wholly below 0 (the data show the accepted items below the human bar),
    ``pass`` otherwise (``confirmed`` when it lies wholly at or above 0), ``insufficient`` under ``min_n``
    double-scored accepted items.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import PolicyError
from scoring.human_bar import agreement_intervals, bar_statistic
from scoring.ingest import csv_delimiter, is_missing_score
from scoring.policy import CriterionPolicy, RoutingPolicy
from scoring.routing import _routed_rows, accepted_by_rule

MIN_N = 30
COMPARISON = "machine vs second score against first vs second score"  # scoring.human_bar: why the second


def policy_bar(cp: CriterionPolicy | None, n_levels: int) -> tuple[str, int]:
    """(statistic, rater multiplier) of the bar a criterion's policy was chosen with.

    The statistic the optimiser recorded (``evidence.guarantee.statistic``), else the default for the scale
    (:func:`scoring.human_bar.bar_statistic`: a policy from before the record, or without thresholds); the
    multiplier (``evidence.rater_multiplier``: 2 where the score of record is the sum of two raters), else 1.
    ``scoring policy check`` and the drift monitor both judge a policy by this, as it was chosen."""
    ev = cp.evidence if cp is not None else {}
    stat = (ev.get("guarantee") or {}).get("statistic") or bar_statistic(n_levels)
    mult = ev.get("rater_multiplier") or 1
    return str(stat), int(mult)


@dataclass(frozen=True)
class CriterionCheck:
    criterion: str
    status: str  # pass | fail | insufficient
    statistic: str  # qwk | exact: what the bar compares
    n_accepted: int  # accepted items in the file
    n_checked: int  # accepted items with two human scores
    difference: list[float | None]  # [estimate, low, high] of machine-human minus human-human, on ``statistic``
    confirmed: bool  # the interval lies at or above 0
    agreement: dict[str, Any] = field(default_factory=dict)
    rater_multiplier: int = 1  # human scores were multiplied by this onto the machine's scale

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "statistic": self.statistic, "n_accepted": self.n_accepted,
                "n_checked": self.n_checked, "difference": self.difference, "confirmed": self.confirmed,
                "comparison": COMPARISON, "rater_multiplier": self.rater_multiplier,
                **{k: v for k, v in self.agreement.items() if k != "n"}}

    def line(self) -> str:
        est, lo, hi = self.difference
        a = self.agreement
        if self.status == "insufficient":  # nothing was computed: say why, not "undefined"
            return (f"{self.criterion}: INSUFFICIENT on {self.statistic} (n={self.n_checked} double-scored of "
                    f"{self.n_accepted} accepted): {a.get('why', 'too few items to judge')}")
        diff = "-" if est is None else f"{est:+.3f} [{_f(lo)}, {_f(hi)}]"
        return (f"{self.criterion}: {self.status.upper()} on {self.statistic} (n={self.n_checked} double-scored of "
                f"{self.n_accepted} accepted{', raters x' + str(self.rater_multiplier) if self.rater_multiplier != 1 else ''}): "
                f"machine-vs-second minus first-vs-second {diff}; "
                f"QWK {_ci(a.get('machine_qwk'))} vs {_ci(a.get('human_qwk'))}; "
                f"exact {_ci(a.get('machine_exact'))} vs {_ci(a.get('human_exact'))}")


def _f(x: float | None) -> str:
    return "-" if x is None else f"{round(x, 3) + 0.0:+.3f}"  # + 0.0: never "-0.000"


def _ci(v: list[float | None] | None) -> str:
    if not v or v[0] is None:
        return "undefined"
    z = [None if x is None else round(x, 3) + 0.0 for x in v]  # + 0.0: never "-0.000"
    return f"{z[0]:.3f}" + (f" [{z[1]:.3f}, {z[2]:.3f}]" if z[1] is not None else "")


def check_criterion(criterion: str, machine: np.ndarray, first: np.ndarray, second: np.ndarray, *, statistic: str,
                    n_accepted: int | None = None, n_boot: int = 1000, seed: int = 13, min_n: int = MIN_N,
                    rater_multiplier: int = 1) -> CriterionCheck:
    """Judge one criterion from the accepted items' machine scores and two human scores (NaN: missing).

    Machine vs ``second`` against ``first`` vs ``second``; ``rater_multiplier`` scales both human scores onto
    the machine's scale (2: the policy's score of record is the sum of two raters)."""
    m, h1, h2 = (np.asarray(v, float) for v in (machine, first, second))
    h1, h2 = rater_multiplier * h1, rater_multiplier * h2
    ok = np.isfinite(m) & np.isfinite(h1) & np.isfinite(h2)
    m, h1, h2 = m[ok], h1[ok], h2[ok]
    n_acc = int(len(ok) if n_accepted is None else n_accepted)
    if len(m) < min_n:
        return CriterionCheck(criterion, "insufficient", statistic, n_acc, int(len(m)), [None, None, None], False,
                              {"why": f"need at least {min_n} accepted items with two human scores, found {len(m)}"},
                              rater_multiplier)
    iv = agreement_intervals(m, None, (h1, h2), n_boot=n_boot, rng=np.random.default_rng(seed))
    diff = iv.get(f"{statistic}_difference", [None, None, None])
    est, lo, hi = diff
    if hi is None:  # undefined (e.g. kappa with every score identical): judge on exact agreement instead
        statistic, diff = "exact", iv["exact_difference"]
        est, lo, hi = diff
    status = "fail" if hi is not None and hi < 0 else "pass"
    return CriterionCheck(criterion, status, statistic, n_acc, int(len(m)), list(diff),
                          bool(lo is not None and lo >= 0), iv, rater_multiplier)


# ------------------------------------------------------------------------------------------ files


def _int_or_nan(v: Any) -> float:
    if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
        return math.nan
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if f == int(f) else math.nan


def read_human_scores(path: Path, id_col: str, columns: dict[str, tuple[str, str]]) -> tuple[dict[str, dict[str, tuple[float, float]]], list[str]]:
    """{criterion: {id: (rater 1, rater 2)}} from a CSV / TSV / JSONL / Parquet file, and warnings."""
    import pandas as pd

    if not path.exists():
        raise PolicyError(f"human score file {path} not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".tab"):
            df = pd.read_csv(path, sep=csv_delimiter(path, "csv" if suffix == ".csv" else "tsv"), dtype=str,
                             keep_default_na=False)
        elif suffix in (".jsonl", ".ndjson"):
            df = pd.read_json(path, lines=True, dtype=False)
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            raise PolicyError(f"cannot tell the format of {path}: expected .csv, .tsv, .jsonl or .parquet, found {suffix or 'no extension'!r}")
    except PolicyError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken file is reported with its name
        raise PolicyError(f"could not read {path}: {exc}") from None
    need = [id_col] + [c for pair in columns.values() for c in pair]
    missing = [c for c in dict.fromkeys(need) if c not in df.columns]
    if missing:
        raise PolicyError(f"{path}: expected columns {missing}, found {list(df.columns)}")
    ids = df[id_col].astype(str).tolist()
    dup = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if dup:
        raise PolicyError(f"{path}: each id must appear once, found {len(dup)} repeated (first: {dup[0]!r})")
    out: dict[str, dict[str, tuple[float, float]]] = {}
    warnings: list[str] = []
    for crit, (c1, c2) in columns.items():
        a, b = [_int_or_nan(v) for v in df[c1]], [_int_or_nan(v) for v in df[c2]]
        for col, vals in ((c1, a), (c2, b)):  # cells filled, none a score: the wrong column, not a finding
            filled = [raw for raw in df[col] if not is_missing_score(raw)]
            if filled and all(math.isnan(x) for x in vals):
                raise PolicyError(f"{path}: column {col!r} (criterion {crit!r}) holds no whole-number score "
                                  f"(first filled cell: {str(filled[0])[:40]!r}): name the column of human scores")
        bad = sum(1 for x, raw in zip(a + b, list(df[c1]) + list(df[c2]), strict=True)
                  if math.isnan(x) and not is_missing_score(raw))
        if bad:
            warnings.append(f"{crit}: {bad} human score cell(s) are not whole numbers and were left out")
        out[crit] = dict(zip(ids, zip(a, b, strict=True), strict=True))
    return out, warnings


def _off_scale(human: dict[str, tuple[float, float]], levels: list[int], mult: int) -> dict[int, int]:
    """Human scores (times the rater multiplier) that are not levels of the criterion, and how many of each."""
    seen: dict[int, int] = {}
    for pair in human.values():
        for v in pair:
            if not math.isnan(v) and int(v) * mult not in levels:
                seen[int(v)] = seen.get(int(v), 0) + 1
    return seen


def _levels(res: dict[str, Any]) -> list[int] | None:
    probs = res.get("probabilities")
    if isinstance(probs, dict) and probs:
        return sorted(int(k) for k in probs)
    return None


def read_routed(path: Path) -> tuple[dict[str, dict[str, tuple[float, bool]]], set[str], dict[str, list[int]]]:
    """{criterion: {id: (machine score, accepted by the rule)}}, the model versions seen, and each scale."""
    if not path.exists():
        raise PolicyError(f"scored file {path} not found")
    if path.suffix.lower() not in (".jsonl", ".csv"):
        raise PolicyError(f"{path}: expected the .jsonl or .csv output of `scoring score --policy`, found "
                          f"{path.suffix or 'no extension'!r}")
    out: dict[str, dict[str, tuple[float, bool]]] = {}
    versions: set[str] = set()
    levels: dict[str, list[int]] = {}
    no_route: set[str] = set()
    try:
        for sid, mv, crit, res in _routed_rows(path):
            if mv:
                versions.add(str(mv))
            route = res.get("route")
            if not route:
                no_route.add(crit)
                continue
            accepted = accepted_by_rule(route, res.get("machine_rule"), res.get("reason"))
            score = res.get("score")
            out.setdefault(crit, {})[str(sid)] = (math.nan if score is None else float(score), accepted)
            lv = _levels(res)
            if lv:
                levels.setdefault(crit, lv)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"{path}: not the output of `scoring score` ({type(exc).__name__}: {exc})") from None
    if not out:
        found = f"none for {sorted(no_route)}" if no_route else "no routed criterion"
        raise PolicyError(f"{path}: expected routes (score the file with `scoring score --policy POLICY`), found {found}")
    if path.suffix.lower() == ".csv":
        import csv

        with path.open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), [])
        for crit in out:
            lv = sorted(int(h.split(".p", 1)[1]) for h in header if h.startswith(f"{crit}.p") and h.split(".p", 1)[1].lstrip("-").isdigit())
            if lv:
                levels[crit] = lv
    return out, versions, levels


def check_scored_file(policy: RoutingPolicy, scored: Path, humans: Path, columns: dict[str, tuple[str, str]], *,
                      id_col: str = "id", n_boot: int = 1000, seed: int = 13, min_n: int = MIN_N) -> tuple[list[CriterionCheck], list[str]]:
    """One check per criterion named in ``columns``; and warnings for the user."""
    routed, versions, levels = read_routed(scored)
    if policy.model_version and versions and versions != {policy.model_version}:
        raise PolicyError(f"policy {policy.policy_version} was tuned for model {policy.model_version}, but {scored} "
                          f"was scored by {sorted(versions)}: score the data with that model and policy")
    unknown = sorted(set(columns) - set(routed))
    if unknown:
        raise PolicyError(f"criteria {unknown} have no routed scores in {scored} (criteria there: {sorted(routed)})")
    not_in_policy = sorted(c for c in columns if c not in policy.criteria)
    if not_in_policy:
        raise PolicyError(f"criteria {not_in_policy} are not in policy {policy.policy_version} "
                          f"(criteria: {sorted(policy.criteria)})")
    human, warnings = read_human_scores(humans, id_col, columns)
    routed_ids = set().union(*(set(r) for r in routed.values())) if routed else set()
    some_crit = next(iter(columns))
    if not routed_ids & set(human[some_crit]):
        raise PolicyError(f"no id in {humans} (column {id_col!r}) is in {scored}: expected the human scores of the "
                          "submissions that were scored (check the file and --id-col)")
    stray = len(set(human[some_crit]) - routed_ids)
    if stray:
        warnings.append(f"{stray} row(s) of {humans} are not in {scored} and were not read")
    unchecked = sorted(c for c, cp in policy.criteria.items() if c in routed and c not in columns
                       and getattr(cp, "enabled", True))
    if unchecked:
        warnings.append(f"criteria {unchecked} are automated by the policy but not checked here: name their "
                        "human score columns too (--score-col / --second-score-col)")
    checks = []
    for crit in columns:
        cp = policy.criteria.get(crit)
        if cp is not None and not cp.enabled:  # the policy sends every item to people: no promise to check
            warnings.append(f"{crit}: the policy automates nothing on this criterion (every item goes to people), "
                            "so there is nothing to check")
            continue
        rows = routed[crit]
        acc_ids = [i for i, (_s, a) in rows.items() if a]
        missing = sum(1 for i in acc_ids if i not in human[crit])
        if missing:
            warnings.append(f"{crit}: {missing} accepted item(s) have no row in {humans}")
        pairs = [human[crit].get(i, (math.nan, math.nan)) for i in acc_ids]
        stat, mult = policy_bar(policy.criteria[crit], len(levels.get(crit, [])) or 99)
        off = _off_scale(human[crit], levels.get(crit, []), mult) if levels.get(crit) else {}
        if off:
            seen = ", ".join(f"{v} in {k} cell(s)" for v, k in sorted(off.items()))
            raise PolicyError(f"{crit}: human scores in {humans} lie outside the criterion's scale "
                              f"{levels[crit]}: {seen} (a 1-based export of a 0-based scale?): fix the columns")
        checks.append(check_criterion(crit, np.array([rows[i][0] for i in acc_ids]), np.array([p[0] for p in pairs]),
                                      np.array([p[1] for p in pairs]), statistic=stat, n_accepted=len(acc_ids),
                                      n_boot=n_boot, seed=seed, min_n=min_n, rater_multiplier=mult))
    return checks, warnings
