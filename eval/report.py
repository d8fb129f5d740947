"""The researcher's report: agreement tables, plots and documented, pseudonymised exports from the store.

``build_report(store, out_dir, ...)`` writes ``report.html`` (self-contained: figures embedded as base64
PNG, also saved under ``figures/``), one CSV and one JSON file per table, and ``data_dictionary.json``.
Exports carry keyed-hash pseudonyms of submission and assessor ids, never evidence text or names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from eval import report_plots as plots
from eval.agreement import (
    ScoreFrames,
    automation_table,
    expected_calibration_error,
    fairness_tables,
    human_human_pairs,
    human_human_table,
    human_machine_table,
    load_frames,
    qwk,
    qwk_indices,
    score_distribution_table,
    subgroup_human_table,
    subgroup_table,
)
from eval.gates import GatePolicy, evaluate_gates, load_policy
from eval.report_html import fmt, html_table, matrix_table
from scoring.store import Store

TEMPLATES = Path(__file__).parent / "templates"

_METRIC_COLS = {
    "n": "number of scored pairs",
    "mean_ref / mean_other": "mean score of the reference (first rater / human) and of the other rater (second rater / machine)",
    "sd_ref / sd_other": "standard deviations (ddof=1)",
    "qwk": "quadratic weighted kappa over the criterion's full scale (scikit-learn cohen_kappa_score)",
    "kappa": "unweighted Cohen's kappa",
    "exact / adjacent": "share of pairs with |difference| = 0 / <= 1",
    "pearson_r": "Pearson correlation",
    "alpha_ordinal": "Krippendorff's alpha, ordinal",
    "smd": "(mean(other) - mean(ref)) / sqrt((var_ref + var_other) / 2)",
    "<metric>_lo / <metric>_hi": "95% percentile bootstrap interval (items resampled, seeded) for qwk, exact, adjacent, "
    "smd; empty with --bootstrap 0",
}

DATA_DICTIONARY: dict[str, dict[str, Any]] = {
    "human_human": {
        "meaning": "Agreement of the first and second human rater, per rubric, rubric version, criterion and time window "
        "(window of the second score), on the pairs where both raters scored blind (without seeing the other's or "
        "the machine's score): a rater who saw it agrees more, which would raise the bar the machine is held to. "
        "A group holding only pairs that were not blind has a row with n 0 and no metrics.",
        "columns": {"rubric_id, rubric_version, criterion, window": "grouping keys", **_METRIC_COLS,
                    "n_not_blind": "double-scored pairs left out because the first or second rater was not blind "
                    "(e.g. historical scores imported with --not-blind, or a first rater who saw the machine's score)"},
    },
    "human_machine": {
        "meaning": "Agreement of the machine with the human reference (the first rater when they scored blind, "
        "else the second rater when they did, else the latest blind audit score; a first rater who saw the machine's suggestion is left out), per rubric, "
        "version, criterion, model version and window; with the ETS gate verdict.",
        "columns": {"rubric_id, rubric_version, criterion, model_version, window": "grouping keys", **_METRIC_COLS,
                    "smd_unpooled": "(mean(machine) - mean(human)) / sd(human): RSMTool's human-system SMD",
                    "r2 / rmse": "R2 (scikit-learn r2_score) and root mean squared error of the machine as a predictor "
                    "of the human score (RSMTool R2, RMSE), with 95% bootstrap intervals",
                    "prmse": "RSMTool prmse_true against the first and second rater's scores, over the items holding at "
                    "least one of them (blind-audit-only items left out), with a 95% bootstrap interval; empty (n/a) "
                    "without at least 10 double-scored items or where the true-score variance estimate is not "
                    "positive (RSMTool's formula then gives a meaningless figure: 4 double-scored items gave -29.3)",
                    "prmse_note": "why PRMSE is empty (n/a): no double-scored item, fewer than 10 double-scored "
                    "items, or a true-score variance estimate that is not positive; empty where PRMSE is given",
                    "prmse_n / prmse_n_double": "items PRMSE was computed on / of which double-scored",
                    "ece": "expected calibration error of the machine's top-level probability (10 bins)",
                    "auto_fraction": "share of ALL this key's machine scores whose score stands (routes auto "
                    "and audit), from the automation table",
                    "hh_qwk": "human-human QWK of the same rubric version and criterion, the gate's reference; empty "
                    "when measured on fewer than the policy's min_n double-scored items (no degradation check then)",
                    "hh_n": "double-scored items (both raters blind) behind that human-human QWK",
                    "hh_n_not_blind": "double-scored pairs left out of that reference because a rater was not blind; "
                    "when they leave no reference the gate is insufficient unless another check fails",
                    "n_not_blind": "machine-scored items left out because their only human score came from a first "
                    "rater who saw the machine's (or another rater's) score: anchored on it, not a reference",
                    "gate / gate_detail": "gate policy verdict (pass / fail / insufficient) and failing checks"},
    },
    "automation": {
        "meaning": "How much the machine decided, from the route recorded with every machine score (auto-accepted "
        "ones included, which no person scored), per rubric, version, criterion, model version and window of the "
        "machine score; `(all)` pools a rubric's criteria. Audited rows compare auto-accepted machine scores with "
        "the blind audit score of the same items.",
        "columns": {"rubric_id, rubric_version, criterion, model_version, window": "grouping keys",
                    "n": "machine scores", "n_accepted / auto_fraction": "scores that stand (auto + audit) and "
                    "their share", "n_auto, n_audit, n_human, n_double": "scores per route",
                    "n_unrouted": "machine scores recorded without a route (imported or pre-routing)",
                    "n_audited": "accepted scores that have a blind audit score",
                    "qwk_audited, exact_audited": "machine vs blind audit score on those (QWK per criterion only)"},
    },
    "decisions": {
        "meaning": "Credential decisions per rubric (latest recorded per submission: machine when automatic, final once "
        "every criterion is resolved), resubmissions (submissions whose metadata names the one they revise) and time "
        "to earn along a resubmission chain. With --since/--until, a submission counts when its latest decision was "
        "recorded in the window (a submission the machine sent to a person in March and decided in April is an "
        "April decision), and every column describes those submissions; the rest of a resubmission chain (the "
        "submission revised, a later revision) counts whenever it was made.",
        "columns": {"rubric_id": "rubric",
                    "submissions_decided, earned, not_yet, needs_human": "latest decision per submission (with "
                    "--since/--until: submissions whose latest decision was recorded in the window)",
                    "resubmissions": "submissions that revise an earlier one (with --since/--until: of those "
                    "decided in the window)",
                    "resubmission_rate_after_not_yet": "share of 'not yet' submissions that were revised",
                    "earned_after_resubmission": "earned decisions reached through a resubmission",
                    "median_days_to_earn": "days from the chain's first submission to the earned decision"},
    },
    "decision_agreement": {
        "meaning": "Agreement on the credential decision itself: first vs second rater (each rater's levels through the "
        "award rule, where both scored every criterion blind); the machine's decision vs the final one (how often review "
        "changed it: auto-accepted criteria resolve to the machine's own levels, so this is no validity figure); "
        "and the machine's decision vs the award rule on blind human levels (blind first rater, else blind second, "
        "else blind audit), where every criterion has one. With --since/--until, a machine pair counts when the "
        "machine's decision was made in the window (it is recorded with the machine's scores, so these are the "
        "submissions of that window's human-machine pairs), whenever the final decision or the human scores came; "
        "a human-human pair when the second rater's last score of the submission was recorded in it.",
        "columns": {"rubric_id, rubric_version": "keys",
                    "pair": "human-human, machine vs final or machine vs blind human",
                    "n": "submissions compared",
                    "agreement, kappa": "percent agreement and Cohen's kappa on earned / not yet",
                    "false_award_rate": "share where the second rater (machine) says earned and the reference not yet",
                    "false_deny_rate": "share where it says not yet and the reference earned"},
    },
    "over_time": {
        "meaning": "QWK, exact agreement and n per time window (calendar period of the second rater's score for "
        "human-human pairs, of the machine score for human-machine pairs), human-human and human-machine.",
        "columns": {"pair": "human-human or machine model version",
                    "rubric_id, rubric_version, criterion, window": "keys",
                    "n, qwk, exact": "as above"},
    },
    "subgroups": {
        "meaning": "Per value of a metadata field named with --subgroup: machine vs human means, QWK, R2, RMSE and DSM "
        "(RSMTool's evaluation by subgroup).",
        "columns": {"rubric_id, rubric_version, criterion, model_version": "keys",
                    "field, group": "metadata field and its value ('(missing)' when absent)",
                    "n, mean_human, mean_machine, sd_human, sd_machine, qwk, r2, rmse": "within the subgroup",
                    "dsm": "RSMTool difference of standardised means: z(machine) - z(human), population mean/SD; "
                    "empty (shown 'n/a') where it cannot be computed, never 0",
                    "dsm_lo / dsm_hi, qwk_lo / qwk_hi": "95% bootstrap interval (items resampled within each group)",
                    "gate": "ok / fail (|DSM| > policy max) / small (n below policy min_subgroup_n) / n/a"},
    },
    "subgroups_human": {
        "meaning": "First vs second rater per value of a --subgroup field (RSMTool's human-human agreement by "
        "subgroup): the reference the machine's subgroup figures are read against.",
        "columns": {"rubric_id, rubric_version, criterion": "keys",
                    "field, group": "metadata field and its value", "n": "double-scored items",
                    "qwk, exact (+ _lo/_hi)": "agreement with 95% bootstrap interval",
                    "smd": "pooled SMD second vs first rater"},
    },
    "fairness": {
        "meaning": "RSMTool's additional fairness analyses (Loukina, Madnani & Zechner 2019) per --subgroup field: "
        "share of variance explained by group membership (adjusted R2 of an OLS fit, statsmodels) in squared error "
        "(overall score accuracy, osa), in signed error machine - human (overall score difference, osd), and in "
        "signed error once the human score is controlled for (conditional score difference, csd: difference in "
        "adjusted R2 to the human-score-only model, p from their F test).",
        "columns": {"rubric_id, rubric_version, criterion, model_version, field": "keys and the --subgroup field",
                    "n, n_groups, base_group": "items, groups, reference group (the largest)",
                    "analysis, metric": "osa / osd / csd and its name", "r2_adj": "variance explained by group",
                    "p_value": "F test p value"},
    },
    "fairness_estimates": {
        "meaning": "Per group, the fairness models' coefficients: the difference from the reference group (the "
        "intercept row: the reference group's own value) with 95% confidence intervals.",
        "columns": {"rubric_id, rubric_version, criterion, model_version, field": "keys and the --subgroup field",
                    "analysis": "osa / osd / csd", "group, n": "group and its items",
                    "estimate, estimate_lo, estimate_hi, p_value": "coefficient, its 95% CI, p value"},
    },
    "score_distribution": {
        "meaning": "Share of each score level given by the human reference and by the machine on the same items "
        "(RSMTool's score distribution table); every level of the scale is listed.",
        "columns": {"rubric_id, rubric_version, criterion, model_version": "keys", "level": "score level",
                    "n": "items compared",
                    "n_human / pct_human, n_machine / pct_machine": "count and percent at that level",
                    "pct_difference": "pct_machine - pct_human"},
    },
    "confusion": {
        "meaning": "Confusion matrices in long form (every cell with items; the page shows them as tables, long scales "
        "binned).",
        "columns": {"pair": "human-human or machine model version", "rubric_id, rubric_version, criterion": "keys",
                    "reference": "first rater (human-human) or human reference score",
                    "other": "second rater or machine score", "count": "number of items"},
    },
    "reliability": {
        "meaning": "Reliability-diagram bins of machine probabilities (top-level confidence vs accuracy vs human).",
        "columns": {"rubric_id, criterion, model_version": "keys", "bin, lower, upper": "confidence bin",
                    "n": "items in bin", "confidence": "mean top probability", "accuracy": "share where argmax = human",
                    "accuracy_lo / accuracy_hi": "95% Wilson interval of that share",
                    "small": "true when n < 10 (drawn hollow)"},
    },
    "automation_curve": {
        "meaning": "If the machine auto-scored only items whose top probability is at least a threshold: the share "
        "automated and the QWK / exact agreement on them (the trade-off routing chooses a point on).",
        "columns": {"rubric_id, criterion, model_version": "keys", "threshold": "top-probability threshold",
                    "auto_fraction": "share of items at or above it", "n": "items (thresholds with fewer than 10 "
                    "items, or fewer than 2% of the criterion's items, are left out)", "qwk, exact": "agreement with the human reference on those items",
                    "qwk_lo / qwk_hi": "95% bootstrap interval of that QWK"},
    },
    "items": {
        "meaning": "One row per submission x criterion: the scores that every table is computed from.",
        "columns": {"submission": "pseudonym: HMAC-SHA256(key, rubric id + external id), 16 hex",
                    "rubric_id, rubric_version, criterion": "keys",
                    "h1, h2, audit": "first, second and latest blind audit human score (empty when absent)",
                    "h1_blind": "whether the first rater scored without seeing the machine's or another rater's "
                    "score (only a blind h1 is the machine's reference)",
                    "h2_blind": "whether the second rater scored without seeing another rater's or the machine's "
                    "score (a human-human pair counts only when h1 and h2 are both blind)",
                    "h1_assessor, h2_assessor, audit_assessor": "assessor pseudonyms (keyed hash)",
                    "h1_at, h2_at, audit_at": "UTC times of those scores",
                    "machine_<model>": "latest machine score of each model version",
                    "meta_<field>": "value of each --subgroup metadata field"},
    },
    "suspensions": {
        "meaning": "Automation suspensions (drift gate failures or manual) and when they were lifted.",
        "columns": {"rubric_id, criterion": "keys", "reason": "why", "suspended_at, lifted_at": "UTC",
                    "lifted_by": "e.g. model:<version> when a promotion lifted it"},
    },
    "models": {
        "meaning": "Model registry.",
        "columns": {"version, rubric_id, status": "status candidate / promoted / retired",
                    "registered_at, promoted_at": "UTC"},
    },
}


def data_dictionary_markdown() -> str:
    """The data dictionary as Markdown tables (for the section in docs/audit.md)."""
    out = []
    for name, d in DATA_DICTIONARY.items():
        out.append(f"**`{name}.csv` / `{name}.json`**: {d['meaning']}\n\n| column | meaning |\n|---|---|")
        out += [f"| {k} | {v} |" for k, v in d["columns"].items()]
        out.append("")
    return "\n".join(out)


class Pseudonymizer:
    """Keyed hash of identifiers: stable within one key, not reversible without it."""

    def __init__(self, key: str | None):
        self.key = (key or secrets.token_hex(32)).encode()
        self.ephemeral = key is None

    def __call__(self, kind: str, value: Any) -> str | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return hmac.new(self.key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:16]


@dataclass
class ReportResult:
    out_dir: Path
    html: Path
    tables: dict[str, pd.DataFrame]
    figures: list[Path] = field(default_factory=list)


@dataclass
class Section:
    """One part of the page: its tables (HTML blocks) and figures, in reading order."""

    id: str
    title: str
    meaning: str
    exports: list[str]
    blocks: list[Markup] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)


def _confusion(ref: np.ndarray, oth: np.ndarray, labels: list[int]) -> np.ndarray:
    pos = {v: i for i, v in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), int)
    for a, b in zip(ref, oth, strict=True):
        cm[pos[int(a)], pos[int(b)]] += 1
    return cm


_CI = ("_lo", "_hi")
HH_COLUMNS = ["rubric_id", "rubric_version", "criterion", "window", "n", "n_not_blind", *[m + x for m in ("qwk",) for x in ("", *_CI)],
              *[m + x for m in ("smd",) for x in ("", *_CI)], *[m + x for m in ("exact", "adjacent") for x in ("", *_CI)],
              "kappa", "pearson_r", "alpha_ordinal", "mean_ref", "mean_other", "sd_ref", "sd_other"]
HM_COLUMNS = ["rubric_id", "rubric_version", "criterion", "model_version", "window", "n", "qwk", "qwk_lo", "qwk_hi",
              "gate", "hh_qwk", "hh_n", "hh_n_not_blind", "n_not_blind", "smd", "smd_lo", "smd_hi", "prmse", "prmse_lo", "prmse_hi", "prmse_n", "prmse_n_double",
              "prmse_note", "exact", "exact_lo", "exact_hi", "adjacent", "adjacent_lo", "adjacent_hi", "kappa", "pearson_r", "r2",
              "r2_lo", "r2_hi", "rmse", "rmse_lo", "rmse_hi", "smd_unpooled", "alpha_ordinal", "ece", "auto_fraction",
              "mean_ref", "mean_other", "sd_ref", "sd_other", "gate_detail"]
SG_COLUMNS = ["rubric_id", "rubric_version", "criterion", "model_version", "field", "group", "n", "mean_human",
              "mean_machine", "sd_human", "sd_machine", "dsm", "dsm_lo", "dsm_hi", "qwk", "qwk_lo", "qwk_hi", "r2", "rmse",
              "gate"]
SGH_COLUMNS = ["rubric_id", "rubric_version", "criterion", "field", "group", "n", "qwk", "qwk_lo", "qwk_hi", "exact",
               "exact_lo", "exact_hi", "smd"]
# Exports whose columns depend on what the store holds get them fixed here, so that a script reading
# human_machine.csv works on a store without machine scores (a header, no rows) and with --bootstrap 0
# (interval columns present and empty), not only on the store it was written against.
EXPORT_COLUMNS = {"human_human": HH_COLUMNS, "human_machine": HM_COLUMNS, "subgroups": SG_COLUMNS,
                  "subgroups_human": SGH_COLUMNS}


def conform(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with export ``name``'s documented columns in order (missing ones empty); columns the list does
    not name (none today) are kept after them rather than dropped."""
    want = EXPORT_COLUMNS.get(name)
    if want is None:
        return df
    return df.reindex(columns=want + [c for c in df.columns if c not in want])


