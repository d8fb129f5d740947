"""Views of a text that a per-criterion selection may stack (see ``models.model_selection``).

A *view* is a regression of the criterion's ordinal score on one representation of the text; its
out-of-fold predictions are the columns a stacking head learns from. Each is kept only where nested
cross-validation says it earns its place (``models.model_selection``), so a view that helps on one-to-
three-sentence answers but not on essays costs the essays nothing.

  * ``embed``      ridge on the sentence embedding + surface features (meaning, robust to wording)
  * ``kernel``     RBF support-vector regression on the same (non-linear in meaning; O(n^2): skipped
                   above ``KERNEL_MAX_N`` training texts)
  * ``tfidf``      ridge on TF-IDF word 1-2-grams + character 2-5-grams within words (vocabulary, and
                   character n-grams that survive misspellings: "becuase" shares most n-grams of "because")
  * ``knn_embed``  similarity-weighted mean score of the most similar training answers by embedding
  * ``knn_ngram``  the same by TF-IDF n-gram cosine (short answers repeat each other's wording)
  * ``hgb``        gradient-boosted trees (scikit-learn ``HistGradientBoostingRegressor``) on the n-gram
                   TF-IDF reduced by truncated SVD + surface (length) features

Representations that need no labels (the SVD, the surface scaler, the n-gram cosines of ``knn_ngram``) are
fitted once on all training texts of the criterion and shared by every fold: no score is read to build them.
The ``tfidf`` view is the exception: its out-of-fold predictions use a TF-IDF fitted on the fold's training
texts only (``Features.sparse_without``), as ``EnsembleScorer`` does. Why: a vocabulary fitted on every text
keeps n-grams that occur once in the fold's training texts and again in the held-out ones (``min_df``); a new
text never meets such a vocabulary, so those predictions look better than the deployed view will be, and the
head trusts the view too much (ASAP-AES sets 3 and 5 lost about 0.01 QWK on the test ids that way).
The nearest-neighbour views keep the training texts' vectors (embeddings, n-gram weights), never the texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.svm import SVR

from models.scorers import new_tfidf, with_surface

VIEW_NAMES = ("embed", "kernel", "tfidf", "knn_embed", "knn_ngram", "hgb")
KERNEL_MAX_N = 3000  # RBF SVR fits grow with n^2: above this the kernel view is not a candidate
KNN_MAX_N = 10000  # the kNN views hold an n x n similarity matrix: above this they are not candidates
KNN_K = 15
SVD_DIM = 64


@dataclass
class Features:
    """Every representation a view reads, for one list of texts (rows aligned with the texts)."""

    dense: np.ndarray  # embedding + standardised surface features
    sparse: sparse.csr_matrix  # TF-IDF word + char n-grams + standardised surface features
    emb: np.ndarray  # unit-normalised embeddings
    ngram: sparse.csr_matrix  # unit-normalised TF-IDF rows (for cosine)
    svd_surface: np.ndarray | None = None  # SVD of the TF-IDF + raw surface features (for trees)
    texts: list[str] | None = None  # lets a fold refit its own TF-IDF (read only while fitting)
    surface: np.ndarray | None = None  # standardised surface features (the last columns of ``sparse``)
    _sims: dict[str, np.ndarray] = field(default_factory=dict)
    _fold: dict[str, Any] = field(default_factory=dict)  # one slot: the last fold's sparse matrix

    def __len__(self) -> int:
        return int(self.dense.shape[0])

    def sparse_without(self, train: np.ndarray) -> sparse.csr_matrix:
        """Every row's TF-IDF + surface features, the TF-IDF fitted on rows ``train`` only (the other rows are
        then new texts to it, as at scoring time). All rows, or features without texts: ``sparse`` itself."""
        if self.texts is None or self.surface is None or len(np.unique(train)) == len(self):
            return self.sparse
        key = np.sort(np.asarray(train)).tobytes()
        if self._fold.get("key") != key:
            vec = new_tfidf().fit([self.texts[i] for i in train])
            self._fold = {"key": key, "X": with_surface(vec.transform(self.texts), self.surface)}
        return self._fold["X"]

    def sims(self, kind: str) -> np.ndarray:
        """Cosine similarities of all rows with all rows (computed once; training features only)."""
        if kind not in self._sims:
            if kind == "knn_embed":
                s = self.emb @ self.emb.T
            else:
                s = (self.ngram @ self.ngram.T).toarray()
            self._sims[kind] = np.asarray(s, dtype=np.float32)
        return self._sims[kind]


def l2_rows(X: Any) -> Any:
    if sparse.issparse(X):
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.diags(1.0 / norms) @ X
    n = np.linalg.norm(X, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return X / n


def knn_from_sims(sims: np.ndarray, y_train: np.ndarray, k: int = KNN_K) -> np.ndarray:
    """Similarity-weighted mean score of each row's ``k`` most similar training texts (weights sim^4)."""
    k = max(1, min(k, sims.shape[1]))
    idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(sims, idx, axis=1).clip(min=0.0) ** 4 + 1e-6
    return (s * y_train[idx]).sum(axis=1) / s.sum(axis=1)


