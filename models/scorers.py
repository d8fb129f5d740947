"""Criterion scorers: scikit-learn classifiers over texts whose classes are a criterion's ordered levels.

Every scorer honours one contract (``fit(texts, y)``, ``predict_proba(texts)`` with columns in ascending
level order, ``classes_``), so calibrators, conformal wrappers and routing compose with any of them.

``EnsembleScorer`` (trained on human scores) stacks two views of a text that fail differently:
  * sentence-encoder embeddings + surface features (meaning, robust to wording), and
  * TF-IDF word and character n-grams (vocabulary, spelling and mechanics, which embeddings blur);
each is a ridge regression on the ordinal score whose out-of-fold predictions feed a multinomial
logistic regression that turns them into a probability for every level.

``ZeroShotScorer`` needs no human scores: it compares a text with the rubric's level descriptors
(and exemplars) in the encoder's space; use it to bootstrap until enough scores exist.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from scipy import sparse
from scipy.stats import norm
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from models.cache import text_key
from models.features import surface_features
from models.tfidf import CharWbTfidf


class TextEncoder(Protocol):
    """What a scorer needs from an encoder (``models.encoder.Encoder`` provides it)."""

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray: ...


class ScorerError(ValueError):
    """Training data a scorer cannot learn from (too few examples, labels off the scale)."""


def _check_labels(y: Any, levels: list[int]) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ScorerError(f"expected one score per text, found an array of shape {arr.shape}")
    bad = sorted({int(v) for v in arr if int(v) not in set(levels)})
    if bad:
        raise ScorerError(f"scores {bad} are not levels of this criterion (levels: {levels})")
    return arr.astype(int)


def _spread(proba: np.ndarray, seen: np.ndarray, levels: list[int], floor: float) -> np.ndarray:
    """Place probabilities over the seen classes into all rubric levels, with a small floor for unseen ones."""
    out = np.full((proba.shape[0], len(levels)), floor, dtype=np.float64)
    idx = [levels.index(int(c)) for c in seen]
    out[:, idx] += proba
    return out / out.sum(axis=1, keepdims=True)


def new_tfidf() -> FeatureUnion:
    """Word 1-2-grams and character 2-5-grams: vocabulary plus spelling and morphology."""
    return FeatureUnion(
        [
            ("w", TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=40000, sublinear_tf=True)),
            ("c", CharWbTfidf(analyzer="char_wb", ngram_range=(2, 5), min_df=3, max_features=60000, sublinear_tf=True)),
        ]
    )


class SharedTfidf:
    """A fitted TF-IDF view shared by the criteria of one model that read the same evidence.

    Why: a rubric has several criteria over one reflection; transforming the same texts once per
    criterion would make TF-IDF cost as much as the encoder. Criteria holding the same object (pickle
    keeps the sharing) reuse the last transform when the texts are the same.
    """

    def __init__(self, union: FeatureUnion):
        self.union = union
        self._last: tuple[int, int, sparse.csr_matrix] | None = None

    @classmethod
    def fit(cls, texts: list[str]) -> SharedTfidf:
        return cls(new_tfidf().fit(texts))

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        key = (hash(tuple(texts)), len(texts))
        if self._last is not None and self._last[:2] == key:
            return self._last[2]
        X = self.union.transform(texts).tocsr()
        self._last = (*key, X)
        return X

    def __getstate__(self) -> dict[str, Any]:
        return {"union": self.union, "_last": None}


def cached_surface_features(texts: list[str], _memo: dict[str, Any] = {}) -> np.ndarray:  # noqa: B006 - one-slot memo
    key = (hash(tuple(texts)), len(texts))
    if _memo.get("key") != key:
        _memo["key"], _memo["value"] = key, surface_features(texts)
    return _memo["value"]


def with_surface(tfidf_rows: Any, surface: np.ndarray) -> sparse.csr_matrix:
    """The TF-IDF view's matrix: n-gram weights joined with the standardised surface features."""
    return sparse.hstack([tfidf_rows, sparse.csr_matrix(surface)]).tocsr()


