"""Per-criterion model selection by nested cross-validation: which views and which head serve a criterion.

Why: one fixed ensemble is a compromise between essays (long, scored for writing quality) and short
answers (a few sentences, scored for content, which repeat each other's wording). The criterion's own
training scores decide, and the figure reported for it is honest about the choosing.

How (``SelectiveEnsembleScorer.fit``), on the training data only:
  1. The texts are split into K stratified folds (K=5). Every candidate view (``models.shortviews``) is
     fitted on all folds but k and predicts fold k (the out-of-fold predictions the deployed head learns
     from), and on all folds but j and k, predicting folds j and k (the inner level of the nested scheme).
  2. Outer fold k: the candidates (view subsets x heads) are compared by cross-validation over the other
     K-1 folds only, on view predictions made without fold k; the winner's head is fitted on those folds
     and scores fold k. Fold k's scores are never used to choose. The pooled outer predictions give the
     nested cross-validated QWK, with a bootstrap 95% interval over the training texts.
  3. The same comparison on all K folds chooses the deployed configuration; its views are refitted on all
     texts and its head on their out-of-fold predictions (as ``EnsembleScorer`` does).
Ties within ``TIE`` QWK go to fewer views (the simpler model).
"""

from __future__ import annotations

import time
from itertools import combinations
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from models.features import surface_features
from models.scorers import (
    EnsembleScorer,
    ScorerError,
    SharedTfidf,
    _fit_gaussian_head,
    _fit_logistic_head,
    _gaussian_proba,
    _spread,
    apply_thresholds,
    cached_surface_features,
    decide,
    fit_thresholds,
    quadratic_kappa,
    qwk_values,
    training_data,
    with_surface,
)
from models.shortviews import KERNEL_MAX_N, KNN_MAX_N, VIEW_NAMES, Features, fit_svd, l2_rows, make_view

# Candidate view subsets, smallest first. The first is the simple model; the second is the default
# ensemble (``EnsembleScorer``'s views), so selection can only add where CV says it wins.
# The gradient-boosted trees view (``hgb``) is not a default candidate: measured on ASAP-AES set 3's training
# ids (800 texts) it never won (best config with it 0.699 vs 0.714 without) and cost 75% of the fitting time
# (574 s of 759 s on this loaded 2-core machine); pass ``candidates`` to try it.
CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("embed", "tfidf"),
    ("embed", "tfidf", "kernel"),
    ("embed", "tfidf", "knn_embed", "knn_ngram"),
    ("embed", "tfidf", "kernel", "knn_embed", "knn_ngram"),
)
WITH_TREES: tuple[tuple[str, ...], ...] = (
    *CANDIDATES,
    ("embed", "tfidf", "hgb"),
    ("embed", "tfidf", "kernel", "knn_embed", "knn_ngram", "hgb"),
)
SELECT_MIN_N = 150  # fewer human scores: the criterion keeps the fixed ensemble (no choosing on a few folds)
TIE = 0.002
DEFAULT_VIEWS = ("embed", "tfidf", "kernel")  # the fixed ensemble's views (EnsembleScorer), in candidate order
N_BOOT = 1000


def config_name(views: tuple[str, ...], head: str) -> str:
    return "+".join(views) + f" / {head}"


def _head_predict(Ztr: np.ndarray, ytr: np.ndarray, Zte: np.ndarray, head: str, levels: list[int],
                  thresholds: bool) -> np.ndarray:
    """Fit a head (scaler + logistic or gaussian) on view predictions, then score held-out rows."""
    sc = StandardScaler().fit(Ztr)
    A, B = sc.transform(Ztr), sc.transform(Zte)
    classes = np.asarray(levels)
    if head == "logistic":
        h = _fit_logistic_head(A, ytr)
        p_tr = _spread(h.predict_proba(A), h.classes_, levels, 1e-6)
        p_te = _spread(h.predict_proba(B), h.classes_, levels, 1e-6)
    else:
        blend, sigma = _fit_gaussian_head(A, ytr)
        p_tr = _gaussian_proba(blend.predict(A), sigma, classes)
        p_te = _gaussian_proba(blend.predict(B), sigma, classes)
    if thresholds:
        cuts = fit_thresholds(p_tr @ classes.astype(float), ytr, levels)
        return apply_thresholds(p_te @ classes.astype(float), cuts, classes)
    return decide(p_te, classes, "expected")