def _clean(v: Any) -> Any:
    """A cell as JSON: a missing value (NaN, NaT, pd.NA) is null, never the strings "NaT" or "<NA>"."""
    if v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, np.generic):
        return _clean(v.item())
    if isinstance(v, pd.Timestamp | datetime):
        return v.isoformat()
    return v


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in r.items()} for r in df.to_dict(orient="records")]


# what the human-machine table shows first: the figures a decision rests on, then RSMTool's accuracy block
HM_PARTS = [
    ("headline and gate", ["n", "qwk", "gate", "hh_qwk", "hh_n", "hh_n_not_blind", "n_not_blind", "smd", "prmse", "prmse_n", "auto_fraction"]),
    ("accuracy (RSMTool's evaluation table)", ["exact", "adjacent", "kappa", "pearson_r", "r2", "rmse",
                                               "smd_unpooled"]),
    ("descriptives and calibration", ["mean_ref", "sd_ref", "mean_other", "sd_other", "alpha_ordinal", "ece",
                                      "prmse_n_double", "prmse_note"]),
    ("gate detail", ["gate_detail"]),
]
HH_PARTS = [
    ("agreement", ["n", "n_not_blind", "qwk", "kappa", "exact", "adjacent", "smd"]),
    ("descriptives", ["mean_ref", "sd_ref", "mean_other", "sd_other", "pearson_r", "alpha_ordinal"]),
]
SG_PARTS = [
    ("difference and agreement", ["n", "dsm", "gate", "qwk", "r2", "rmse"]),
    ("descriptives", ["mean_human", "mean_machine", "sd_human", "sd_machine"]),
]
GATE_CLASSES = {"gate=fail": "bad", "gate=pass": "ok", "gate=insufficient": "warn", "gate=small": "warn"}