def training_data(X: list[str], y: Any, levels: list[int] | None) -> tuple[list[str], list[int], np.ndarray]:
    """Texts, levels (the given ones, else those seen) and checked integer labels of a trained scorer's ``fit``:
    one score per text, on the scale, at least two levels (nothing to learn from one)."""
    texts = list(X)
    lv = list(levels) if levels is not None else sorted({int(v) for v in y})
    yy = _check_labels(y, lv)
    if len(texts) != len(yy):
        raise ScorerError(f"{len(texts)} texts but {len(yy)} scores")
    if len(set(yy)) < 2:
        raise ScorerError(f"all {len(yy)} human scores are {yy[0] if len(yy) else None}: need at least two levels")
    return texts, lv, yy


class EnsembleScorer(ClassifierMixin, BaseEstimator):
    """Stacked ridge views + multinomial logistic head. See module docstring for why.

    Parameters
    ----------
    levels : list of int
        The criterion's level scores in ascending order (the columns of ``predict_proba``).
    encoder : TextEncoder
        Injected at fit/load time; not pickled with the model.
    use_tfidf : bool
        Add the TF-IDF view (worth it for writing quality; off for very small data).
    alpha_embed, alpha_tfidf : float
        Ridge penalties of the two views.
    n_folds : int
        Folds for the out-of-fold predictions the head learns from.
    head : {"auto", "logistic", "gaussian"}
        How view predictions become level probabilities. ``logistic`` (multinomial) fits any shape but
        needs examples of every level; ``gaussian`` discretises a normal around the blended prediction,
        which stays sensible on long scales (an essay score 10-60) where many levels are rare.
        ``auto`` picks logistic up to 15 levels.
    shared_tfidf : SharedTfidf or None
        A TF-IDF view already fitted on this evidence (unsupervised), shared with sibling criteria.
    decision : {"thresholds", "expected", "argmax"}
        How probabilities become one score. ``thresholds`` cuts the expected score at points fitted
        on out-of-fold predictions to maximise QWK (the agreement statistic the field reports).
    """

    def __init__(
        self,
        levels: list[int] | None = None,
        encoder: TextEncoder | None = None,
        use_tfidf: bool = True,
        alpha_embed: float = 3.0,
        alpha_tfidf: float = 1.0,
        n_folds: int = 5,
        head: str = "auto",
        decision: str = "thresholds",
        random_state: int = 13,
        shared_tfidf: SharedTfidf | None = None,
        kernel_view: bool = True,
        kernel_c: float = 3.0,
    ):
        self.levels = levels
        self.encoder = encoder
        self.use_tfidf = use_tfidf
        self.alpha_embed = alpha_embed
        self.alpha_tfidf = alpha_tfidf
        self.n_folds = n_folds
        self.head = head
        self.decision = decision
        self.random_state = random_state
        self.shared_tfidf = shared_tfidf
        self.kernel_view = kernel_view
        self.kernel_c = kernel_c

    # -- views --------------------------------------------------------------------------------
    def _dense(self, texts: list[str], emb: np.ndarray | None = None) -> np.ndarray:
        if emb is None:
            assert self.encoder is not None, "EnsembleScorer needs an encoder: set scorer.encoder"
            emb = self.encoder.encode(texts)
        return np.hstack([emb, self.surface_scaler_.transform(cached_surface_features(texts))])

    def _sparse(self, tfidf: Any, texts: list[str], dense_surface: np.ndarray) -> sparse.csr_matrix:
        return with_surface(tfidf.transform(texts), dense_surface)

    # -- sklearn contract ---------------------------------------------------------------------
    def fit(self, X: list[str], y: Any, embeddings: np.ndarray | None = None) -> EnsembleScorer:
        texts, levels, yy = training_data(X, y, self.levels)
        self.classes_ = np.asarray(levels)
        surf = surface_features(texts)
        self.surface_scaler_ = StandardScaler().fit(surf)
        surf_s = self.surface_scaler_.transform(surf)
        dense = self._dense(texts, embeddings)
        use_tfidf = self.use_tfidf and len(texts) >= 40
        # Out-of-fold view predictions: the head must learn from predictions made on unseen texts.
        n_folds = max(2, min(self.n_folds, int(np.bincount(yy - yy.min()).max()), len(texts) // 5))
        counts = np.bincount(yy - yy.min())
        can_stratify = counts[counts > 0].min() >= n_folds
        splitter = (
            StratifiedKFold(n_folds, shuffle=True, random_state=self.random_state)
            if can_stratify
            else KFold(n_folds, shuffle=True, random_state=self.random_state)
        )
        oof = np.zeros((len(texts), 1 + int(use_tfidf) + int(self.kernel_view)))
        folds = np.zeros(len(texts), dtype=np.int16)
        for k, (tr, te) in enumerate(splitter.split(dense, yy)):
            folds[te] = k
            oof[te, 0] = Ridge(alpha=self.alpha_embed).fit(dense[tr], yy[tr]).predict(dense[te])
            if self.kernel_view:
                oof[te, -1] = SVR(C=self.kernel_c).fit(dense[tr], yy[tr]).predict(dense[te])
            if use_tfidf:
                tv = new_tfidf().fit([texts[i] for i in tr])
                Xtr = self._sparse(tv, [texts[i] for i in tr], surf_s[tr])
                Xte = self._sparse(tv, [texts[i] for i in te], surf_s[te])
                oof[te, 1] = Ridge(alpha=self.alpha_tfidf, solver="sparse_cg").fit(Xtr, yy[tr]).predict(Xte)
        self.embed_model_ = Ridge(alpha=self.alpha_embed).fit(dense, yy)
        self.kernel_model_ = SVR(C=self.kernel_c).fit(dense, yy) if self.kernel_view else None
        self.tfidf_ = None
        if use_tfidf:
            self.tfidf_ = self.shared_tfidf if self.shared_tfidf is not None else SharedTfidf.fit(texts)
            self.tfidf_model_ = Ridge(alpha=self.alpha_tfidf, solver="sparse_cg").fit(
                self._sparse(self.tfidf_, texts, surf_s), yy
            )
        self.head_kind_ = self.head if self.head != "auto" else ("logistic" if len(levels) <= 15 else "gaussian")
        # long scales: too many cuts to fit reliably
        self._fit_head(oof, yy, folds, texts, levels, self.decision == "thresholds" and len(levels) <= 15)
        return self

    def _fit_head(self, oof: np.ndarray, yy: np.ndarray, folds: np.ndarray, texts: list[str], levels: list[int],
                  fit_cuts: bool) -> None:
        """The head (``head_kind_``) on the views' out-of-fold predictions, and what the routing layers read.

        The head learns from out-of-fold predictions so that it weighs views as they behave on unseen texts;
        the cut-points on the expected score are chosen on the same predictions for agreement (QWK).
        """
        self.head_scaler_ = StandardScaler().fit(oof)
        Z = self.head_scaler_.transform(oof)
        if self.head_kind_ == "logistic":
            self.head_ = _fit_logistic_head(Z, yy)
        else:
            self.blend_, self.sigma_ = _fit_gaussian_head(Z, yy)
        self.oof_views_ = oof
        self.oof_y_ = yy
        self.oof_folds_ = folds
        self.train_hashes_ = [text_hash(t) for t in texts]
        self.n_train_ = len(texts)
        self.thresholds_ = (fit_thresholds(self._head_proba(Z) @ self.classes_.astype(float), yy, levels)
                            if fit_cuts else None)

    def _head_proba(self, Z: np.ndarray) -> np.ndarray:
        if self.head_kind_ == "logistic":
            return _spread(self.head_.predict_proba(Z), self.head_.classes_, list(self.classes_), 1e-6)
        return _gaussian_proba(self.blend_.predict(Z), self.sigma_, self.classes_)

    def cross_fitted_proba(self) -> np.ndarray:
        """Level probabilities of every training text from models that never saw that text.

        Why: calibration and routing thresholds need held-out probabilities, and carving a separate
        calibration split out of scarce human scores costs the scorer training data. Each text's view
        predictions are already out-of-fold (the head learns from them); here the head is refitted
        without the text's fold too, so nothing that produced a row was fitted on it (cross-conformal
        style; the deployed model, trained on all folds, is if anything a little more accurate).
        Rows follow the training order; ``train_hashes_`` identifies their texts.
        """
        if getattr(self, "oof_folds_", None) is None:
            raise ScorerError("this model predates cross-fitted calibration: retrain it to use --cross-fitted")
        Z = self.head_scaler_.transform(self.oof_views_)
        y = self.oof_y_
        out = np.empty((len(y), len(self.classes_)))
        for k in np.unique(self.oof_folds_):
            te = self.oof_folds_ == k
            (out[te],) = self._fold_head(Z[~te], y[~te], Z[te])
        return out

    def _fold_head(self, Z_tr: np.ndarray, y_tr: np.ndarray, *Zs: np.ndarray) -> list[np.ndarray]:
        """The head fitted on one fold's complement, and its level probabilities for each of ``Zs``.

        A complement with a single level (a rare level all in one fold of a small, lopsided sample) cannot fit
        a logistic head: it predicts that level, as a head that has only seen it would."""
        classes = self.classes_
        if self.head_kind_ == "logistic":
            if len(np.unique(y_tr)) < 2:
                onehot = (np.asarray(classes) == y_tr[0]).astype(float)[None, :]
                return [_spread(np.repeat(onehot, len(Zi), axis=0), np.asarray(classes), list(classes), 1e-6)
                        for Zi in Zs]
            head = _fit_logistic_head(Z_tr, y_tr)
            return [_spread(head.predict_proba(Zi), head.classes_, list(classes), 1e-6) for Zi in Zs]
        blend, sigma = _fit_gaussian_head(Z_tr, y_tr)
        return [_gaussian_proba(blend.predict(Zi), sigma, classes) for Zi in Zs]

    def oof_predict(self) -> np.ndarray:
        """Scores the model gives its training texts when they were held out (for the model card)."""
        return self.decide(self._head_proba(self.head_scaler_.transform(self.oof_views_)))

    def held_out_predict(self) -> np.ndarray:
        """Scores of the training texts from a head AND cut-points fitted without each text's fold: the
        model card's cross-validated figure.

        Why not :meth:`oof_predict`: its views are out-of-fold, but the head and the QWK cut-points were fitted
        on every row, the scored one included. On a few dozen scores that flattered the figure badly (on labels
        unrelated to the texts it sat well above 0: ``tests/models/test_cv_figure.py``), so a learning curve
        could fall as scores were added while the model improved. The scaler is unsupervised (no label reaches it)."""
        if getattr(self, "oof_folds_", None) is None:
            return self.oof_predict()  # a model from before folds were kept: the old figure
        Z = self.head_scaler_.transform(self.oof_views_)
        y, folds, classes = self.oof_y_, self.oof_folds_, self.classes_
        cuts = getattr(self, "thresholds_", None) is not None
        out = np.empty(len(y), dtype=np.asarray(classes).dtype)
        for k in np.unique(folds):
            te, tr = folds == k, folds != k
            p_tr, p_te = self._fold_head(Z[tr], y[tr], Z[tr], Z[te])
            if cuts:
                c = fit_thresholds(p_tr @ classes.astype(float), y[tr], [int(v) for v in classes])
                out[te] = apply_thresholds(p_te @ classes.astype(float), c, classes)
            else:
                out[te] = decide(p_te, classes, "expected" if self.decision == "thresholds" else self.decision)
        return out

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """One score per row of (possibly calibrated) level probabilities."""
        return decide_with_cuts(proba, self.classes_, getattr(self, "thresholds_", None),
                                "expected" if self.decision == "thresholds" else self.decision)

    def views(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """The continuous score each view predicts (useful for diagnostics and highlights)."""
        texts = list(X)
        dense = self._dense(texts, embeddings)
        cols = [self.embed_model_.predict(dense)]
        if self.tfidf_ is not None:
            surf_s = self.surface_scaler_.transform(cached_surface_features(texts))
            cols.append(self.tfidf_model_.predict(self._sparse(self.tfidf_, texts, surf_s)))
        kernel = getattr(self, "kernel_model_", None)  # None: trained without the kernel view
        if kernel is not None:
            cols.append(kernel.predict(dense))
        return np.column_stack(cols)

    def predict_proba(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self._head_proba(self.head_scaler_.transform(self.views(X, embeddings)))

    def predict(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.decide(self.predict_proba(X, embeddings))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["encoder"] = None  # weights live in the encoder package, not in every model file
        return state


def text_hash(text: str) -> str:
    """Identifies a training text without keeping it: the model file holds hashes, not evidence texts."""
    return text_key("training-text", text)


def _fit_logistic_head(Z: np.ndarray, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=2000).fit(Z, y)


def _fit_gaussian_head(Z: np.ndarray, y: np.ndarray) -> tuple[LinearRegression, float]:
    blend = LinearRegression().fit(Z, y)
    return blend, max(float(np.std(y - blend.predict(Z))), 0.25)


def _gaussian_proba(mu: np.ndarray, sigma: float, classes: np.ndarray) -> np.ndarray:
    """A normal around the blended score, discretised onto the levels (long scales)."""
    edges = np.concatenate([[-np.inf], np.asarray(classes)[:-1] + 0.5, [np.inf]]).astype(float)
    p = np.diff(norm.cdf((edges[None, :] - mu[:, None]) / sigma), axis=1) + 1e-6
    return p / p.sum(axis=1, keepdims=True)


def decide(proba: np.ndarray, classes: np.ndarray, rule: str = "expected") -> np.ndarray:
    """Turn level probabilities into one score.

    ``expected`` rounds the probability-weighted mean to the nearest level: on an ordinal scale it
    errs by less than ``argmax`` when the mass is split between neighbours (better QWK).
    """
    classes = np.asarray(classes)
    if rule == "argmax":
        return classes[np.argmax(proba, axis=1)]
    if rule != "expected":
        raise ValueError(f"decision rule must be 'expected' or 'argmax', found {rule!r}")
    ev = proba @ classes.astype(float)
    idx = np.abs(ev[:, None] - classes[None, :].astype(float)).argmin(axis=1)
    return classes[idx]


def apply_thresholds(expected: np.ndarray, thresholds: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return np.asarray(classes)[np.searchsorted(thresholds, expected)]


def decide_with_cuts(proba: np.ndarray, classes: np.ndarray, cuts: np.ndarray | None, rule: str = "expected") -> np.ndarray:
    """Cut the expected score at fitted cut-points when there are some, else ``decide`` by ``rule``."""
    if cuts is not None:
        return apply_thresholds(np.asarray(proba) @ np.asarray(classes).astype(float), cuts, classes)
    return decide(proba, classes, rule)


def qwk_values(a: np.ndarray, b: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray | float:
    """Quadratic weighted kappa of two integer score vectors, optionally over many resamples at once.

    Uses the closed form 1 - sum (a-b)^2 / (n [(mean a - mean b)^2 + var a + var b]), identical to
    ``cohen_kappa_score(weights="quadratic")`` with the full integer range as labels; ``idx`` (B, n)
    holds resampled row indices and gives B kappas in one vectorised pass (fast bootstraps). NaN where
    undefined (both vectors constant and equal).
    """
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if idx is None:
        idx = np.arange(len(a))[None, :]
        single = True
    else:
        single = False
    A, B = a[idx], b[idx]
    n = A.shape[1]
    num = ((A - B) ** 2).sum(axis=1)
    den = n * ((A.mean(axis=1) - B.mean(axis=1)) ** 2 + A.var(axis=1) + B.var(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(den > 0, 1.0 - num / np.where(den > 0, den, 1.0), np.nan)
    return float(k[0]) if single else k


def quadratic_kappa(a: Any, b: Any, levels: list[int]) -> float:
    """Quadratic weighted kappa of two score vectors on ``levels`` (= scikit-learn's ``cohen_kappa_score``
    with ``weights="quadratic", labels=levels``, via one bincount: fast enough to call thousands of times).
    ``levels`` may come in any order; a score that is not one of them raises ``ValueError``."""
    lv = np.unique(np.asarray(levels))
    L = len(lv)

    def index(v: Any) -> np.ndarray:
        v = np.asarray(v).ravel()
        i = np.searchsorted(lv, v).clip(0, max(L - 1, 0))
        bad = lv[i] != v if L else np.ones(len(v), dtype=bool)
        if bad.any():
            raise ValueError(f"scores {sorted(set(v[bad].tolist()))[:5]} are not among the levels {lv.tolist()}")
        return i

    ia, ib = index(a), index(b)
    if len(ia) != len(ib):
        raise ValueError(f"{len(ia)} scores against {len(ib)}: the two score vectors must be the same length")
    obs = np.bincount(ia * L + ib, minlength=L * L).reshape(L, L).astype(np.float64)
    n = obs.sum()
    if n == 0:
        return float("nan")
    r = np.arange(L)
    W = (r[:, None] - r[None, :]) ** 2 / max((L - 1) ** 2, 1)
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0)) / n
    den = float((W * exp).sum())
    return float("nan") if den == 0 else 1.0 - float((W * obs).sum()) / den


def fit_thresholds(expected: np.ndarray, y: np.ndarray, levels: list[int], sweeps: int = 2) -> np.ndarray:
    """Cut-points between adjacent levels maximising QWK of ``expected`` against ``y``.

    Coordinate search starting from the midpoints, each cut moved within half a level of its start
    and kept ordered, so the result is never far from plain rounding.
    """
    classes = np.asarray(levels)
    base = classes[:-1] + 0.5
    best = base.astype(float).copy()

    def qwk(th: np.ndarray) -> float:
        return quadratic_kappa(y, apply_thresholds(expected, th, classes), levels)

    best_v = qwk(best)
    for _ in range(sweeps):
        for i in range(len(best)):
            lo = best[i - 1] if i > 0 else -np.inf
            hi = best[i + 1] if i + 1 < len(best) else np.inf
            for cand in base[i] + np.linspace(-0.5, 0.5, 11):
                if not lo < cand < hi:
                    continue
                trial = best.copy()
                trial[i] = cand
                v = qwk(trial)
                if v > best_v + 1e-9:
                    best, best_v = trial, v
    return best


class ZeroShotScorer(ClassifierMixin, BaseEstimator):
    """Scores by similarity to each level's descriptor and exemplars; learns nothing from data.

    Why a temperature: cosine similarities of a sentence encoder sit in a narrow band, so a softmax
    over raw similarities would be almost uniform; ``temperature`` spreads them into usable
    probabilities (treat them as uncalibrated until a calibration split exists).
    """

    def __init__(
        self,
        levels: list[int] | None = None,
        level_texts: list[list[str]] | None = None,
        encoder: TextEncoder | None = None,
        temperature: float = 0.03,
        decision: str = "expected",
    ):
        self.levels = levels
        self.level_texts = level_texts
        self.encoder = encoder
        self.temperature = temperature
        self.decision = decision

    def fit(self, X: list[str] | None = None, y: Any = None) -> ZeroShotScorer:
        if not self.levels or not self.level_texts or len(self.levels) != len(self.level_texts):
            raise ScorerError("a zero-shot scorer needs one descriptor (or exemplar list) per level")
        empty = [
            lv for lv, t in zip(self.levels, self.level_texts, strict=True) if not any(s.strip() for s in t)
        ]
        if empty:
            raise ScorerError(f"levels {empty} have no descriptor or exemplar to compare evidence with")
        assert self.encoder is not None, "ZeroShotScorer needs an encoder"
        self.classes_ = np.asarray(self.levels)
        protos = []
        for texts in self.level_texts:
            v = self.encoder.encode([s for s in texts if s.strip()]).mean(axis=0)
            protos.append(v / (np.linalg.norm(v) or 1.0))
        self.prototypes_ = np.stack(protos)
        return self

    def predict_proba(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        emb = embeddings if embeddings is not None else self.encoder.encode(list(X))  # type: ignore[union-attr]
        sims = emb @ self.prototypes_.T / self.temperature
        sims -= sims.max(axis=1, keepdims=True)
        p = np.exp(sims)
        return p / p.sum(axis=1, keepdims=True)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """One score per row of (possibly calibrated) level probabilities (the expected-score rule)."""
        return decide(proba, self.classes_, self.decision)

    def predict(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.decide(self.predict_proba(X, embeddings))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["encoder"] = None
        return state