def compare(Z: np.ndarray, y: np.ndarray, folds: np.ndarray, configs: list[tuple[tuple[int, ...], str]],
            levels: list[int], thresholds: bool) -> tuple[list[float], list[np.ndarray]]:
    """Cross-validated QWK of each (view columns, head) on rows whose view predictions are out-of-fold,
    and each one's cross-validated predictions (for the paired comparison in ``choose``)."""
    out, preds = [], []
    for cols, head in configs:
        pred = np.empty(len(y), dtype=int)
        for j in np.unique(folds):
            te = folds == j
            pred[te] = _head_predict(Z[~te][:, cols], y[~te], Z[te][:, cols], head, levels, thresholds)
        out.append(quadratic_kappa(y, pred, levels))
        preds.append(pred)
    return out, preds


def qwk_resampled(y: np.ndarray, p: np.ndarray, levels: list[int], idx: np.ndarray) -> np.ndarray:
    """QWK of ``p`` against ``y`` on each row of resampled indices ``idx`` (B, n): ``qwk_values`` on level
    positions, so the same figure as ``cohen_kappa_score(weights="quadratic", labels=levels)`` on any scale."""
    pos = {lv: i for i, lv in enumerate(levels)}
    return np.asarray(qwk_values(np.array([pos[int(v)] for v in y]), np.array([pos[int(v)] for v in p]), idx))


def paired_se(y: np.ndarray, a: np.ndarray, b: np.ndarray, levels: list[int], n_boot: int = 200,
              seed: int = 13) -> float:
    """Bootstrap standard error of QWK(y, a) - QWK(y, b) over texts resampled together (paired)."""
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n_boot, len(y)))
    d = qwk_resampled(y, a, levels, idx) - qwk_resampled(y, b, levels, idx)
    d = d[np.isfinite(d)]
    return float(d.std(ddof=1)) if len(d) > 1 else float("inf")


def choose(scores: list[float], configs: list[tuple[tuple[int, ...], str]], default: int | None = None,
           preds: list[np.ndarray] | None = None, y: np.ndarray | None = None,
           levels: list[int] | None = None) -> int:
    """Best QWK; within ``TIE`` of it, the fewest views (then the earlier candidate).

    With ``default`` (the fixed ensemble's configuration, where it is a candidate): the default stays unless
    that winner beats it by more than ``TIE`` and, given the candidates' cross-validated ``preds`` (with
    ``y`` and ``levels``), by more than one paired bootstrap standard error of the difference (the
    one-standard-error rule: Hastie, Tibshirani & Friedman, Elements of Statistical Learning, 7.10). Why:
    the candidates' cross-validated QWKs often lie within noise of each other, and the best of eight on the
    same folds is favoured by its luck there; the fixed ensemble holds across rubrics, so only evidence
    beyond noise moves away from it.
    """
    finite = [s for s in scores if np.isfinite(s)]
    best = max(finite) if finite else 0.0
    ok = [i for i, s in enumerate(scores) if np.isfinite(s) and s >= best - TIE]
    win = min(ok, key=lambda i: (len(configs[i][0]), i)) if ok else 0
    if default is None or win == default or not np.isfinite(scores[default]):
        return win
    margin = scores[win] - scores[default]
    if margin <= TIE:
        return default
    if preds is not None and y is not None and levels is not None and \
            margin <= paired_se(y, preds[win], preds[default], levels):
        return default
    return win