class View:
    """One view: ``fit`` on rows ``idx`` of training features, ``predict`` rows of any features."""

    name = ""

    def fit(self, F: Features, idx: np.ndarray, y: np.ndarray) -> Any:
        raise NotImplementedError

    def predict(self, model: Any, F: Features, idx: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError


class _EstimatorView(View):
    """A view that is one scikit-learn regressor on one of the feature matrices (``dense`` or ``sparse``)."""

    matrix = "dense"

    def _estimator(self) -> Any:
        raise NotImplementedError

    def fit(self, F: Features, idx: np.ndarray, y: np.ndarray) -> Any:
        return self._estimator().fit(getattr(F, self.matrix)[idx], y)

    def predict(self, model: Any, F: Features, idx: np.ndarray | None = None) -> np.ndarray:
        X = getattr(F, self.matrix)
        return model.predict(X if idx is None else X[idx])


class RidgeDense(_EstimatorView):
    name = "embed"

    def __init__(self, alpha: float = 3.0):
        self.alpha = alpha

    def _estimator(self) -> Any:
        return Ridge(alpha=self.alpha)


class KernelDense(_EstimatorView):
    name = "kernel"

    def __init__(self, C: float = 3.0):
        self.C = C

    def _estimator(self) -> Any:
        return SVR(C=self.C)


@dataclass
class _FoldRidge:
    """A ``tfidf`` view fitted inside a fold: the ridge and the rows whose TF-IDF its columns come from."""

    ridge: Ridge
    train_rows: np.ndarray


class RidgeSparse(View):
    """Ridge on TF-IDF n-grams + surface features; inside a fold, on a TF-IDF fitted on that fold's texts."""

    name = "tfidf"

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, F: Features, idx: np.ndarray, y: np.ndarray) -> Any:
        X = F.sparse_without(idx)
        ridge = Ridge(alpha=self.alpha, solver="sparse_cg").fit(X[idx], y)
        return ridge if X is F.sparse else _FoldRidge(ridge, np.asarray(idx))  # deployed: the shared TF-IDF

    def predict(self, model: Any, F: Features, idx: np.ndarray | None = None) -> np.ndarray:
        if isinstance(model, _FoldRidge):
            X, model = F.sparse_without(model.train_rows), model.ridge
        else:
            X = F.sparse
        return model.predict(X if idx is None else X[idx])


@dataclass
class _KnnModel:
    train: Any  # rows of the training representation (dense or sparse), unit-normalised
    y: np.ndarray
    idx: np.ndarray  # which training rows (to slice precomputed similarities while fitting)
    features_id: int = 0


class Knn(View):
    def __init__(self, kind: str, k: int = KNN_K):
        self.name = kind
        self.kind = kind
        self.k = k

    def _rows(self, F: Features) -> Any:
        return F.emb if self.kind == "knn_embed" else F.ngram

    def fit(self, F: Features, idx: np.ndarray, y: np.ndarray) -> Any:
        return _KnnModel(self._rows(F)[idx], np.asarray(y, dtype=np.float64), np.asarray(idx), id(F))

    def predict(self, model: Any, F: Features, idx: np.ndarray | None = None) -> np.ndarray:
        if idx is not None and model.features_id == id(F):  # cross-validation: slice the precomputed matrix
            sims = F.sims(self.kind)[np.ix_(idx, model.idx)]
        else:
            rows = self._rows(F) if idx is None else self._rows(F)[idx]
            if sparse.issparse(rows):  # row by row in scipy: a row's similarities never depend on the others
                sims = np.asarray((rows @ model.train.T).toarray())
            else:  # float64: float32 products move with the number of rows in the call (scoring.train.embed_unique)
                sims = np.asarray(rows, dtype=np.float64) @ np.asarray(model.train, dtype=np.float64).T
        return knn_from_sims(sims, model.y, self.k)


class Trees(View):
    name = "hgb"

    def __init__(self, max_iter: int = 150, learning_rate: float = 0.08, random_state: int = 13):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.random_state = random_state

    def fit(self, F: Features, idx: np.ndarray, y: np.ndarray) -> Any:
        assert F.svd_surface is not None
        return HistGradientBoostingRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate, max_leaf_nodes=15, min_samples_leaf=10,
            l2_regularization=1.0, early_stopping=False, random_state=self.random_state,
        ).fit(F.svd_surface[idx], y)

    def predict(self, model: Any, F: Features, idx: np.ndarray | None = None) -> np.ndarray:
        assert F.svd_surface is not None
        return model.predict(F.svd_surface if idx is None else F.svd_surface[idx])


def make_view(name: str, random_state: int = 13) -> View:
    if name == "embed":
        return RidgeDense()
    if name == "kernel":
        return KernelDense()
    if name == "tfidf":
        return RidgeSparse()
    if name in ("knn_embed", "knn_ngram"):
        return Knn(name)
    if name == "hgb":
        return Trees(random_state=random_state)
    raise ValueError(f"unknown view {name!r}; expected one of {VIEW_NAMES}")


def fit_svd(tfidf_rows: sparse.csr_matrix, random_state: int = 13) -> TruncatedSVD | None:
    """Truncated SVD of the training TF-IDF (unsupervised); None when there are too few columns."""
    k = min(SVD_DIM, tfidf_rows.shape[1] - 1, tfidf_rows.shape[0] - 1)
    if k < 2:
        return None
    return TruncatedSVD(n_components=k, algorithm="randomized", n_iter=4, random_state=random_state).fit(tfidf_rows)
