"""The human bar: is machine-human agreement on accepted items at least human-human agreement on them?

One statistical core shared by the optimiser (choosing thresholds on calibration items), ``scoring policy
check`` (fresh double-scored data) and the drift monitor, so a policy is chosen and later checked by the
same test.

Statistics
  * ``qwk``: quadratic weighted kappa. Paired bootstrap over items: the margin QWK(machine, human) -
    QWK(rater 1, rater 2) is recomputed on resampled items; the one-sided p-value of "margin < 0" is
    (1 + resamples at or below 0 or undefined) / (1 + resamples), i.e. the percentile bootstrap test. Used on scales of 4 levels or more.
  * ``exact``: exact agreement (share of identical scores), which stays defined on any subset. Paired
    one-sided exact McNemar test: among items where exactly one of the two pairs agrees, the count where the
    machine pair agrees is Binomial(m, p) with p <= 1/2 when the machine agrees less often (scipy
    ``binomtest``). Used on binary and 3-level scales, where the accepted items are often nearly all one
    level and kappa there is unstable or undefined (no variance).
Both are reported with 95% percentile bootstrap intervals whichever one the bar uses.

Who is compared with whom (``pair = (rater 1, rater 2)``): the machine stands in for rater 1 and both are
judged against the SAME reference, rater 2: statistic(machine, rater 2) against statistic(rater 1, rater 2).
Why not machine vs the score of record (a resolved score): a resolved score combines both raters (ASAP-AES:
their sum, or the higher of the two), so it is less noisy than any single rater, and agreeing with it is
easier than agreeing with one person; judging the machine by it against rater 1 vs rater 2 flatters the
machine. Why rater 2 and not rater 1 as the reference: the model learns from rater 1's scores (or from the
resolved score, which contains them) and so learns rater 1's habits (leniency, use of the scale); judged by
rater 1 it would have an edge rater 2 never had. Judged by rater 2, machine and rater 1 are in the same
position: each is one scorer predicting an independent person. The resolved score still fits calibrators and
conformal sets (the machine is asked to give the score of record); it is only left out of the bar. Where the
score of record is the SUM of the two raters (twice a rater's scale), the caller doubles each rater's score
(``rater_multiplier`` 2), which leaves rater 1 vs rater 2 unchanged (QWK is invariant to scaling both) and puts
rater 2 on the machine's scale. Without ``pair`` (a given human-human figure, one rater) the machine is judged
against the one human score given (``human``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest

from models.scorers import qwk_values

STATISTICS = ("qwk", "exact")
SHORT_SCALE = 3  # scales with at most this many levels use exact agreement for the bar


def bar_statistic(n_levels: int, requested: str = "auto", paired: bool = True) -> str:
    """The statistic the bar uses: ``exact`` on short scales (<= 3 levels) with two raters, else ``qwk``.

    A bar given as a single human QWK figure can only be compared with a QWK."""
    if requested not in ("auto", *STATISTICS):
        raise ValueError(f"statistic must be one of auto, {', '.join(STATISTICS)}, found {requested!r}")
    if not paired:
        return "qwk"
    if requested != "auto":
        return requested
    return "exact" if n_levels <= SHORT_SCALE else "qwk"


@dataclass(frozen=True)
class BarTest:
    """One test of H0 "accepted items agree with the human less than humans agree with each other"."""

    statistic: str
    n: int
    machine: float  # machine vs human on the items
    human: float  # rater 1 vs rater 2 on the same items, or the given figure
    margin: float
    p_value: float
    test: str

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) and np.isfinite(v) else v) for k, v in asdict(self).items()}


def _exact(a: np.ndarray, b: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray | float:
    eq = (np.asarray(a) == np.asarray(b)).astype(float)
    return float(eq.mean()) if idx is None else eq[idx].mean(axis=1)


def reference(human: np.ndarray | None, pair: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """The scores the machine is compared with: rater 2 when two raters are given (the machine stands in for
    rater 1, module docstring), else the one ``human`` score. Every test of the bar reads it from here."""
    if pair is not None:
        return np.asarray(pair[1], float)
    if human is None:
        raise ValueError("a bar needs two raters or a human score to compare the machine with")
    return np.asarray(human, float)


def margin_test(
    machine: np.ndarray,
    human: np.ndarray | None,
    pair: tuple[np.ndarray, np.ndarray] | None,
    *,
    statistic: str = "qwk",
    target: float | None = None,
    n_boot: int = 400,
    rng: np.random.Generator | None = None,
    idx: np.ndarray | None = None,
) -> BarTest:
    """p-value of "margin < 0" for items given as machine scores, human scores and (paired) two raters.

    With ``pair`` the margin is statistic(machine, rater 2) - statistic(rater 1, rater 2) and ``human`` is not
    read (module docstring: why rater 2 is the reference). Without ``pair`` the bar is the figure ``target``
    (a human-human QWK), the machine is compared with ``human`` and the statistic is QWK.
    ``idx`` (B, n) reuses resampled rows (the caller's bootstrap) instead of drawing new ones.
    """
    if pair is None and target is None:
        raise ValueError("a bar needs two raters or a human-human figure")
    m, h = np.asarray(machine, float), reference(human, pair)
    n = len(m)
    if statistic == "exact" and pair is not None:
        r1, r2 = (np.asarray(v, float) for v in pair)
        mach_ok, hum_ok = m == h, r1 == r2
        a, b = int(np.sum(mach_ok & ~hum_ok)), int(np.sum(~mach_ok & hum_ok))
        p = float(binomtest(a, a + b, 0.5, alternative="greater").pvalue) if a + b else 1.0
        return BarTest("exact", n, float(mach_ok.mean()), float(hum_ok.mean()), float(mach_ok.mean() - hum_ok.mean()),
                       p, "exact McNemar, one-sided")
    rng = rng if rng is not None else np.random.default_rng(13)
    if idx is None:
        idx = rng.integers(0, n, size=(n_boot, n))
    km = np.asarray(qwk_values(m, h, idx))
    qm = float(qwk_values(m, h))
    if pair is not None:
        r1, r2 = (np.asarray(v, float) for v in pair)
        d = km - np.asarray(qwk_values(r1, r2, idx))
        qh = float(qwk_values(r1, r2))
        test = "paired bootstrap of the QWK difference, one-sided"
    else:
        d = km - float(target)  # type: ignore[arg-type]
        qh = float(target)  # type: ignore[arg-type]
        test = "bootstrap of QWK(machine, human) against a given human-human QWK, one-sided"
    # resamples at or below 0, and undefined kappas, count against the machine: a tie (machine and raters all
    # perfect on the resampled items) is no evidence that the machine is not slightly worse
    p = (1.0 + float(np.sum(~(d > 0)))) / (len(d) + 1.0)
    return BarTest("qwk", n, qm, qh, qm - qh if np.isfinite(qm) and np.isfinite(qh) else float("nan"), p, test)


def agreement_intervals(
    machine: np.ndarray,
    human: np.ndarray | None,
    pair: tuple[np.ndarray, np.ndarray] | None,
    *,
    n_boot: int = 400,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> dict[str, list[float | None]]:
    """[estimate, low, high] of QWK and exact agreement for machine-human, human-human and their differences.

    Percentile bootstrap over items (paired: the same resampled items for both pairs). With ``pair`` the
    machine is compared with rater 2 (``pair[1]``), as rater 1 is, and ``human`` is not read (module
    docstring); without it, with ``human``."""
    m = np.asarray(machine, float)
    h = reference(human, pair)
    n = len(m)
    rng = rng if rng is not None else np.random.default_rng(13)
    idx = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((n_boot, 0), int)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2

    def ci(point: float, boots: np.ndarray) -> list[float | None]:
        ok = boots[np.isfinite(boots)]
        if not np.isfinite(point) or len(ok) < 0.5 * len(boots):
            return [None if not np.isfinite(point) else round(point, 4), None, None]
        return [round(point, 4), round(float(np.quantile(ok, lo_q)), 4), round(float(np.quantile(ok, hi_q)), 4)]

    out: dict[str, list[float | None]] = {"n": [n, None, None]}  # type: ignore[list-item]
    if n < 2:
        return out
    qm, em = np.asarray(qwk_values(m, h, idx)), np.asarray(_exact(m, h, idx))
    out["machine_qwk"] = ci(float(qwk_values(m, h)), qm)
    out["machine_exact"] = ci(float(_exact(m, h)), em)
    if pair is not None:
        r1, r2 = (np.asarray(v, float) for v in pair)
        qh, eh = np.asarray(qwk_values(r1, r2, idx)), np.asarray(_exact(r1, r2, idx))
        out["human_qwk"] = ci(float(qwk_values(r1, r2)), qh)
        out["human_exact"] = ci(float(_exact(r1, r2)), eh)
        out["qwk_difference"] = ci(float(qwk_values(m, h)) - float(qwk_values(r1, r2)), qm - qh)
        out["exact_difference"] = ci(float(_exact(m, h)) - float(_exact(r1, r2)), em - eh)
    return out