def bootstrap_interval(y: np.ndarray, pred: np.ndarray, levels: list[int], n_boot: int = N_BOOT,
                       seed: int = 13) -> tuple[float, float]:
    """95% percentile interval of QWK over texts resampled with replacement."""
    rng = np.random.default_rng(seed)
    n = len(y)
    vals = []
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        v = quadratic_kappa(y[i], pred[i], levels)
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return (float("nan"), float("nan"))
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def nested_view_predictions(views: list[Any], F: Features, y: np.ndarray, folds: np.ndarray,
                            timings: dict[str, float] | None = None) -> np.ndarray:
    """``Q[i, k, v]``: view v's prediction of text i from a model fitted without fold(i) and without fold k
    (k == fold(i): without fold(i) only, the ordinary out-of-fold prediction).

    A model fitted without folds j and k serves both outer fold k (predicting fold j's texts for the inner
    comparison) and outer fold j (predicting fold k's), so K + K(K-1)/2 fits per view, not K + K(K-1).
    """
    n, K = len(y), int(folds.max()) + 1
    Q = np.full((n, K, len(views)), np.nan)
    for v, view in enumerate(views):
        t0 = time.perf_counter()
        for k in range(K):
            tr, te = np.where(folds != k)[0], np.where(folds == k)[0]
            Q[te, k, v] = view.predict(view.fit(F, tr, y[tr]), F, te)
        for j, k in combinations(range(K), 2):
            out = (folds == j) | (folds == k)
            tr, te = np.where(~out)[0], np.where(out)[0]
            p = view.predict(view.fit(F, tr, y[tr]), F, te)
            Q[te[folds[te] == j], k, v] = p[folds[te] == j]
            Q[te[folds[te] == k], j, v] = p[folds[te] == k]
        if timings is not None:
            timings[view.name] = round(time.perf_counter() - t0, 2)
    return Q


# Sibling criteria reading the same texts in one training run share the SVD and the features (with their
# n x n similarity matrices). An entry holds the TF-IDF (and SVD) objects it was made with and is reused only
# for those very objects; ``clear_selection_memos`` (called at the end of ``scoring.train.train_model``)
# drops them so nothing outlives the run.
_SVD_MEMO: dict[str, Any] = {}
_FEATURES_MEMO: dict[str, Any] = {}


def clear_selection_memos() -> None:
    """Forget the features and SVD shared between the criteria of one training run."""
    _SVD_MEMO.clear()
    _FEATURES_MEMO.clear()


