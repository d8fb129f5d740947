"""The report's figures (matplotlib, PNG bytes). Every figure states its n; estimates carry intervals; cells
with few items are drawn hollow or grey and say so, so that a bin of 2 never reads like a bin of 200.

Kept apart from :mod:`eval.report` (which computes tables and writes files) so each figure's drawing rules
are in one place."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SMALL_N = 10  # below this a bin, window or group is marked "small" and never drawn like a large one
LONG_SCALE = 12  # scales with more levels than this are binned in the heatmap
ROUTE_COLOURS = {"auto": "#2b8a3e", "audit": "#74b816", "human": "#e8590c", "double": "#c92a2a", "unrouted": "#adb5bd"}


def fig_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n (does not collapse to a point at 0 or 1 like the Wald one).

    The bounds always hold k/n: at k = n (or 0) the formula's bound is the point itself, which floating point
    can round to just past it (21 of 21 gives 0.9999999999999999), an interval that excludes its estimate."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def error_bar(point: float, lo: float, hi: float) -> list[list[float]]:
    """matplotlib's ``yerr``/``xerr`` for an interval around ``point``: the lengths below and above, never
    negative (matplotlib refuses a negative one, and an interval that rounds past its point, or a bootstrap
    percentile interval that does not hold it, must not stop a report)."""
    return [[max(0.0, point - lo)], [max(0.0, hi - point)]]


def _too_few(ax: Any, n: int, what: str) -> None:
    ax.text(0.5, 0.5, f"n={n}: too few {what} to draw\n(at least {SMALL_N} needed)", ha="center", va="center",
            transform=ax.transAxes, fontsize=9, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


# ------------------------------------------------------------------------------------------- confusion


def level_bins(labels: Sequence[int], max_bins: int = 10) -> list[tuple[int, int]]:
    """Equal-width ranges of score levels covering the scale (one per level on short scales)."""
    if len(labels) <= LONG_SCALE:
        return [(int(v), int(v)) for v in labels]
    width = math.ceil(len(labels) / max_bins)
    lv = list(labels)
    return [(int(lv[i]), int(lv[min(i + width, len(lv)) - 1])) for i in range(0, len(lv), width)]


def bin_matrix(cm: np.ndarray, labels: Sequence[int], bins: list[tuple[int, int]]) -> np.ndarray:
    pos = {v: i for i, v in enumerate(labels)}
    idx = [[pos[v] for v in labels if lo <= v <= hi] for lo, hi in bins]
    return np.array([[cm[np.ix_(r, c)].sum() for c in idx] for r in idx], int)


def bin_label(b: tuple[int, int]) -> str:
    return str(b[0]) if b[0] == b[1] else f"{b[0]}-{b[1]}"


def plot_confusion(cm: np.ndarray, labels: list[int], title: str, xlabel: str, ylabel: str) -> bytes:
    """Heatmap with a colour bar and the count in every non-empty cell; long scales binned (stated on the axes)."""
    bins = level_bins(labels)
    binned = len(bins) < len(labels)
    mat = bin_matrix(cm, labels, bins) if binned else cm
    names = [bin_label(b) for b in bins]
    size = min(6.5, 3.0 + 0.3 * len(names))
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    im = ax.imshow(mat, cmap="Blues", vmin=0)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label("items", fontsize=8)
    ax.set_xticks(range(len(names)), names, fontsize=7, rotation=45 if binned else 0)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    suffix = " (levels binned)" if binned else ""
    ax.set_xlabel(xlabel + suffix)
    ax.set_ylabel(ylabel + suffix)
    ax.set_title(title, fontsize=9)
    mx = mat.max() or 1
    for i in range(len(names)):
        for j in range(len(names)):
            if mat[i, j]:
                ax.text(j, i, str(mat[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if mat[i, j] > mx / 2 else "black")
    return fig_png(fig)


# ------------------------------------------------------------------------- reliability and automation


def plot_probabilities(bins: pd.DataFrame, ece: float, n: int, curve: list[dict[str, Any]],
                       actual: dict[str, Any] | None, title: str) -> bytes:
    """Reliability diagram (per-bin n, Wilson intervals, small bins hollow) beside the automation curve
    (share auto-scored vs QWK on those items, with its bootstrap band, y-axis 0-1, n at the points) and the
    recorded routing's point."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    if n < SMALL_N:
        _too_few(a1, n, "items")
    else:
        a1.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
        for r in bins.itertuples():
            k = r.accuracy * r.n
            lo, hi = wilson(k, int(r.n))
            small = r.n < SMALL_N
            a1.errorbar([r.confidence], [r.accuracy], yerr=error_bar(r.accuracy, lo, hi), fmt="o",
                        mfc="white" if small else "tab:blue", mec="grey" if small else "tab:blue",
                        ecolor="lightgrey" if small else "tab:blue", ms=4 + 6 * min(1.0, r.n / max(1, n / 3)),
                        capsize=2)
            a1.annotate(f"n={int(r.n)}", (r.confidence, r.accuracy), textcoords="offset points", xytext=(4, -10),
                        fontsize=6, color="grey" if small else "black")
        a1.set_xlim(0, 1.02)
        a1.set_ylim(0, 1.02)
        a1.set_xlabel("mean top probability in bin")
        a1.set_ylabel("share where machine = human (95% Wilson)")
        a1.set_title(f"reliability, n={n}, ECE {ece:.3f}\nhollow: bins with n<{SMALL_N}", fontsize=8)
    if not curve and actual is None:
        _too_few(a2, n, "items per threshold")
    else:
        if curve:
            xs = [c["auto_fraction"] for c in curve]
            a2.plot(xs, [c["qwk"] for c in curve], marker=".", color="tab:blue", label="if auto-scored at a threshold")
            if all(c.get("qwk_lo") is not None for c in curve):
                a2.fill_between(xs, [c["qwk_lo"] for c in curve], [c["qwk_hi"] for c in curve], color="tab:blue",
                                alpha=0.15, lw=0, label="95% bootstrap band")
            for c in curve[:: max(1, len(curve) // 5)]:
                a2.annotate(f"n={c['n']}", (c["auto_fraction"], c["qwk"]), textcoords="offset points",
                            xytext=(2, -10), fontsize=6)
        else:
            a2.text(0.5, 0.5, f"no threshold keeps {SMALL_N} items (n={n}): no curve", ha="center", va="center",
                    transform=a2.transAxes, fontsize=8, color="#555")
        if actual is not None:
            x = actual["auto_fraction"]
            if actual.get("qwk_audited") is not None:
                a2.scatter([x], [actual["qwk_audited"]], color="red", zorder=3,
                           label=f"recorded routing (n={actual['n']}, audited {actual['n_audited']})")
            else:
                a2.axvline(x, color="red", ls=":", lw=1.2,
                           label=f"recorded share automated (n={actual['n']}; no blind audits to score it)")
        lows = [float(c["qwk_lo"] if c.get("qwk_lo") is not None else c["qwk"]) for c in curve]
        a2.set_ylim(min([0.0, *lows]) - 0.02, 1.0)
        a2.set_xlim(0, 1.02)
        a2.set_xlabel("share auto-scored")
        a2.set_ylabel("QWK with the human on auto-scored items")
        a2.set_title(f"automation vs agreement (points with n>={SMALL_N})", fontsize=8)
        a2.legend(fontsize=6, loc="lower left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig_png(fig)


def plot_routes(auto: pd.DataFrame, rubric: str) -> bytes:
    """Recorded routes per criterion and model (stacked shares, n and auto_fraction written on each bar)."""
    rows = auto[auto["criterion"] != "(all)"]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.6))
    labels = [f"{r.criterion} [{str(r.model_version)[-12:]}]" for r in rows.itertuples()]
    left = np.zeros(len(rows))
    for route in ("auto", "audit", "human", "double", "unrouted"):
        vals = rows[f"n_{route}"].to_numpy(float) / rows["n"].to_numpy(float)
        ax.barh(labels, vals, left=left, color=ROUTE_COLOURS[route], label=route)
        left += vals
    for i, r in enumerate(rows.itertuples()):
        ax.text(1.01, i, f"n={r.n}, accepted {r.auto_fraction:.0%}", va="center", fontsize=7)
    ax.set_xlim(0, 1.35)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xlabel("share of machine scores by recorded route")
    ax.set_title(f"{rubric}: recorded routes (n={int(rows['n'].sum())} machine scores)", fontsize=9)
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.4, -0.22 if len(rows) > 2 else -0.4))
    return fig_png(fig)


