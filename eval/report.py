"""The researcher's report: agreement tables, plots and documented, pseudonymised exports from the store.

``build_report(store, out_dir, ...)`` writes ``report.html`` (self-contained: figures embedded as base64
PNG, also saved under ``figures/``), one CSV and one JSON file per table, and ``data_dictionary.json``.
Exports carry keyed-hash pseudonyms of submission and assessor ids, never evidence text or names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from jinja2 import Environment, FileSystemLoader, select_autoescape  # noqa: E402

from eval.agreement import (
    ScoreFrames,
    automation_table,  # noqa: E402
    expected_calibration_error,
    human_human_table,
    human_machine_table,
    load_frames,
    qwk,
    subgroup_table,
)
from eval.gates import GatePolicy, evaluate_gates, load_policy  # noqa: E402
from scoring.store import Store  # noqa: E402

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
    "<metric>_lo / <metric>_hi": "95% percentile bootstrap interval (items resampled, seeded) for qwk, exact, adjacent, smd",
}

DATA_DICTIONARY: dict[str, dict[str, Any]] = {
    "human_human": {
        "meaning": "Agreement of the first and second human rater, per rubric, rubric version, criterion and time window "
        "(window of the second score).",
        "columns": {"rubric_id, rubric_version, criterion, window": "grouping keys", **_METRIC_COLS},
    },
    "human_machine": {
        "meaning": "Agreement of the machine with the human reference (first rater, else the blind audit score), per "
        "rubric, version, criterion, model version and window; with the ETS gate verdict.",
        "columns": {"rubric_id, rubric_version, criterion, model_version, window": "grouping keys", **_METRIC_COLS,
                    "prmse": "RSMTool prmse_true against first+second human scores (only with double-scored items)",
                    "ece": "expected calibration error of the machine's top-level probability (10 bins)",
                    "auto_fraction": "share of ALL this key's machine scores whose score stands (routes auto "
                    "and audit), from the automation table",
                    "hh_qwk": "human-human QWK of the same rubric version and criterion (gate reference)",
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
        "to earn along a resubmission chain.",
        "columns": {"submissions_decided, earned, not_yet, needs_human": "latest decision per submission",
                    "resubmissions": "submissions that revise an earlier one",
                    "resubmission_rate_after_not_yet": "share of 'not yet' submissions that were revised",
                    "earned_after_resubmission": "earned decisions reached through a resubmission",
                    "median_days_to_earn": "days from the chain's first submission to the earned decision"},
    },
    "decision_agreement": {
        "meaning": "Agreement on the credential decision itself: first vs second rater (each rater's levels through the "
        "award rule, where both scored every criterion) and the machine's decision vs the final one.",
        "columns": {"pair": "human-human or machine vs final", "n": "submissions compared",
                    "agreement, kappa": "percent agreement and Cohen's kappa on earned / not yet",
                    "false_award_rate": "share where the second rater (machine) says earned and the reference not yet",
                    "false_deny_rate": "share where it says not yet and the reference earned"},
    },
    "over_time": {
        "meaning": "QWK, exact agreement and n per time window (calendar period of the later score), human-human and "
        "human-machine.",
        "columns": {"pair": "human-human or machine model version", "rubric_id, criterion, window": "keys",
                    "n, qwk, exact": "as above"},
    },
    "subgroups": {
        "meaning": "Per value of a metadata field named with --subgroup: machine vs human means, QWK and DSM.",
        "columns": {"field, group": "metadata field and its value ('(missing)' when absent)",
                    "n, mean_human, mean_machine, qwk": "within the subgroup",
                    "dsm": "RSMTool difference of standardised means: z(machine) - z(human), population mean/SD",
                    "gate": "ok / fail (|DSM| > policy max) / small (n below policy min_subgroup_n)"},
    },
    "confusion": {
        "meaning": "Confusion matrices in long form.",
        "columns": {"pair": "human-human or machine model version", "rubric_id, rubric_version, criterion": "keys",
                    "reference": "first rater (human-human) or human reference score",
                    "other": "second rater or machine score", "count": "number of items"},
    },
    "reliability": {
        "meaning": "Reliability-diagram bins of machine probabilities (top-level confidence vs accuracy vs human).",
        "columns": {"rubric_id, criterion, model_version": "keys", "bin, lower, upper": "confidence bin",
                    "n": "items in bin", "confidence": "mean top probability", "accuracy": "share where argmax = human"},
    },
    "automation_curve": {
        "meaning": "If the machine auto-scored only items whose top probability is at least a threshold: the share "
        "automated and the QWK / exact agreement on them (the trade-off routing chooses a point on).",
        "columns": {"rubric_id, criterion, model_version": "keys", "threshold": "top-probability threshold",
                    "auto_fraction": "share of items at or above it", "n": "items",
                    "qwk, exact": "agreement with the human reference on those items"},
    },
    "items": {
        "meaning": "One row per submission x criterion: the scores that every table is computed from.",
        "columns": {"submission": "pseudonym: HMAC-SHA256(key, rubric id + external id), 16 hex",
                    "rubric_id, rubric_version, criterion": "keys",
                    "h1, h2, audit": "first, second and latest blind audit human score (empty when absent)",
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
    """The data dictionary as Markdown tables (for the README section)."""
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


def _fig_png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _confusion(ref: np.ndarray, oth: np.ndarray, labels: list[int]) -> np.ndarray:
    pos = {v: i for i, v in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), int)
    for a, b in zip(ref, oth, strict=True):
        cm[pos[int(a)], pos[int(b)]] += 1
    return cm


def _plot_confusion(cm: np.ndarray, labels: list[int], title: str, xlabel: str, ylabel: str) -> bytes:
    size = min(7.0, 2.5 + 0.25 * len(labels))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), [str(x) for x in labels], fontsize=7)
    ax.set_yticks(range(len(labels)), [str(x) for x in labels], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if len(labels) <= 13:
        mx = cm.max() or 1
        for i in range(len(labels)):
            for j in range(len(labels)):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if cm[i, j] > mx / 2 else "black")
    return _fig_png(fig)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, np.generic):
        return _clean(v.item())
    if isinstance(v, pd.Timestamp | datetime):
        return v.isoformat()
    return v


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in r.items()} for r in df.to_dict(orient="records")]


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
    policy = policy or load_policy()
    pseudo = Pseudonymizer(pseudonym_key)
    frames = load_frames(store, rubric_id=rubric_id, since=since, until=until)
    tables: dict[str, pd.DataFrame] = {}
    figures: list[dict[str, str]] = []
    fig_paths: list[Path] = []

    def add_fig(name: str, png: bytes, caption: str) -> None:
        p = out / "figures" / f"{len(figures):03d}_{name}.png"
        p.write_bytes(png)
        fig_paths.append(p)
        figures.append({"caption": caption, "src": "data:image/png;base64," + base64.b64encode(png).decode(),
                        "file": f"figures/{p.name}"})

    hh = human_human_table(frames, n_boot=n_boot, seed=seed)
    hm = human_machine_table(frames, n_boot=n_boot, seed=seed)
    if not hm.empty:
        hh_ref = {(r.rubric_id, r.rubric_version, r.criterion): r.qwk for r in hh.itertuples()} if not hh.empty else {}
        hm["hh_qwk"] = [hh_ref.get((r.rubric_id, r.rubric_version, r.criterion)) for r in hm.itertuples()]
        sg_all = _subgroups(frames, subgroups or [], policy)
        by_key: dict[tuple[Any, ...], dict[str, tuple[float, int]]] = {}
        for r in sg_all.itertuples():
            by_key.setdefault((r.rubric_id, r.rubric_version, r.criterion, r.model_version), {})[
                f"{r.field}={r.group}"] = (r.dsm, r.n)
        verdicts = [evaluate_gates(r._asdict(), policy, human_human_qwk=r.hh_qwk,
                                   subgroups=by_key.get((r.rubric_id, r.rubric_version, r.criterion,
                                                         r.model_version)))
                    for r in hm.itertuples()]
        hm["gate"] = [v.status for v in verdicts]
        hm["gate_detail"] = [v.summary() for v in verdicts]
    auto = automation_table(frames)
    if not hm.empty:
        have = {(r.rubric_id, r.rubric_version, r.criterion, r.model_version, r.window): r.auto_fraction
                for r in auto.itertuples()}
        hm["auto_fraction"] = [have.get((r.rubric_id, r.rubric_version, r.criterion, r.model_version, r.window))
                               for r in hm.itertuples()]
    tables["human_human"], tables["human_machine"] = _ordered(hh), _ordered(hm)
    tables["automation"] = automation_table(frames, window=window)
    from eval.decisions import decision_agreement, decision_summary

    tables["decisions"] = decision_summary(store, rubric_id)
    tables["decision_agreement"] = decision_agreement(store, rubric_id)
    tables["over_time"] = _over_time(frames, window)
    tables["subgroups"] = _subgroups(frames, subgroups or [], policy)
    tables["confusion"], conf_figs = _confusions(frames, max_confusion_plots)
    tables["reliability"], tables["automation_curve"], prob_figs = _probability_tables(frames, auto)
    tables["items"] = _items(frames, subgroups or [], pseudo)
    tables["suspensions"] = pd.DataFrame([{
        "rubric_id": s.rubric_id, "criterion": s.criterion, "reason": s.reason, "suspended_at": s.suspended_at,
        "lifted_at": s.lifted_at, "lifted_by": s.lifted_by} for s in store.suspensions(rubric_id=rubric_id)],
        columns=["rubric_id", "criterion", "reason", "suspended_at", "lifted_at", "lifted_by"])
    tables["models"] = pd.DataFrame([{
        "version": m.version, "rubric_id": m.rubric_id, "status": m.status, "registered_at": m.registered_at,
        "promoted_at": m.promoted_at} for m in store.models() if rubric_id is None or m.rubric_id == rubric_id],
        columns=["version", "rubric_id", "status", "registered_at", "promoted_at"])

    for name, png, cap in conf_figs:
        add_fig(name, png, cap)
    for name, png, cap in prob_figs:
        add_fig(name, png, cap)
    ot = tables["over_time"]
    if not ot.empty:
        for rid, g in ot.groupby("rubric_id"):
            fig, ax = plt.subplots(figsize=(7, 3.2))
            for (pair, crit), gg in g.groupby(["pair", "criterion"]):
                ax.plot(gg["window"].astype(str), gg["qwk"], marker="o", label=f"{crit}: {pair}")
            ax.axhline(policy.min_qwk, color="grey", ls="--", lw=0.8)
            ax.set_ylabel("QWK")
            ax.set_title(f"{rid}: agreement over time (window {window})", fontsize=9)
            ax.legend(fontsize=7)
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
            add_fig(f"over_time_{rid}", _fig_png(fig), f"{rid}: QWK per {window} window; dashed: gate {policy.min_qwk}")
    sg = tables["subgroups"]
    if not sg.empty:
        for (rid, crit, mv, fld), g in sg.groupby(["rubric_id", "criterion", "model_version", "field"]):
            fig, ax = plt.subplots(figsize=(6, 0.4 * len(g) + 1.5))
            colors = ["tab:red" if x == "fail" else "tab:grey" if x == "small" else "tab:blue" for x in g["gate"]]
            ax.barh(g["group"].astype(str), g["dsm"].fillna(0), color=colors)
            for x in (-policy.max_abs_dsm, policy.max_abs_dsm):
                ax.axvline(x, color="grey", ls="--", lw=0.8)
            ax.set_xlabel("DSM (machine z - human z)")
            ax.set_title(f"{rid}/{crit} ({mv or 'model ?'}) by {fld}", fontsize=9)
            add_fig(f"subgroup_{rid}_{crit}_{fld}", _fig_png(fig),
                    f"DSM by {fld}; dashed: ±{policy.max_abs_dsm}; grey bars: n < {policy.min_subgroup_n}")

    for name, df in tables.items():
        df.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.json").write_text(json.dumps(_records(df), indent=1, default=str), encoding="utf-8")
    (out / "data_dictionary.json").write_text(json.dumps(DATA_DICTIONARY, indent=1), encoding="utf-8")

    verification = store.verify_audit()
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "jinja"]))
    env.filters["fmt"] = _fmt
    html = env.get_template("report.html.jinja").render(
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        filters={"rubric": rubric_id or "all", "since": since, "until": until, "subgroups": subgroups or [],
                 "window": window, "bootstrap": n_boot, "seed": seed},
        policy=policy, verification=verification, pseudonyms_ephemeral=pseudo.ephemeral,
        tables={k: (list(v.columns), _records(v)) for k, v in tables.items() if k not in ("items", "confusion")},
        n_items=len(tables["items"]), figures=figures, dictionary=DATA_DICTIONARY,
        shown=["human_human", "human_machine", "automation", "decisions", "decision_agreement", "subgroups", "over_time",
               "suspensions", "models"],
    )
    html_path = out / "report.html"
    html_path.write_text(html, encoding="utf-8")
    return ReportResult(out, html_path, tables, fig_paths)


_FIRST = ["rubric_id", "rubric_version", "criterion", "model_version", "window", "n", "qwk", "qwk_lo", "qwk_hi",
          "gate", "hh_qwk", "smd", "smd_lo", "smd_hi", "prmse", "exact", "adjacent", "kappa", "pearson_r",
          "alpha_ordinal", "ece", "auto_fraction"]


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    """Headline columns first (keys, n, QWK and its interval, gate), the rest after."""
    first = [c for c in _FIRST if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def _over_time(frames: ScoreFrames, window: str) -> pd.DataFrame:
    rows = []
    hh = human_human_table(frames, window=window)
    for r in hh.itertuples() if not hh.empty else []:
        rows.append({"pair": "human-human", "rubric_id": r.rubric_id, "criterion": r.criterion, "window": r.window,
                     "n": r.n, "qwk": getattr(r, "qwk", float("nan")), "exact": r.exact})
    hm = human_machine_table(frames, window=window)
    for r in hm.itertuples() if not hm.empty else []:
        rows.append({"pair": f"machine {r.model_version}".strip(), "rubric_id": r.rubric_id, "criterion": r.criterion,
                     "window": r.window, "n": r.n, "qwk": getattr(r, "qwk", float("nan")), "exact": r.exact})
    return pd.DataFrame(rows, columns=["pair", "rubric_id", "criterion", "window", "n", "qwk", "exact"])


def _subgroups(frames: ScoreFrames, fields: list[str], policy: GatePolicy) -> pd.DataFrame:
    parts = [subgroup_table(frames, f) for f in fields]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=["rubric_id", "rubric_version", "criterion", "model_version", "field", "group",
                                     "n", "mean_human", "mean_machine", "dsm", "qwk", "gate"])
    df = pd.concat(parts, ignore_index=True)
    df["gate"] = ["small" if n < policy.min_subgroup_n else ("fail" if abs(d) > policy.max_abs_dsm else "ok")
                  for n, d in zip(df["n"], df["dsm"].fillna(0), strict=True)]
    return df


def _confusions(frames: ScoreFrames, max_plots: int) -> tuple[pd.DataFrame, list[tuple[str, bytes, str]]]:
    rows: list[dict[str, Any]] = []
    figs: list[tuple[str, bytes, str]] = []
    h = frames.humans
    h = h[h["h1"].notna() & h["h2"].notna()] if len(h) else h
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
            figs.append((f"confusion_{rid}_{crit}_{pair.replace(' ', '_')}",
                         _plot_confusion(cm, labels, f"{rid}@{ver} {crit}: {pair} (n={len(ref)}, QWK {q:.3f})", xl, yl),
                         f"Confusion matrix, {rid}@{ver} / {crit}, {pair}"))
    return pd.DataFrame(rows, columns=["pair", "rubric_id", "rubric_version", "criterion", "reference", "other",
                                       "count"]), figs


def _probability_tables(frames: ScoreFrames, automation: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                              list[tuple[str, bytes, str]]]:
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
            rel_rows.append({"rubric_id": rid, "criterion": crit, "model_version": mv, **r})
        conf = p.max(axis=1)
        hum = g["human"].astype(int).to_numpy()
        mac = g["machine"].astype(int).to_numpy()
        curve = []
        for th in np.round(np.arange(0.0, 1.0, 0.05), 2):
            sel = conf >= th
            if sel.sum() < max(10, 0.02 * len(sel)):  # a handful of items says nothing about agreement
                continue
            row = {"rubric_id": rid, "criterion": crit, "model_version": mv, "threshold": float(th),
                   "auto_fraction": float(sel.mean()), "n": int(sel.sum()),
                   "qwk": qwk(hum[sel], mac[sel], labels), "exact": float((hum[sel] == mac[sel]).mean())}
            curve.append(row)
        cur_rows += curve
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
        a1.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
        a1.plot(bins["confidence"], bins["accuracy"], marker="o")
        a1.set_xlabel("mean top probability")
        a1.set_ylabel("accuracy vs human")
        a1.set_title(f"reliability, ECE {ece:.3f}", fontsize=9)
        if curve:
            a2.plot([c["auto_fraction"] for c in curve], [c["qwk"] for c in curve], marker=".")
        actual = automation[(automation["rubric_id"] == rid) & (automation["criterion"] == crit)
                            & (automation["model_version"] == mv)] if len(automation) else automation
        if len(actual) and actual["qwk_audited"].notna().any():
            r0 = actual.iloc[0]  # the actual routing: share accepted over ALL scores, QWK vs blind audits
            a2.scatter([r0["auto_fraction"]], [r0["qwk_audited"]], color="red", zorder=3,
                       label=f"actual routing (n={int(r0['n'])}, audited {int(r0['n_audited'])})")
            a2.legend(fontsize=7)
        a2.set_xlabel("share auto-scored")
        a2.set_ylabel("QWK on auto-scored")
        a2.set_title("automation vs agreement", fontsize=9)
        fig.suptitle(f"{rid} / {crit} / {mv}", fontsize=9)
        figs.append((f"probabilities_{rid}_{crit}_{mv}", _fig_png(fig),
                     f"Reliability diagram and automation curve, {rid}/{crit}, model {mv}"))
    rel = pd.DataFrame(rel_rows, columns=["rubric_id", "criterion", "model_version", "bin", "lower", "upper", "n",
                                          "confidence", "accuracy"])
    cur = pd.DataFrame(cur_rows, columns=["rubric_id", "criterion", "model_version", "threshold", "auto_fraction",
                                          "n", "qwk", "exact"])
    return rel, cur, figs


def _items(frames: ScoreFrames, fields: list[str], pseudo: Pseudonymizer) -> pd.DataFrame:
    h = frames.humans
    cols = ["submission", "rubric_id", "rubric_version", "criterion", "h1", "h2", "audit", "h1_assessor",
            "h2_assessor", "audit_assessor", "h1_at", "h2_at", "audit_at"]
    base = h[["submission_id", "external_id", "rubric_id", "rubric_version", "criterion", "meta", "h1", "h2", "audit",
              "h1_assessor", "h2_assessor", "audit_assessor", "h1_at", "h2_at", "audit_at"]].copy() if len(h) else \
        pd.DataFrame(columns=["submission_id", "external_id", "rubric_id", "rubric_version", "criterion", "meta"])
    m = frames.machines
    if len(m):
        piv = m.pivot_table(index=["submission_id", "criterion"], columns="model_version", values="machine",
                            aggfunc="last")
        piv.columns = [f"machine_{c or 'unversioned'}" for c in piv.columns]
        piv = piv.reset_index()
        mextra = m[["submission_id", "criterion", "external_id", "rubric_id", "rubric_version", "meta"]] \
            .drop_duplicates(["submission_id", "criterion"])
        base = base.merge(piv, on=["submission_id", "criterion"], how="outer")
        base = base.merge(mextra, on=["submission_id", "criterion"], how="left", suffixes=("", "_m"))
        for c in ("external_id", "rubric_id", "rubric_version", "meta"):
            base[c] = base[c].where(base[c].notna(), base[f"{c}_m"])
        base = base.drop(columns=[f"{c}_m" for c in ("external_id", "rubric_id", "rubric_version", "meta")])
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
    return base[keep].sort_values(["rubric_id", "criterion", "submission"]).reset_index(drop=True)
