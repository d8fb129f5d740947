"""Calibrated level probabilities and conformal prediction sets for any criterion scorer.

Why: routing decides "accept the machine score" from the scorer's probabilities, so those must mean
what they say (of the items given 0.8, about 80% right) and the uncertainty must come with a guarantee.
Two layers, both fitted on a calibration split the scorer never trained on:

* a *calibrator* maps raw level probabilities to calibrated ones: ``temperature`` (one parameter, the
  shape of the distribution kept), ``isotonic`` (one-vs-rest isotonic maps, renormalised; flexible but
  hungry for data) or ``none``; ``auto`` picks the one with the lowest cross-validated ECE (log-loss within 5% of the best) on
  the calibration split, so the choice is measured rather than assumed;
* a *conformal* layer (split conformal via ``crepes``, hinge non-conformity ``1 - p(true level)``) turns
  calibrated probabilities into a set of levels that holds the human score with probability >= the
  chosen coverage on exchangeable data. ``mondrian="label"`` makes the guarantee hold per level
  (class-conditional) when every level has enough calibration items; else it falls back to marginal.

``CalibratedScorer`` wraps a fitted scorer and keeps its contract (``predict_proba``, ``classes_``,
``decide``) so prescoring, saving and loading do not change; it is picklable and forwards ``encoder``
to the wrapped scorer (the artifact loader re-attaches encoders after unpickling).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from crepes import ConformalClassifier
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold

from models.scorers import decide as default_decide

EPS = 1e-9
METHODS = ("temperature", "isotonic", "none")
MIN_CALIBRATION_ITEMS = 20  # fewer held-out items per criterion than this: no calibration (and no conformal set)


class CalibrationError(ValueError):
    """Calibration data that cannot calibrate (too few items, scores off the scale, shape mismatch)."""


# ----------------------------------------------------------------------------------- metrics


def log_loss(P: np.ndarray, y_idx: np.ndarray) -> float:
    """Mean negative log-likelihood of the true level (column index ``y_idx``)."""
    p = np.clip(P[np.arange(len(y_idx)), y_idx], EPS, 1.0)
    return float(-np.mean(np.log(p)))


def top_label_ece(P: np.ndarray, y_idx: np.ndarray, n_bins: int = 10) -> float:
    """Top-label expected calibration error (equal-width bins on the argmax probability)."""
    P = np.asarray(P, float)
    conf = P.max(axis=1)
    correct = (P.argmax(axis=1) == np.asarray(y_idx)).astype(float)
    b = np.clip(np.digitize(conf, np.linspace(0, 1, n_bins + 1)[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for i in range(n_bins):
        m = b == i
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def level_index(y: Any, classes: np.ndarray) -> np.ndarray:
    """Column index of each score in ``classes``; error names the scores that are not levels."""
    pos = {int(c): i for i, c in enumerate(np.asarray(classes))}
    yy = [int(v) for v in np.asarray(y).ravel()]
    bad = sorted({v for v in yy if v not in pos})
    if bad:
        raise CalibrationError(f"scores {bad} are not levels of this criterion (levels: {sorted(pos)})")
    return np.array([pos[v] for v in yy], dtype=int)


# ----------------------------------------------------------------------------------- calibrators


class ProbabilityCalibrator:
    """Maps raw level probabilities (n, K) to calibrated ones; ``fit`` on held-out items only."""

    def __init__(self, method: str = "temperature"):
        if method not in METHODS:
            raise CalibrationError(f"calibration method must be one of {METHODS}, found {method!r}")
        self.method = method

    def fit(self, P: np.ndarray, y_idx: np.ndarray) -> ProbabilityCalibrator:
        P = np.asarray(P, float)
        self.n_levels_ = P.shape[1]
        self.temperature_ = 1.0
        self.isotonic_: list[IsotonicRegression | None] = []
        if self.method == "temperature":
            logp = np.log(np.clip(P, EPS, 1.0))

            def nll(log_t: float) -> float:
                return log_loss(_softmax(logp / np.exp(log_t)), y_idx)

            res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
            self.temperature_ = float(np.exp(res.x))
        elif self.method == "isotonic":
            for k in range(P.shape[1]):
                target = (y_idx == k).astype(float)
                if target.min() == target.max():  # level never / always seen: keep the raw column
                    self.isotonic_.append(None)
                else:
                    self.isotonic_.append(IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(P[:, k], target))
        return self

    def transform(self, P: np.ndarray) -> np.ndarray:
        P = np.asarray(P, float)
        if P.shape[1] != self.n_levels_:
            raise CalibrationError(f"expected {self.n_levels_} probability columns, found {P.shape[1]}")
        if self.method == "temperature":
            return _softmax(np.log(np.clip(P, EPS, 1.0)) / self.temperature_)
        if self.method == "isotonic":
            cols = [iso.predict(P[:, k]) if iso is not None else P[:, k] for k, iso in enumerate(self.isotonic_)]
            # floor: an isotonic step at 0 must not make a level impossible; a 2% share of the raw
            # probability breaks the plateaus' ties (tied conformal scores make sets needlessly conservative)
            Q = np.column_stack(cols) + 1e-3
            Q = 0.98 * Q / Q.sum(axis=1, keepdims=True) + 0.02 * P
            return Q / Q.sum(axis=1, keepdims=True)
        return P

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method}
        if self.method == "temperature":
            out["temperature"] = round(self.temperature_, 4)
        return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def cross_fit(P: np.ndarray, y_idx: np.ndarray, method: str, n_folds: int = 5, seed: int = 13) -> np.ndarray:
    """Calibrated probabilities for every calibration item from a calibrator that did not see it.

    Used to compare methods honestly and to give the conformal layer scores it has not been fitted on.
    """
    out = np.empty_like(np.asarray(P, float))
    n_folds = max(2, min(n_folds, len(y_idx) // 10))
    for tr, te in KFold(n_folds, shuffle=True, random_state=seed).split(P):
        out[te] = ProbabilityCalibrator(method).fit(P[tr], y_idx[tr]).transform(P[te])
    return out


def choose_method(
    P: np.ndarray, y_idx: np.ndarray, candidates: tuple[str, ...] = METHODS, seed: int = 13, log_loss_slack: float = 0.05
) -> tuple[str, dict[str, dict[str, float]]]:
    """The method with the lowest cross-validated top-label ECE whose CV log-loss is within ``log_loss_slack``
    (relative) of the best CV log-loss, and every score.

    Why both: routing reads the confidence of one level, so ECE is the figure that matters, but a method
    that buys ECE by wrecking the rest of the distribution (log-loss) would mislead the conformal sets.
    """
    scores: dict[str, dict[str, float]] = {}
    for m in candidates:
        Q = cross_fit(P, y_idx, m, seed=seed)
        scores[m] = {"log_loss": round(log_loss(Q, y_idx), 5), "ece": round(top_label_ece(Q, y_idx), 5)}
    best_ll = min(v["log_loss"] for v in scores.values())
    ok = [m for m in candidates if scores[m]["log_loss"] <= best_ll * (1 + log_loss_slack)]
    return min(ok, key=lambda m: (scores[m]["ece"], scores[m]["log_loss"], candidates.index(m))), scores


# ----------------------------------------------------------------------------------- conformal


class ConformalSets:
    """Split-conformal prediction sets over a criterion's levels (crepes, hinge scores).

    ``mondrian="label"``: class-conditional (one calibration pool per level), used only when every level
    has at least ``min_per_level`` calibration items, otherwise marginal; ``mondrian_`` says which ran.
    """

    def __init__(self, mondrian: str = "none", min_per_level: int = 20):
        if mondrian not in ("none", "label"):
            raise CalibrationError(f"mondrian must be 'none' or 'label', found {mondrian!r}")
        self.mondrian = mondrian
        self.min_per_level = min_per_level

    def fit(self, P: np.ndarray, y_idx: np.ndarray) -> ConformalSets:
        P = np.asarray(P, float)
        alphas = 1.0 - P[np.arange(len(y_idx)), y_idx]
        self.n_levels_ = P.shape[1]
        self.n_cal_ = len(y_idx)
        counts = np.bincount(y_idx, minlength=P.shape[1])
        self.mondrian_ = "label" if self.mondrian == "label" and counts.min() >= self.min_per_level else "none"
        if self.mondrian_ == "label":
            self.per_level_ = [ConformalClassifier().fit(alphas[y_idx == k]) for k in range(P.shape[1])]
        else:
            self.marginal_ = ConformalClassifier().fit(alphas)
        return self

    def p_values(self, P: np.ndarray) -> np.ndarray:
        """Conformal p-value of every level for every item (deterministic: no tie smoothing)."""
        A = 1.0 - np.asarray(P, float)
        if self.mondrian_ == "label":
            return np.column_stack(
                [cc.predict_p(A[:, [k]], smoothing=False)[:, 0] for k, cc in enumerate(self.per_level_)]
            )
        return np.asarray(self.marginal_.predict_p(A, smoothing=False))

    def predict_set(self, P: np.ndarray, coverage: float) -> np.ndarray:
        """Boolean (n, K): level k is in the set when its p-value exceeds ``1 - coverage``."""
        if not 0.0 < coverage < 1.0:
            raise CalibrationError(f"coverage must be strictly between 0 and 1, found {coverage}")
        return self.p_values(P) > 1.0 - coverage


# ----------------------------------------------------------------------------------- the wrapper


class CalibratedScorer:
    """A fitted scorer with calibrated probabilities and conformal sets; same contract as the scorer.

    ``decide`` delegates to the wrapped scorer's decision rule (applied to calibrated probabilities), so
    the score a calibrated model outputs is chosen the same way as before calibration.
    """

    def __init__(self, base: Any, method: str = "auto", mondrian: str = "none", seed: int = 13):
        self.base = base
        self.method = method
        self.mondrian = mondrian
        self.seed = seed

    # the artifact loader sets ``scorer.encoder`` after unpickling: forward it to the wrapped scorer
    @property
    def encoder(self) -> Any:
        return getattr(self.base, "encoder", None)

    @encoder.setter
    def encoder(self, value: Any) -> None:
        self.base.encoder = value

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.base.classes_)

    @property
    def uses_embeddings(self) -> bool:
        return bool(getattr(self.base, "uses_embeddings", True))

    def fit_calibration(self, P_raw: np.ndarray, y: Any) -> CalibratedScorer:
        """Fit calibrator + conformal on raw probabilities of held-out items and their human scores."""
        P_raw = np.asarray(P_raw, float)
        y_idx = level_index(y, self.classes_)
        if P_raw.shape != (len(y_idx), len(self.classes_)):
            raise CalibrationError(
                f"expected probabilities of shape ({len(y_idx)}, {len(self.classes_)}), found {P_raw.shape}"
            )
        if len(y_idx) < MIN_CALIBRATION_ITEMS:
            raise CalibrationError(f"need at least {MIN_CALIBRATION_ITEMS} calibration items, found {len(y_idx)}")
        scores: dict[str, dict[str, float]] = {}
        method = self.method
        if method == "auto":
            method, scores = choose_method(P_raw, y_idx, seed=self.seed)
        self.calibrator_ = ProbabilityCalibrator(method).fit(P_raw, y_idx)
        P_cf = cross_fit(P_raw, y_idx, method, seed=self.seed)  # out-of-sample for the conformal layer
        self.conformal_ = ConformalSets(self.mondrian).fit(P_cf, y_idx)
        self.report_ = {
            **self.calibrator_.describe(),
            "cv_scores": scores,
            "n_cal": int(len(y_idx)),
            "ece_before": round(top_label_ece(P_raw, y_idx), 4),
            "ece_after_cv": round(top_label_ece(P_cf, y_idx), 4),
            "log_loss_before": round(log_loss(P_raw, y_idx), 4),
            "log_loss_after_cv": round(log_loss(P_cf, y_idx), 4),
            "conformal": {"mondrian": self.conformal_.mondrian_, "score": "hinge (1 - p)", "library": "crepes"},
        }
        self.cal_proba_ = P_cf  # cross-fitted calibrated probabilities (the optimiser picks thresholds on them)
        return self

    def calibrate(self, P_raw: np.ndarray) -> np.ndarray:
        return self.calibrator_.transform(P_raw)

    def predict_proba(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.calibrate(self.base.predict_proba(X, embeddings=embeddings))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        if hasattr(self.base, "decide"):
            return np.asarray(self.base.decide(proba))
        return default_decide(proba, self.classes_)

    def predict(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.decide(self.predict_proba(X, embeddings))

    def prediction_set(self, proba: np.ndarray, coverage: float) -> np.ndarray:
        """Boolean (n, K) conformal sets from *calibrated* probabilities at ``coverage``."""
        return self.conformal_.predict_set(proba, coverage)