# ---------------------------------------------------------------------------------------- over time


def dodge(k: int, n_series: int) -> float:
    """Horizontal offset of series ``k`` of ``n_series`` within a window: series that share a window sit
    side by side instead of on one spot, where equal or close QWKs hid each other and their n labels."""
    if n_series <= 1:
        return 0.0
    step = min(0.6 / n_series, 0.12)
    return (k - (n_series - 1) / 2) * step


def plot_over_time(g: pd.DataFrame, title: str, gate: float) -> bytes:
    """QWK per window and series; n written at every point, marker area grows with n, windows with n<10
    hollow; the legend sits outside the axes so no series hides under it."""
    windows = sorted(g["window"].astype(str).unique())
    pos = {w: i for i, w in enumerate(windows)}
    fig, ax = plt.subplots(figsize=(8.5, 3.4))
    nmax = max(1, int(g["n"].max()))
    versions = g["rubric_version"].nunique() if "rubric_version" in g else 1
    series = ["pair", "criterion"] + (["rubric_version"] if "rubric_version" in g else [])
    groups = list(g.groupby(series))
    for k, (key, gg) in enumerate(groups):
        pair, crit = key[0], key[1]
        ver = f"@v{key[2]}" if versions > 1 else ""  # one line per rubric version, never one through two
        gg = gg.sort_values("window")
        xs = [pos[str(w)] + dodge(k, len(groups)) for w in gg["window"]]
        line = ax.plot(xs, gg["qwk"], lw=1, label=f"{crit}{ver}: {pair} (n={int(gg['n'].sum())})")[0]
        for x, y, n in zip(xs, gg["qwk"], gg["n"], strict=True):
            if y is None or (isinstance(y, float) and math.isnan(y)):
                continue
            small = n < SMALL_N
            ax.scatter([x], [y], s=15 + 85 * n / nmax, facecolors="white" if small else line.get_color(),
                       edgecolors=line.get_color(), zorder=3)
            ax.annotate(f"n={int(n)}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=6)
    ax.axhline(gate, color="grey", ls="--", lw=0.8)
    ax.set_xticks(range(len(windows)), windows, rotation=45, fontsize=7)
    ax.set_xlim(-0.5, len(windows) - 0.5)
    lo = float(np.nanmin(pd.to_numeric(g["qwk"], errors="coerce"))) if g["qwk"].notna().any() else 0.0
    ax.set_ylim(min(0.0, lo) - 0.02, 1.08)  # room above 1.0 for a perfect window's marker and its n
    ax.set_yticks([t for t in ax.get_yticks() if min(0.0, lo) - 0.03 <= t <= 1.0 + 1e-9])
    ax.set_ylabel("QWK")
    note = " (one window: no trend to read)" if len(windows) == 1 else ""
    ax.set_title(f"{title}{note}; hollow: n<{SMALL_N}", fontsize=9)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig_png(fig)


# ----------------------------------------------------------------------------------------- subgroups


def plot_group_bars(groups: list[str], values: list[float | None], lo: list[float | None], hi: list[float | None],
                    ns: list[int], *, small: list[bool], fail: list[bool], xlabel: str, title: str,
                    limits: tuple[float, float] | None = None, missing: str = "not computable") -> bytes:
    """Horizontal bars with their 95% interval and n; a missing value is written, never drawn as 0."""
    groups = list(groups)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(groups) + 1.6))
    ys = np.arange(len(groups))
    for i, (v, a, b) in enumerate(zip(values, lo, hi, strict=True)):
        label = f"{groups[i]} (n={ns[i]})"
        if v is None or (isinstance(v, float) and math.isnan(v)):
            ax.barh([i], [0], color="none")
            ax.text(0, i, f"  {missing}", va="center", fontsize=7, color="#b00020", style="italic")
        else:
            colour = "tab:red" if fail[i] else ("lightgrey" if small[i] else "tab:blue")
            ax.barh([i], [v], color=colour, hatch="//" if small[i] else None, edgecolor="grey")
            if a is not None and b is not None:
                ax.errorbar([v], [i], xerr=error_bar(v, a, b), fmt="none", ecolor="black", capsize=3, lw=0.8)
        ax.text(1.0, i, f" n={ns[i]}" + (" small" if small[i] else ""), va="center", fontsize=7,
                transform=ax.get_yaxis_transform())
        groups[i] = label
    ax.set_yticks(ys, groups, fontsize=7)
    if limits:
        for x in limits:
            ax.axvline(x, color="grey", ls="--", lw=0.8)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    return fig_png(fig)