# Tables that describe the store's state: --since/--until do not filter them.
UNFILTERED = ("suspensions", "models")


def provenance(store: Store, tables: dict[str, pd.DataFrame], *, policy: GatePolicy, verification: Any,
               rubric_id: str | None, since: datetime | None, until: datetime | None, window: str,
               subgroups: list[str], n_boot: int, seed: int, pseudonyms_ephemeral: bool) -> dict[str, Any]:
    """What a figure from this report rests on, for whoever cites it: the store (database kind, never its
    URL or credentials) pinned by the audit log's head, the filters and which tables they do not apply to,
    the gate policy and its thresholds, the bootstrap, the model versions and rows per export."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        software = version("rubric-scoring")
    except PackageNotFoundError:
        software = None
    models = sorted({str(m) for name in ("human_machine", "automation") if "model_version" in tables[name]
                     for m in tables[name]["model_version"].dropna()})
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "software": {"rubric-scoring": software},
        "store": {"database": store.dialect,
                  "audit_log": {"verified": bool(verification.ok), "entries": verification.entries_checked,
                                "head_seq": verification.last_seq, "head_hash": verification.head_hash}},
        "filters": {"rubric": rubric_id, "since": since.isoformat() if since else None,
                    "until": until.isoformat() if until else None, "window": window, "subgroups": subgroups,
                    "pairs_selected_by": "human-machine: time of the machine score; human-human: time of the "
                                         "second rater's score (since inclusive, until exclusive)",
                    "decisions_selected_by": "decisions: time of the submission's latest decision; "
                                             "decision_agreement: time of the machine's decision (human-human: of "
                                             "the second rater's last score)",
                    "not_filtered": list(UNFILTERED)},
        "bootstrap": {"resamples": n_boot, "seed": seed, "level": 0.95},
        "gate_policy": {"id": policy.id, "version": policy.version, "min_qwk": policy.min_qwk,
                        "max_qwk_degradation": policy.max_qwk_degradation, "max_abs_smd": policy.max_abs_smd,
                        "max_abs_dsm": policy.max_abs_dsm, "min_n": policy.min_n,
                        "min_subgroup_n": policy.min_subgroup_n},
        "model_versions": models,
        "pseudonym_key": "one-off (pseudonyms cannot be linked to another report)" if pseudonyms_ephemeral
        else "SCORING_PSEUDONYM_KEY",
        "rows": {name: len(df) for name, df in tables.items()},
    }


def _gate_reference(n: int, qwk: Any, min_n: int) -> float | None:
    """The human-human QWK the gate's degradation check compares the machine with: only one measured on at
    least the policy's ``min_n`` double-scored items (the bar every gate figure is held to, and the one
    ``scoring drift check`` uses), else None. A QWK of 1.0 on four items would otherwise fail a machine
    that meets every threshold."""
    if n < min_n or qwk is None or not math.isfinite(qwk):
        return None
    return float(qwk)


FIGURE_NAME = re.compile(r"\d{3}_.+\.png")  # what build_report names a figure: NNN_<what it shows>.png


def remove_old_figures(folder: Path) -> list[Path]:
    """Delete the figures an earlier report wrote into ``folder`` (files named like ours, nothing else).

    Why: a report written into a used --out folder would otherwise leave the earlier report's figures beside
    its own (a confusion plot of a model outside the new window), where they read as part of this report."""
    old = [p for p in folder.iterdir() if p.is_file() and FIGURE_NAME.fullmatch(p.name)]
    for p in old:
        p.unlink()
    return old


def build_report(
    store: Store,
    out_dir: str | Path,
    *,
    rubric_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    subgroups: list[str] | None = None,
    window: str = "M",
    n_boot: int = 1000,
    seed: int = 13,
    policy: GatePolicy | None = None,
    pseudonym_key: str | None = None,
    max_confusion_plots: int = 40,
) -> ReportResult:
    """Compute every table from the store, draw the figures, write HTML + CSV/JSON exports to ``out_dir``."""
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    remove_old_figures(out / "figures")
    policy = policy or load_policy()
    pseudo = Pseudonymizer(pseudonym_key)
    fields = subgroups or []
    frames = load_frames(store, rubric_id=rubric_id, since=since, until=until)
    tables: dict[str, pd.DataFrame] = {}
    fig_paths: list[Path] = []
    n_fig = 0

    def figure(name: str, png: bytes, caption: str, wide: bool = False) -> dict[str, Any]:
        nonlocal n_fig
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:120]
        path = out / "figures" / f"{n_fig:03d}_{safe}.png"
        n_fig += 1
        path.write_bytes(png)
        fig_paths.append(path)
        return {"caption": caption, "src": "data:image/png;base64," + base64.b64encode(png).decode(),
                "file": f"figures/{path.name}", "wide": wide}

    # every metric column present even where a group's n is 1 (agreement_metrics then leaves QWK out)
    hh = conform("human_human", human_human_table(frames, n_boot=n_boot, seed=seed))
    hm = conform("human_machine", human_machine_table(frames, n_boot=n_boot, seed=seed))
    sg = _subgroups(frames, fields, policy, n_boot, seed)
    auto_all = automation_table(frames)
    if not hm.empty:
        ref = {(r.rubric_id, r.rubric_version, r.criterion): (int(r.n), int(r.n_not_blind), r.qwk)
               for r in hh.itertuples()}  # the human-human reference of each criterion
        refs = [ref.get((r.rubric_id, r.rubric_version, r.criterion), (0, 0, None)) for r in hm.itertuples()]
        hm["hh_n"] = [n for n, _seen, _q in refs]
        hm["hh_n_not_blind"] = [seen for _n, seen, _q in refs]
        hm["hh_qwk"] = [_gate_reference(n, q, policy.min_n) for n, _seen, q in refs]
        by_key: dict[tuple[Any, ...], dict[str, tuple[float, int]]] = {}
        for r in sg.itertuples():
            if r.dsm is not None and not (isinstance(r.dsm, float) and math.isnan(r.dsm)):
                by_key.setdefault((r.rubric_id, r.rubric_version, r.criterion, r.model_version), {})[
                    f"{r.field}={r.group}"] = (r.dsm, r.n)
        verdicts = [evaluate_gates(r._asdict(), policy, human_human_qwk=r.hh_qwk, hh_n_not_blind=r.hh_n_not_blind,
                                   hh_n=r.hh_n,
                                   subgroups=by_key.get((r.rubric_id, r.rubric_version, r.criterion,
                                                         r.model_version)))
                    for r in hm.itertuples()]
        hm["gate"] = [v.status for v in verdicts]
        hm["gate_detail"] = [v.summary() for v in verdicts]
        have = {(r.rubric_id, r.rubric_version, r.criterion, r.model_version, r.window): r.auto_fraction
                for r in auto_all.itertuples()}
        hm["auto_fraction"] = [have.get((r.rubric_id, r.rubric_version, r.criterion, r.model_version, r.window))
                               for r in hm.itertuples()]
    tables["human_human"], tables["human_machine"] = hh, hm  # hm has every documented column (conformed above)
    tables["score_distribution"] = score_distribution_table(frames)
    tables["automation"] = automation_table(frames, window=window)
    from eval.decisions import decision_agreement, decision_summary

    tables["decisions"] = decision_summary(store, rubric_id, since=since, until=until)
    tables["decision_agreement"] = decision_agreement(store, rubric_id, since=since, until=until)
    tables["over_time"] = _over_time(frames, window)
    tables["subgroups"] = conform("subgroups", sg)
    sgh = [subgroup_human_table(frames, f, n_boot=n_boot, seed=seed) for f in fields]
    sgh = [x for x in sgh if not x.empty]
    tables["subgroups_human"] = conform("subgroups_human", pd.concat(sgh, ignore_index=True) if sgh
                                        else pd.DataFrame())
    fair = [fairness_tables(frames, f) for f in fields]
    tables["fairness"] = pd.concat([f[0] for f in fair], ignore_index=True) if fair else fairness_tables(frames, "")[0]
    tables["fairness_estimates"] = (pd.concat([f[1] for f in fair], ignore_index=True) if fair
                                    else fairness_tables(frames, "")[1])
    tables["confusion"], conf_blocks, conf_figs = _confusions(frames, max_confusion_plots)
    tables["reliability"], tables["automation_curve"], prob_figs = _probability_tables(frames, auto_all, n_boot, seed)
    tables["items"] = _items(frames, fields, pseudo)
    tables["suspensions"] = pd.DataFrame([{
        "rubric_id": s.rubric_id, "criterion": s.criterion, "reason": s.reason, "suspended_at": s.suspended_at,
        "lifted_at": s.lifted_at, "lifted_by": s.lifted_by} for s in store.suspensions(rubric_id=rubric_id)],
        columns=["rubric_id", "criterion", "reason", "suspended_at", "lifted_at", "lifted_by"])
    tables["models"] = pd.DataFrame([{
        "version": m.version, "rubric_id": m.rubric_id, "status": m.status, "registered_at": m.registered_at,
        "promoted_at": m.promoted_at} for m in store.models() if rubric_id is None or m.rubric_id == rubric_id],
        columns=["version", "rubric_id", "status", "registered_at", "promoted_at"])

    sections = _sections(tables, policy, window, figure, conf_blocks, conf_figs, prob_figs)

    for name, df in tables.items():
        df.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.json").write_text(json.dumps(_records(df), indent=1, default=str), encoding="utf-8")
    (out / "data_dictionary.json").write_text(json.dumps(DATA_DICTIONARY, indent=1), encoding="utf-8")

    verification = store.verify_audit()
    (out / "provenance.json").write_text(json.dumps(provenance(
        store, tables, policy=policy, verification=verification, rubric_id=rubric_id, since=since, until=until,
        window=window, subgroups=fields, n_boot=n_boot, seed=seed, pseudonyms_ephemeral=pseudo.ephemeral),
        indent=1), encoding="utf-8")
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "jinja"]))
    env.filters["fmt"] = fmt
    html = env.get_template("report.html.jinja").render(
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        filters={"rubric": rubric_id or "all", "since": since, "until": until, "subgroups": fields,
                 "window": window, "bootstrap": n_boot, "seed": seed},
        policy=policy, verification=verification, pseudonyms_ephemeral=pseudo.ephemeral,
        n_items=len(tables["items"]), unfiltered=UNFILTERED, sections=sections, dictionary=DATA_DICTIONARY, small_n=plots.SMALL_N,
    )
    html_path = out / "report.html"
    html_path.write_text(html, encoding="utf-8")
    return ReportResult(out, html_path, tables, fig_paths)


def _sections(tables: dict[str, pd.DataFrame], policy: GatePolicy, window: str, figure: Any,
              conf_blocks: list[Markup], conf_figs: list[tuple[str, bytes, str]],
              prob_figs: list[tuple[str, bytes, str]]) -> list[Section]:
    """The page in reading order, each table rendered to fit and each figure captioned with its n."""
    dd = DATA_DICTIONARY

    def sec(sid: str, title: str, exports: list[str]) -> Section:
        return Section(sid, title, dd[exports[0]]["meaning"], exports)

    out: list[Section] = []
    s = sec("human_human", "Human-human agreement", ["human_human"])
    s.blocks.append(html_table(tables["human_human"], name="human_human", parts=HH_PARTS))
    out.append(s)

    s = sec("human_machine", "Human-machine agreement and gates", ["human_machine"])
    s.blocks.append(html_table(tables["human_machine"], name="human_machine", parts=HM_PARTS, classes=GATE_CLASSES))
    out.append(s)

    s = sec("score_distribution", "Score distributions (human vs machine, per level)", ["score_distribution"])
    s.blocks += _distribution_blocks(tables["score_distribution"])
    out.append(s)

    s = sec("confusion", "Confusion matrices", ["confusion"])
    s.blocks += conf_blocks
    s.figures += [figure(n, png, cap) for n, png, cap in conf_figs]
    out.append(s)

    s = sec("automation", "Automation (recorded routes)", ["automation", "automation_curve", "reliability"])
    s.blocks.append(html_table(tables["automation"], name="automation"))
    au = tables["automation"]
    if not au.empty:
        pooled = au.groupby(["rubric_id", "rubric_version", "criterion", "model_version"], as_index=False)[
            ["n", "n_auto", "n_audit", "n_human", "n_double", "n_unrouted"]].sum()
        pooled["auto_fraction"] = (pooled["n_auto"] + pooled["n_audit"]) / pooled["n"]
        for rid, g in pooled.groupby("rubric_id"):
            per = g[g["criterion"] != "(all)"]
            if len(per):
                s.figures.append(figure(f"routes_{rid}", plots.plot_routes(g, str(rid)),
                                        f"{rid}: recorded route of every machine score, per criterion "
                                        f"(n={int(per['n'].sum())} machine scores)"))
    s.figures += [figure(n, png, cap, wide=True) for n, png, cap in prob_figs]
    out.append(s)

    s = sec("decisions", "Credential decisions", ["decisions"])
    s.blocks.append(html_table(tables["decisions"], name="decisions"))
    out.append(s)
    s = sec("decision_agreement", "Agreement on credential decisions", ["decision_agreement"])
    s.blocks.append(html_table(tables["decision_agreement"], name="decision_agreement"))
    out.append(s)

    s = sec("subgroups", "Subgroups: differences (DSM), human-human agreement and fairness",
            ["subgroups", "subgroups_human", "fairness", "fairness_estimates"])
    sg = tables["subgroups"]
    none = "No subgroup field named: pass --subgroup FIELD (a metadata field of the submissions)."
    s.blocks.append(html_table(sg, name="subgroups", parts=SG_PARTS, empty=none,
                               classes={"gate=fail": "bad", "gate=small": "warn", "gate=n/a": "warn"}))
    if not sg.empty:
        for (rid, crit, mv, fld), g in sg.groupby(["rubric_id", "criterion", "model_version", "field"]):
            png = plots.plot_group_bars(
                [str(x) for x in g["group"]], [None if v is None or (isinstance(v, float) and math.isnan(v)) else v
                                               for v in g["dsm"]],
                list(g["dsm_lo"]), list(g["dsm_hi"]), [int(n) for n in g["n"]],
                small=[x == "small" for x in g["gate"]], fail=[x == "fail" for x in g["gate"]],
                xlabel="DSM: z(machine) - z(human), 95% bootstrap interval",
                title=f"{rid}/{crit} ({mv or 'model ?'}) by {fld}, n={int(g['n'].sum())}",
                limits=(-policy.max_abs_dsm, policy.max_abs_dsm), missing="DSM n/a (an SD is 0)")
            s.figures.append(figure(f"subgroup_{rid}_{crit}_{fld}", png,
                                    f"DSM by {fld}, {rid}/{crit} (n={int(g['n'].sum())}); dashed: "
                                    f"±{policy.max_abs_dsm}; hatched grey: n < {policy.min_subgroup_n}"))
    s.blocks.append(Markup("<h3>Human-human agreement by subgroup</h3>"))
    s.blocks.append(html_table(tables["subgroups_human"], name="subgroups_human"))
    shh = tables["subgroups_human"]
    for (rid, crit, fld), g in (shh.groupby(["rubric_id", "criterion", "field"]) if not shh.empty else []):
        png = plots.plot_group_bars(
            [str(x) for x in g["group"]], list(g["qwk"]), list(g.get("qwk_lo", [None] * len(g))),
            list(g.get("qwk_hi", [None] * len(g))), [int(n) for n in g["n"]],
            small=[n < policy.min_subgroup_n for n in g["n"]], fail=[False] * len(g),
            xlabel="QWK first vs second rater, 95% bootstrap interval",
            title=f"{rid}/{crit}: human-human QWK by {fld}, n={int(g['n'].sum())}")
        s.figures.append(figure(f"subgroup_hh_{rid}_{crit}_{fld}", png,
                                f"Human-human QWK by {fld}, {rid}/{crit} (n={int(g['n'].sum())} double-scored)"))
    s.blocks.append(Markup("<h3>Fairness (RSMTool's additional fairness analyses)</h3>"))
    s.blocks.append(html_table(tables["fairness"], name="fairness"))
    s.blocks.append(html_table(tables["fairness_estimates"], name="fairness_estimates"))
    fe = tables["fairness_estimates"]
    for (rid, crit, mv, fld), g in (fe.groupby(["rubric_id", "criterion", "model_version", "field"])
                                    if not fe.empty else []):
        n = int(g[g["analysis"] == "osd"]["n"].sum())
        s.figures.append(figure(f"fairness_{rid}_{crit}_{fld}", plots.plot_fairness(
            g, f"{rid}/{crit} ({mv}) by {fld}, n={n}"), f"Fairness estimates by {fld}, {rid}/{crit} (n={n}): "
            "difference from the reference group with 95% CI", wide=True))
    out.append(s)

    s = sec("over_time", "Agreement over time", ["over_time"])
    s.blocks.append(html_table(tables["over_time"], name="over_time"))
    ot = tables["over_time"]
    for rid, g in (ot.groupby("rubric_id") if not ot.empty else []):
        s.figures.append(figure(f"over_time_{rid}", plots.plot_over_time(
            g, f"{rid}: QWK per {window} window", policy.min_qwk),
            f"{rid}: QWK per {window} window (n={int(g['n'].sum())} pairs over {g['window'].nunique()} window(s)); "
            f"dashed: gate {policy.min_qwk}; n at each point", wide=True))
    out.append(s)

    for name, title in (("suspensions", "Automation suspensions"), ("models", "Models")):
        s = sec(name, title, [name])
        s.blocks.append(html_table(tables[name], name=name))
        out.append(s)
    return out


def _distribution_blocks(dist: pd.DataFrame) -> list[Markup]:
    """One compact table per rubric x criterion x model: levels as rows; a long scale in ranges of levels
    (the export keeps every level)."""
    blocks: list[Markup] = []
    for (rid, ver, crit, mv), g in (dist.groupby(["rubric_id", "rubric_version", "criterion", "model_version"])
                                    if not dist.empty else []):
        n = int(g["n"].iloc[0])
        bins = plots.level_bins(list(g["level"]))
        note = f"; levels in {len(bins)} ranges, every level in score_distribution.csv" if len(bins) < len(g) else ""
        rows = [f'<div class="tablewrap dist" data-table="score_distribution"><table><caption>{escape(rid)}@{ver} '
                f"&middot; {escape(crit)} &middot; {escape(mv)} (n={n}{note})</caption><thead><tr>"
                "<th>level</th><th>human n</th><th>human %</th><th>machine n</th><th>machine %</th>"
                "<th>machine - human (pts)</th></tr></thead><tbody>"]
        for lo, hi in bins:
            b = g[(g["level"] >= lo) & (g["level"] <= hi)]
            nh, nm = int(b["n_human"].sum()), int(b["n_machine"].sum())
            rows.append(f"<tr><th>{plots.bin_label((lo, hi))}</th><td>{nh}</td><td>{100 * nh / n:.1f}</td>"
                        f"<td>{nm}</td><td>{100 * nm / n:.1f}</td><td>{100 * (nm - nh) / n:+.1f}</td></tr>")
        rows.append("</tbody></table></div>")
        blocks.append(Markup("".join(rows)))
    return blocks


def _over_time(frames: ScoreFrames, window: str) -> pd.DataFrame:
    """QWK, exact agreement and n per window, per pair, rubric, rubric version and criterion: two versions of
    a rubric scored in the same month are two rows (and two series in the plot), not one line through both."""
    rows = []
    hh = human_human_table(frames, window=window)
    for r in hh.itertuples() if not hh.empty else []:
        if not r.n:  # only pairs that were not blind: no figure for this window
            continue
        rows.append({"pair": "human-human", "rubric_id": r.rubric_id, "rubric_version": int(r.rubric_version),
                     "criterion": r.criterion, "window": r.window, "n": r.n, "qwk": getattr(r, "qwk", float("nan")),
                     "exact": r.exact})
    hm = human_machine_table(frames, window=window)
    for r in hm.itertuples() if not hm.empty else []:
        rows.append({"pair": f"machine {r.model_version}".strip(), "rubric_id": r.rubric_id,
                     "rubric_version": int(r.rubric_version), "criterion": r.criterion, "window": r.window, "n": r.n,
                     "qwk": getattr(r, "qwk", float("nan")), "exact": r.exact})
    return pd.DataFrame(rows, columns=["pair", "rubric_id", "rubric_version", "criterion", "window", "n", "qwk",
                                       "exact"])


def _subgroups(frames: ScoreFrames, fields: list[str], policy: GatePolicy, n_boot: int, seed: int) -> pd.DataFrame:
    parts = [subgroup_table(frames, f, n_boot=n_boot, seed=seed) for f in fields]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=["rubric_id", "rubric_version", "criterion", "model_version", "field", "group",
                                     "n", "mean_human", "mean_machine", "dsm", "qwk", "gate"])
    df = pd.concat(parts, ignore_index=True)

    def gate(n: int, d: Any) -> str:
        if n < policy.min_subgroup_n:
            return "small"
        if d is None or (isinstance(d, float) and math.isnan(d)):
            return "n/a"
        return "fail" if abs(d) > policy.max_abs_dsm else "ok"

    df["gate"] = [gate(n, d) for n, d in zip(df["n"], df["dsm"], strict=True)]
    return df


def _confusions(frames: ScoreFrames, max_plots: int) -> tuple[pd.DataFrame, list[Markup], list[tuple[str, bytes, str]]]:
    rows: list[dict[str, Any]] = []
    blocks: list[Markup] = []
    figs: list[tuple[str, bytes, str]] = []
    h = human_human_pairs(frames.humans)[0]  # both raters blind, as in the human-human table
    groups = []
    for (rid, ver, crit), g in (h.groupby(["rubric_id", "rubric_version", "criterion"]) if len(h) else []):
        groups.append(("human-human", rid, ver, crit, g["h1"], g["h2"], g["labels"].iloc[0], "first rater",
                       "second rater"))
    m = frames.machines
    m = m[m["human"].notna()] if len(m) else m
    for (rid, ver, crit, mv), g in (m.groupby(["rubric_id", "rubric_version", "criterion", "model_version"])
                                    if len(m) else []):
        groups.append((f"machine {mv}".strip(), rid, ver, crit, g["human"], g["machine"], g["labels"].iloc[0],
                       "human", "machine"))
    for pair, rid, ver, crit, ref, oth, labels, yl, xl in groups:
        cm = _confusion(ref.astype(int).to_numpy(), oth.astype(int).to_numpy(), labels)
        for i, a in enumerate(labels):
            for j, b in enumerate(labels):
                if cm[i, j]:
                    rows.append({"pair": pair, "rubric_id": rid, "rubric_version": int(ver), "criterion": crit,
                                 "reference": a, "other": b, "count": int(cm[i, j])})
        if len(figs) < max_plots:
            q = qwk(ref.astype(int), oth.astype(int), labels)
            qs = f"{q:.3f}" if np.isfinite(q) else "n/a (one level only)"
            bins = plots.level_bins(labels)
            binned = len(bins) < len(labels)
            mat = plots.bin_matrix(cm, labels, bins) if binned else cm
            names = [plots.bin_label(b) for b in bins]
            note = f"; levels binned into {len(bins)} ranges, full matrix in confusion.csv" if binned else ""
            blocks.append(matrix_table(mat.tolist(), names, names, corner=f"{yl} \u2193 / {xl} \u2192",
                                       caption=f"{rid}@{ver} / {crit}, {pair}: n={len(ref)}, QWK {qs}{note}"))
            figs.append((f"confusion_{rid}_{crit}_{pair.replace(' ', '_')}",
                         plots.plot_confusion(cm, labels, f"{rid}@{ver} {crit}: {pair} (n={len(ref)}, QWK {qs})",
                                              xl, yl),
                         f"Confusion matrix, {rid}@{ver} / {crit}, {pair} (n={len(ref)})"))
    df = pd.DataFrame(rows, columns=["pair", "rubric_id", "rubric_version", "criterion", "reference", "other", "count"])
    return df, blocks, figs


def _curve_ci(hum_idx: np.ndarray, mac_idx: np.ndarray, k: int, n_boot: int, seed: int) -> tuple[float, float] | None:
    if n_boot <= 0 or len(hum_idx) < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(hum_idx), size=(min(n_boot, 300), len(hum_idx)))
    vals = np.array([qwk_indices(hum_idx[ix], mac_idx[ix], k) for ix in idx])
    vals = vals[np.isfinite(vals)]
    return (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))) if len(vals) else None


def _probability_tables(frames: ScoreFrames, automation: pd.DataFrame, n_boot: int = 0, seed: int = 13) -> tuple[
        pd.DataFrame, pd.DataFrame, list[tuple[str, bytes, str]]]:
    rel_rows: list[dict[str, Any]] = []
    cur_rows: list[dict[str, Any]] = []
    figs = []
    m = frames.machines
    if len(m):
        m = m[m["human"].notna() & m["probabilities"].notna()]
    for (rid, crit, mv), g in (m.groupby(["rubric_id", "criterion", "model_version"]) if len(m) else []):
        labels = g["labels"].iloc[0]
        p = np.array([[float(d.get(str(s), 0.0)) for s in labels] for d in g["probabilities"]])
        pos = {v: i for i, v in enumerate(labels)}
        truth = np.array([pos[int(x)] for x in g["human"]])
        ece, bins = expected_calibration_error(p, truth)
        for r in bins.to_dict(orient="records"):
            lo, hi = plots.wilson(r["accuracy"] * r["n"], int(r["n"]))
            rel_rows.append({"rubric_id": rid, "criterion": crit, "model_version": mv, **r, "accuracy_lo": lo,
                             "accuracy_hi": hi, "small": bool(r["n"] < plots.SMALL_N)})
        conf = p.max(axis=1)
        hum = g["human"].astype(int).to_numpy()
        mac = g["machine"].astype(int).to_numpy()
        hi_, mi_ = np.array([pos[x] for x in hum]), np.array([pos[x] for x in mac])
        curve = []
        for th in np.round(np.arange(0.0, 1.0, 0.05), 2):
            sel = conf >= th
            if sel.sum() < max(plots.SMALL_N, 0.02 * len(sel)):  # a handful of items says nothing about agreement
                continue
            ci = _curve_ci(hi_[sel], mi_[sel], len(labels), n_boot, seed)
            curve.append({"rubric_id": rid, "criterion": crit, "model_version": mv, "threshold": float(th),
                          "auto_fraction": float(sel.mean()), "n": int(sel.sum()),
                          "qwk": qwk(hum[sel], mac[sel], labels), "qwk_lo": ci[0] if ci else None,
                          "qwk_hi": ci[1] if ci else None, "exact": float((hum[sel] == mac[sel]).mean())})
        cur_rows += curve
        actual = automation[(automation["rubric_id"] == rid) & (automation["criterion"] == crit)
                            & (automation["model_version"] == mv)] if len(automation) else automation
        act = None
        if len(actual) and int(actual["n_unrouted"].iloc[0]) < int(actual["n"].iloc[0]):
            r0 = actual.iloc[0]  # the recorded routing: share accepted over ALL scores, QWK vs blind audits
            qa = r0["qwk_audited"]
            act = {"auto_fraction": float(r0["auto_fraction"]), "n": int(r0["n"]), "n_audited": int(r0["n_audited"]),
                   "qwk_audited": None if qa is None or (isinstance(qa, float) and math.isnan(qa)) else float(qa)}
        png = plots.plot_probabilities(bins, ece, len(g), curve, act, f"{rid} / {crit} / {mv}")
        figs.append((f"probabilities_{rid}_{crit}_{mv}", png,
                     f"Reliability diagram (n={len(g)} human-scored items, per-bin n and 95% intervals) and automation "
                     f"curve, {rid}/{crit}, model {mv}" + (f"; recorded routing over n={act['n']} machine scores"
                                                          if act else "")))
    rel = pd.DataFrame(rel_rows, columns=["rubric_id", "criterion", "model_version", "bin", "lower", "upper", "n",
                                          "confidence", "accuracy", "accuracy_lo", "accuracy_hi", "small"])
    cur = pd.DataFrame(cur_rows, columns=["rubric_id", "criterion", "model_version", "threshold", "auto_fraction",
                                          "n", "qwk", "qwk_lo", "qwk_hi", "exact"])
    return rel, cur, figs


def _items(frames: ScoreFrames, fields: list[str], pseudo: Pseudonymizer) -> pd.DataFrame:
    h = frames.humans
    cols = ["submission", "rubric_id", "rubric_version", "criterion", "h1", "h1_blind", "h2", "h2_blind", "audit", "h1_assessor",
            "h2_assessor", "audit_assessor", "h1_at", "h2_at", "audit_at"]
    base = h[["submission_id", "external_id", "rubric_id", "rubric_version", "criterion", "meta", "h1", "h1_blind",
              "h2", "h2_blind", "audit", "h1_assessor", "h2_assessor", "audit_assessor", "h1_at", "h2_at", "audit_at"]].copy() \
        if len(h) else \
        pd.DataFrame(columns=["submission_id", "external_id", "rubric_id", "rubric_version", "criterion", "meta"])
    m = frames.machines
    if len(m):
        piv = m.pivot_table(index=["submission_id", "criterion"], columns="model_version", values="machine",
                            aggfunc="last")
        piv.columns = [f"machine_{c or 'unversioned'}" for c in piv.columns]
        piv = piv.reset_index()
        # a machine-scored item's human scores come with it even when --since/--until left its human row out
        # (its human scores were recorded outside the window): they are the reference its figures used
        filled = ["external_id", "rubric_id", "rubric_version", "meta", "h1", "h1_blind", "h2", "h2_blind", "audit", "h1_assessor",
                  "h2_assessor", "audit_assessor", "h1_at", "h2_at", "audit_at"]
        mextra = m[["submission_id", "criterion", *filled]].drop_duplicates(["submission_id", "criterion"])
        base = base.merge(piv, on=["submission_id", "criterion"], how="outer")
        base = base.merge(mextra, on=["submission_id", "criterion"], how="left", suffixes=("", "_m"))
        for c in filled:  # a column the human rows lacked came in unsuffixed
            if f"{c}_m" in base:
                base[c] = base[c].where(base[c].notna(), base[f"{c}_m"])
                base = base.drop(columns=[f"{c}_m"])
    if base.empty:
        return pd.DataFrame(columns=cols)
    base["submission"] = [pseudo("submission", f"{r}:{e}") for r, e in
                          zip(base["rubric_id"], base["external_id"], strict=True)]
    for c in ("h1_assessor", "h2_assessor", "audit_assessor"):
        if c in base:
            base[c] = [pseudo("assessor", a) if isinstance(a, str) else None for a in base[c]]
    for f in fields:
        base[f"meta_{f}"] = [(d or {}).get(f) if isinstance(d, dict) else None for d in base["meta"]]
    keep = [c for c in cols if c in base] + [c for c in base.columns if c.startswith(("machine_", "meta_"))]
    # scores and versions are whole numbers: written as 3, not 3.0 (which the outer merge's gaps would make
    # them), so the export joins on rubric_version with the other tables and reads as the scale's levels
    for c in ["rubric_version", "h1", "h2", "audit"] + [c for c in keep if c.startswith("machine_")]:
        if c in base:
            base[c] = base[c].astype("Int64")
    return base[keep].sort_values(["rubric_id", "criterion", "submission"]).reset_index(drop=True)