class SelectiveEnsembleScorer(EnsembleScorer):
    """An ``EnsembleScorer`` whose views and head are chosen per criterion by nested cross-validation.

    Same contract and the same head/decision machinery as its parent (so calibration, cross-fitted
    probabilities and routing are unchanged); only ``fit`` (selection) and ``views`` differ.

    Parameters
    ----------
    candidates : tuple of view-name tuples or None
        View subsets to choose among (default ``CANDIDATES``).
    heads : tuple of str or None
        Heads to choose among (default logistic and gaussian up to 15 levels, gaussian beyond).
    """

    def __init__(
        self,
        levels: list[int] | None = None,
        encoder: Any = None,
        n_folds: int = 5,
        decision: str = "thresholds",
        random_state: int = 13,
        shared_tfidf: SharedTfidf | None = None,
        candidates: tuple[tuple[str, ...], ...] | None = None,
        heads: tuple[str, ...] | None = None,
    ):
        self.levels = levels
        self.encoder = encoder
        self.n_folds = n_folds
        self.decision = decision
        self.random_state = random_state
        self.shared_tfidf = shared_tfidf
        self.candidates = candidates
        self.heads = heads

    # -- features -----------------------------------------------------------------------------
    def _features(self, texts: list[str], emb: np.ndarray | None, need: set[str]) -> Features:
        if emb is None:
            assert self.encoder is not None, "SelectiveEnsembleScorer needs an encoder: set scorer.encoder"
            emb = self.encoder.encode(texts)
        surf = cached_surface_features(texts)
        surf_s = self.surface_scaler_.transform(surf)
        assert self.tfidf_ is not None
        tf = self.tfidf_.transform(texts)
        F = Features(
            dense=np.hstack([emb, surf_s]),
            sparse=with_surface(tf, surf_s),
            emb=l2_rows(np.asarray(emb, dtype=np.float32)),
            ngram=l2_rows(tf).tocsr(),
            texts=texts,
            surface=surf_s,
        )
        if "hgb" in need and self.svd_ is not None:
            F.svd_surface = np.hstack([self.svd_.transform(tf), surf])
        return F

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: list[str], y: Any, embeddings: np.ndarray | None = None) -> SelectiveEnsembleScorer:
        # One BLAS/OpenMP thread: many small fits; on a shared small CPU, spinning threads cost more than they give.
        with threadpool_limits(limits=1):
            return self._fit(X, y, embeddings)

    def _fit(self, X: list[str], y: Any, embeddings: np.ndarray | None = None) -> SelectiveEnsembleScorer:
        t_start = time.perf_counter()
        texts, levels, yy = training_data(X, y, self.levels)
        if len(texts) < 4 * self.n_folds:
            raise ScorerError(f"{len(texts)} texts are too few for {self.n_folds}-fold nested selection")
        n = len(texts)
        self.classes_ = np.asarray(levels)
        thresholds = self.decision == "thresholds" and len(levels) <= 15
        heads = self.heads or (("logistic", "gaussian") if len(levels) <= 15 else ("gaussian",))
        cands = list(self.candidates or CANDIDATES)
        self.not_candidates_: dict[str, str] = {}
        if n > KERNEL_MAX_N:
            self.not_candidates_["kernel"] = f"{n} training texts > {KERNEL_MAX_N}: RBF regression costs grow with n^2"
            cands = [c for c in cands if "kernel" not in c] or [("embed", "tfidf")]
        if n > KNN_MAX_N:
            for v in ("knn_embed", "knn_ngram"):
                self.not_candidates_[v] = f"{n} training texts > {KNN_MAX_N}: the n x n similarity matrix would not fit"
            cands = [c for c in cands if not any(v.startswith("knn_") for v in c)] or [("embed", "tfidf")]
        view_names = [v for v in VIEW_NAMES if any(v in c for c in cands)]

        # Unsupervised representations, fitted once on all training texts (no score is read).
        self.surface_scaler_ = StandardScaler().fit(surface_features(texts))
        self.tfidf_ = self.shared_tfidf if self.shared_tfidf is not None else SharedTfidf.fit(texts)
        self.svd_ = None
        if "hgb" in view_names:
            key = f"{hash(tuple(texts))}:{n}"
            if _SVD_MEMO.get("key") != key or _SVD_MEMO.get("tfidf") is not self.tfidf_:
                _SVD_MEMO.clear()
                _SVD_MEMO.update(key=key, tfidf=self.tfidf_, svd=fit_svd(self.tfidf_.transform(texts), self.random_state))
            self.svd_ = _SVD_MEMO["svd"]
            if self.svd_ is None:
                view_names.remove("hgb")
                cands = [c for c in cands if "hgb" not in c] or [("embed", "tfidf")]
        # Sibling criteria reading the same texts share the features (and their similarity matrices).
        fkey = f"{hash(tuple(texts))}:{n}:{hash(np.asarray(embeddings).tobytes()) if embeddings is not None else ''}"
        if (_FEATURES_MEMO.get("key") == fkey and _FEATURES_MEMO.get("tfidf") is self.tfidf_
                and _FEATURES_MEMO.get("svd") is self.svd_
                and (self.svd_ is None or _FEATURES_MEMO["F"].svd_surface is not None)):
            F = _FEATURES_MEMO["F"]
        else:
            _FEATURES_MEMO.clear()
            F = self._features(texts, embeddings, set(view_names))
            _FEATURES_MEMO.update(key=fkey, tfidf=self.tfidf_, svd=self.svd_, F=F)

        # Stratified folds.
        K = self.n_folds
        counts = np.bincount(yy - yy.min())
        splitter = (StratifiedKFold(K, shuffle=True, random_state=self.random_state)
                    if counts[counts > 0].min() >= K else KFold(K, shuffle=True, random_state=self.random_state))
        folds = np.zeros(n, dtype=np.int16)
        for k, (_, te) in enumerate(splitter.split(np.zeros(n), yy)):
            folds[te] = k

        self.view_fit_s_: dict[str, float] = {}
        Q = nested_view_predictions([make_view(v, self.random_state) for v in view_names], F, yy, folds, self.view_fit_s_)

        col = {name: i for i, name in enumerate(view_names)}
        configs = [(tuple(col[v] for v in c), h) for c in cands for h in heads]
        fixed = (tuple(col[v] for v in DEFAULT_VIEWS) if all(v in col for v in DEFAULT_VIEWS) else None,
                 "logistic" if len(levels) <= 15 else "gaussian")  # EnsembleScorer's views and head
        default = configs.index(fixed) if fixed in configs else None

        # Outer folds: choose on the other folds only, score fold k.
        outer_pred = np.empty(n, dtype=int)
        outer_choices = []
        for k in range(K):
            R = folds != k
            Zin, Zout = Q[R, k, :], Q[~R, k, :]
            scores, preds = compare(Zin, yy[R], folds[R], configs, levels, thresholds)
            cols, head = configs[choose(scores, configs, default, preds, yy[R], levels)]
            outer_pred[~R] = _head_predict(Zin[:, cols], yy[R], Zout[:, cols], head, levels, thresholds)
            outer_choices.append(config_name(tuple(view_names[c] for c in cols), head))

        # The deployed choice: the same comparison on all folds (ordinary out-of-fold view predictions).
        oof_all = Q[np.arange(n), folds, :]
        scores, preds = compare(oof_all, yy, folds, configs, levels, thresholds)
        best = choose(scores, configs, default, preds, yy, levels)
        cols, head = configs[best]
        self.chosen_views_ = tuple(view_names[c] for c in cols)
        self.head_kind_ = head
        fold_qwks = [quadratic_kappa(yy[folds == k], outer_pred[folds == k], levels) for k in range(K)]
        lo, hi = bootstrap_interval(yy, outer_pred, levels, seed=self.random_state)
        self.selection_: dict[str, Any] = {
            "chosen": {"views": list(self.chosen_views_), "head": head},
            "rule": (f"the fixed ensemble ({config_name(DEFAULT_VIEWS, fixed[1])}) unless the best candidate (the fewest "
                     f"views within {TIE} of the best) beats it by more than {TIE} and by more than one paired "
                     "bootstrap standard error" if default is not None else f"the fewest views within {TIE} of the best"),
            "nested_cv": {
                "qwk": round(quadratic_kappa(yy, outer_pred, levels), 4),
                "interval95": [round(lo, 4), round(hi, 4)],
                "interval_kind": f"bootstrap over the {n} training texts of the pooled outer-fold predictions",
                "exact": round(float(np.mean(outer_pred == yy)), 4),
                "fold_qwk": [round(q, 4) for q in fold_qwks],
                "folds": K,
                "outer_choices": outer_choices,
            },
            "candidates": [
                {"config": config_name(tuple(view_names[c] for c in cc), h), "cv_qwk": round(s, 4)}
                for (cc, h), s in zip(configs, scores, strict=True)
            ],
            "view_fit_s": dict(self.view_fit_s_),
            **({"not_candidates": dict(self.not_candidates_)} if self.not_candidates_ else {}),
        }
        self.nested_pred_ = outer_pred

        # Deployed model: chosen views on all texts, head on their out-of-fold predictions.
        self.view_models_ = {}
        all_idx = np.arange(n)
        for name in self.chosen_views_:
            view = make_view(name, self.random_state)
            model = view.fit(F, all_idx, yy)
            if hasattr(model, "features_id"):
                model.features_id = 0  # never mistake new texts' features for the training ones
            self.view_models_[name] = (view, model)
        if "hgb" not in self.chosen_views_:
            self.svd_ = None
        self._fit_head(oof_all[:, list(cols)], yy, folds, texts, levels, thresholds)
        self.fit_s_ = round(time.perf_counter() - t_start, 2)
        self.selection_["fit_s"] = self.fit_s_
        return self

    def views(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        texts = list(X)
        F = self._features(texts, embeddings, set(self.chosen_views_))
        return np.column_stack([view.predict(model, F) for view, model in self.view_models_.values()])

    def describe(self) -> str:
        """One line: the chosen configuration and its nested cross-validated QWK with its interval."""
        s = self.selection_
        nc = s["nested_cv"]
        return (f"{config_name(tuple(s['chosen']['views']), s['chosen']['head'])}; nested-CV QWK {nc['qwk']:.3f} "
                f"[95% {nc['interval95'][0]:.3f}-{nc['interval95'][1]:.3f}]")