def reference_group(est: pd.DataFrame, analysis: str) -> str:
    """The group every estimate of ``analysis`` is a difference from (the model's intercept row), named
    with its n: the plot draws only the other groups, so without this a reader cannot tell which one."""
    ref = est[(est["analysis"] == analysis) & est["group"].str.startswith("Intercept")]
    if ref.empty:
        return "reference group"
    name = str(ref["group"].iloc[0]).removeprefix("Intercept (").removesuffix(")")
    return f"reference group {name} (n={int(ref['n'].iloc[0])})"


def plot_fairness(est: pd.DataFrame, title: str) -> bytes:
    """RSMTool-style fairness estimates: per analysis, each group's coefficient against the reference group
    with its 95% confidence interval and n."""
    analyses = [a for a in ("osa", "osd", "csd") if a in set(est["analysis"])]
    fig, axes = plt.subplots(1, len(analyses), figsize=(3.4 * len(analyses), 0.4 * est["group"].nunique() + 2.0),
                             squeeze=False)
    names = {"osa": "squared error (OSA)", "osd": "error M-H (OSD)", "csd": "error M-H | human score (CSD)"}
    for ax, a in zip(axes[0], analyses, strict=True):
        e = est[(est["analysis"] == a) & ~est["group"].str.startswith("Intercept")]
        ys = np.arange(len(e))
        ax.errorbar(e["estimate"], ys, xerr=[np.maximum(e["estimate"] - e["estimate_lo"], 0),
                                          np.maximum(e["estimate_hi"] - e["estimate"], 0)], fmt="o",
                    capsize=3)
        ax.set_yticks(ys, [f"{g} (n={n})" for g, n in zip(e["group"], e["n"], strict=True)], fontsize=7)
        ax.axvline(0, color="grey", ls="--", lw=0.8)
        ax.set_title(names[a], fontsize=8)
        ax.set_xlabel(f"difference from {reference_group(est, a)}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig_png(fig)
