"""Cold-start scorer: level probabilities on a rubric's own scale before any human score exists.

A new micro-credential has a rubric and a backlog of submissions, and no scores. Similarity to the
level descriptors alone ranks submissions barely better than chance (a sentence encoder sees *what* a
text is about, and every level descriptor is about the same thing), and a softmax over raw similarities
piles most texts into whichever levels' wording happens to sit closest to the batch. This scorer keeps
the descriptors but does not trust raw similarities, and says what it assumes instead.

How (``fit(X)`` reads the unlabelled batch only; no human score is used anywhere):

1. Three signals per text, each oriented so that larger should mean a higher level:

   * ``descriptors``: cosine similarity to every level's prototype (descriptor + exemplars), each level's
     column standardised over the batch (so a descriptor that sits close to *every* text gains nothing),
     then contrasted along the scale (centred level positions): "closer to the high descriptors than the
     batch usually is, farther from the low ones";
   * ``elaboration``: log of the number of distinct words (rubrics reward developed, supported responses;
     a two-line answer rarely meets a top descriptor);
   * ``typicality``: similarity to the batch's centroid (responses that share the batch's common
     content are on task; off-topic and empty ones are far from it);
   * ``frequency`` (evidence made of many turns, such as a transcript's teacher turns): the share of a
     text's lines (segments) that carry the move the criterion looks for. Each line's TF-IDF cosine
     (idf over the batch's lines) to the criterion's *description* (its "look-for" sentence; the top
     level's descriptor where the rubric gives none) is compared with the ``frequency_quantile`` (0.98)
     quantile of every line of the batch: a line above it "matches", and the signal is the matched
     share. Level descriptors of such criteria grade how *often* a move occurs ("occasionally",
     "regularly", "consistently") and mostly differ in those adverbs, which neither an embedding of
     the whole lesson nor its distance to each descriptor can see; counting matching turns can.

   ``signals="auto"`` (the default) uses ``frequency`` alone when the batch is segmented (median number
   of non-empty lines per text at least ``SEGMENTED_MIN`` = 20: transcripts) and the first three
   otherwise (essays, reflections, answers). Chosen on development data only (ASAP-AES training ids;
   TalkMoves lessons outside both test splits), where on transcripts the three whole-text signals
   ranked lessons barely above chance and the PCA blend gave the uncorrelated frequency signal little
   weight.

2. Each signal is standardised over the batch and they are blended with weights from the first
   principal component of their batch correlations, clipped at zero (a signal that disagrees with the
   others' common factor gets no weight rather than a reversed one). Exemplars, where a rubric lists
   some, add prototype texts; they do not fit weights.

3. The blend's rank in the batch, as a normal score ``t``, is mapped onto the levels with a Gaussian copula: the unseen
   human level is a latent ``u ~ N(rho * t, 1 - rho^2)`` cut at the quantiles of a *prior* over the
   levels (by default a discretised normal centred mid-scale: most work is in the middle, few at the
   ends). ``rho`` (``reliability``, default 0.5) is the assumed correlation of the blend with the human
   score: the probabilities are as uncertain as that, so a batch's average predicted distribution equals
   the prior, not the top levels.

4. ``decide`` cuts the expected score at the points where a batch would be split in the prior's
   proportions (a quantile map), so the decisions spread over the scale as the prior says.

Everything fitted is a batch statistic (means, spreads, weights): scoring a text later is row-wise,
with no batch effects. Route everything it scores to people (the default policy does) until human
scores exist to calibrate or train on; it exists to order and pre-fill the first queue, not to award.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.base import BaseEstimator, ClassifierMixin

from models.features import surface_features
from models.scorers import ScorerError, TextEncoder

SIGNALS = ("descriptors", "elaboration", "typicality", "frequency")
WHOLE_TEXT_SIGNALS = SIGNALS[:3]
SEGMENTED_MIN = 20  # median non-empty lines per text from which a batch counts as segmented (turns)
MIN_BATCH = 20  # fewer unlabelled texts than this give no usable batch statistics
_GRID = (np.arange(200) + 0.5) / 200  # probabilities at which the batch's blend distribution is kept


def _strictly_increasing(q: np.ndarray) -> np.ndarray:
    """Quantiles with ties nudged apart, so interpolation through them is a function."""
    return np.asarray(q, float) + np.arange(len(q)) * 1e-9


def normal_prior(n_levels: int, spread: float = 0.25) -> np.ndarray:
    """Shares of a normal centred mid-scale with sd ``spread * n_levels`` levels, cut at the half-points."""
    pos = np.arange(n_levels, dtype=float)
    centre, sd = (n_levels - 1) / 2, max(spread * n_levels, 0.5)
    edges = np.concatenate([[-np.inf], pos[:-1] + 0.5, [np.inf]])
    p = np.diff(norm.cdf((edges - centre) / sd))
    return p / p.sum()


def segments(text: str) -> list[str]:
    """A text's non-empty lines: the turns of a transcript, the paragraphs of an essay."""
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def is_segmented(texts: list[str]) -> bool:
    """Whether a batch is made of many turns (median non-empty lines per text >= ``SEGMENTED_MIN``)."""
    return bool(texts) and float(np.median([len(segments(t)) for t in texts])) >= SEGMENTED_MIN


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class ColdStartScorer(ClassifierMixin, BaseEstimator):
    """Descriptor, elaboration and typicality signals, normalised on the unlabelled batch, mapped to a prior.

    Parameters
    ----------
    levels : list of int
        The criterion's level scores, ascending.
    level_texts : list of list of str
        Per level: its descriptor and exemplars (at least one non-empty text per level).
    encoder : TextEncoder
        Injected; not pickled.
    prior : "normal" or list of float
        Expected share of each level in a batch; "normal" is ``normal_prior(len(levels))``.
    reliability : float
        Assumed correlation (0-1) between the blended signal and the human score; sets how spread the
        probabilities are. 0.5 is a deliberately modest guess: route, do not award, on it.
    signals : "auto" or tuple of str
        Which of ``SIGNALS`` to blend (``("descriptors",)`` scores on the descriptors alone); "auto":
        ``("frequency",)`` for a segmented batch (transcripts), the three whole-text signals otherwise.
    description : str
        The criterion's description (what it looks for); the ``frequency`` signal matches lines to it.
    frequency_quantile : float
        Share of the batch's lines below the match threshold of the ``frequency`` signal.
    """

    uses_embeddings = True
    # Defaults for models pickled before these parameters existed (their __dict__ lacks them).
    description: str = ""
    frequency_quantile: float = 0.98

    def __init__(
        self,
        levels: list[int] | None = None,
        level_texts: list[list[str]] | None = None,
        encoder: TextEncoder | None = None,
        prior: str | list[float] = "normal",
        reliability: float = 0.5,
        signals: str | tuple[str, ...] = "auto",
        description: str = "",
        frequency_quantile: float = 0.98,
    ):
        self.levels = levels
        self.level_texts = level_texts
        self.encoder = encoder
        self.prior = prior
        self.reliability = reliability
        self.signals = signals
        self.description = description
        self.frequency_quantile = frequency_quantile

    # -- fitting on the unlabelled batch -------------------------------------------------------
    def _check(self) -> None:
        if not self.levels or not self.level_texts or len(self.levels) != len(self.level_texts):
            raise ScorerError("a cold-start scorer needs one descriptor (or exemplar list) per level")
        empty = [lv for lv, t in zip(self.levels, self.level_texts, strict=True) if not any(s.strip() for s in t)]
        if empty:
            raise ScorerError(f"levels {empty} have no descriptor or exemplar to compare evidence with")
        if self.signals != "auto":
            unknown = sorted(set(self.signals) - set(SIGNALS))
            if unknown or not self.signals or isinstance(self.signals, str):
                raise ScorerError(f"signals must be 'auto' or some of {list(SIGNALS)}, found {self.signals!r}")
        if not 0.5 <= float(self.frequency_quantile) < 1.0:
            raise ScorerError(f"frequency_quantile must be in [0.5, 1), found {self.frequency_quantile}")
        if not 0.0 < float(self.reliability) < 1.0:
            raise ScorerError(f"reliability must be between 0 and 1 (exclusive), found {self.reliability}")

    def _prior(self) -> np.ndarray:
        k = len(self.levels or [])
        if isinstance(self.prior, str):
            if self.prior != "normal":
                raise ScorerError(f"prior must be 'normal' or one share per level, found {self.prior!r}")
            return normal_prior(k)
        p = np.asarray(self.prior, dtype=float)
        if p.shape != (k,) or (p < 0).any() or p.sum() <= 0:
            raise ScorerError(f"prior must give {k} non-negative shares (one per level), found {list(self.prior)}")
        return p / p.sum()

    def fit(self, X: list[str] | None = None, y: Any = None, embeddings: np.ndarray | None = None) -> ColdStartScorer:
        """Fit batch statistics on unlabelled texts ``X`` (the backlog); ``y`` is ignored by design."""
        self._check()
        assert self.encoder is not None, "ColdStartScorer needs an encoder"
        texts = [t for t in (X or [])]
        if len(texts) < MIN_BATCH:
            raise ScorerError(
                f"a cold-start scorer normalises over the unlabelled submissions: expected at least {MIN_BATCH} "
                f"texts, found {len(texts)}"
            )
        self.classes_ = np.asarray(self.levels)
        prior = self._prior()
        self.prior_ = prior
        self.cuts_ = norm.ppf(np.clip(np.cumsum(prior)[:-1], 1e-9, 1 - 1e-9))
        self.prototypes_ = np.stack(
            [_unit(self.encoder.encode([s for s in lt if s.strip()]).mean(axis=0)) for lt in self.level_texts or []]
        )
        pos = np.arange(len(self.classes_), dtype=float)
        self.contrast_ = (pos - pos.mean()) / (np.linalg.norm(pos - pos.mean()) or 1.0)
        emb = embeddings if embeddings is not None else self.encoder.encode(texts)
        sims = emb @ self.prototypes_.T
        self.sim_mean_, self.sim_sd_ = sims.mean(axis=0), sims.std(axis=0) + 1e-9
        self.centroid_ = _unit(emb.mean(axis=0))
        self.signals_: tuple[str, ...]
        if self.signals == "auto":
            self.signals_ = ("frequency",) if is_segmented(texts) else WHOLE_TEXT_SIGNALS
        else:
            self.signals_ = tuple(self.signals)
        shares = self._fit_frequency(texts) if "frequency" in self.signals_ else None
        raw = self._raw_signals(texts, emb, shares)
        self.signal_mean_, self.signal_sd_ = raw.mean(axis=0), raw.std(axis=0) + 1e-9
        Z = (raw - self.signal_mean_) / self.signal_sd_
        self.weights_ = self._blend_weights(Z)
        # The batch's own distribution of the blend, kept as quantiles: ``blend`` maps a text through it
        # to a normal score, so a skewed signal (length) still splits the batch in the prior's shares.
        self.blend_quantiles_ = np.quantile(Z @ self.weights_, _GRID)
        self.n_batch_ = len(texts)
        # Cut-points on the expected score at the prior's quantiles of the blend: a quantile map.
        self.thresholds_ = self._expected(self.cuts_)
        return self

    def look_for(self) -> str:
        """The text the ``frequency`` signal matches lines to: the description, else the top descriptor."""
        if self.description.strip():
            return " ".join(self.description.split())
        return " ".join(s for s in (self.level_texts or [[""]])[-1] if s.strip())

    def _fit_frequency(self, texts: list[str]) -> np.ndarray:
        """Fit the line vectoriser and the match threshold on the batch; the batch's matched shares (the lines
        are split and transformed once, here)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        segs = [segments(t) for t in texts]
        lines = [ln for sg in segs for ln in sg]
        query = self.look_for()
        self.vectorizer_ = TfidfVectorizer(sublinear_tf=True).fit([*lines, query])
        self.query_ = self.vectorizer_.transform([query])
        sims = self._line_sims(lines)
        self.match_threshold_ = float(np.quantile(sims, float(self.frequency_quantile))) if len(sims) else 0.0
        return self._shares(segs, sims)

    def _line_sims(self, lines: list[str]) -> np.ndarray:
        if not lines:
            return np.zeros(0)
        return np.asarray((self.vectorizer_.transform(lines) @ self.query_.T).todense()).ravel()

    def matched_share(self, texts: list[str]) -> np.ndarray:
        """Per text: the share of its lines whose similarity to the look-for text is above the threshold."""
        segs = [segments(t) for t in texts]
        return self._shares(segs, self._line_sims([ln for s in segs for ln in s]))

    def _shares(self, segs: list[list[str]], sims: np.ndarray) -> np.ndarray:
        """Per text (its lines ``segs[i]``, their similarities consecutive in ``sims``): the share above the threshold."""
        out, a = np.zeros(len(segs)), 0
        for i, s in enumerate(segs):
            out[i] = float(np.mean(sims[a : a + len(s)] > self.match_threshold_)) if s else 0.0
            a += len(s)
        return out

    def _raw_signals(self, texts: list[str], emb: np.ndarray, shares: np.ndarray | None = None) -> np.ndarray:
        """One column per signal; ``shares``: the frequency signal when already computed (at fit)."""
        cols = []
        for name in getattr(self, "signals_", self.signals):
            if name == "descriptors":
                z = (emb @ self.prototypes_.T - self.sim_mean_) / self.sim_sd_
                cols.append(z @ self.contrast_)
            elif name == "elaboration":
                cols.append(surface_features(texts)[:, 5])  # log(1 + distinct words)
            elif name == "frequency":
                cols.append(self.matched_share(texts) if shares is None else shares)
            else:
                cols.append(emb @ self.centroid_)
        return np.column_stack(cols)

    @staticmethod
    def _blend_weights(Z: np.ndarray) -> np.ndarray:
        """First principal component of the signals' correlations, non-negative, summing to one."""
        if Z.shape[1] == 1:
            return np.ones(1)
        C = np.nan_to_num(np.corrcoef(Z.T))
        vals, vecs = np.linalg.eigh(C)
        w = vecs[:, -1] * np.sign(vecs[:, -1].sum() or 1.0)
        w = np.clip(w, 0.0, None)
        return w / w.sum() if w.sum() > 0 else np.full(Z.shape[1], 1.0 / Z.shape[1])

    # -- scoring (row-wise) --------------------------------------------------------------------
    def blend(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """The blended signal per text as a normal score of its rank in the batch: what selection spreads over."""
        texts = list(X)
        emb = embeddings if embeddings is not None else self.encoder.encode(texts)  # type: ignore[union-attr]
        Z = (self._raw_signals(texts, emb) - self.signal_mean_) / self.signal_sd_
        q = _strictly_increasing(self.blend_quantiles_)
        return norm.ppf(np.interp(Z @ self.weights_, q, _GRID))

    def _proba_of_blend(self, t: np.ndarray) -> np.ndarray:
        rho = float(self.reliability)
        s = np.sqrt(1.0 - rho**2)
        edges = np.concatenate([[-np.inf], self.cuts_, [np.inf]])
        p = np.diff(norm.cdf((edges[None, :] - rho * np.asarray(t, float)[:, None]) / s), axis=1)
        p = np.clip(p, 1e-9, None)
        return p / p.sum(axis=1, keepdims=True)

    def _expected(self, t: np.ndarray) -> np.ndarray:
        return self._proba_of_blend(np.asarray(t, float)) @ self.classes_.astype(float)

    def predict_proba(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self._proba_of_blend(self.blend(X, embeddings))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Expected score cut at the prior's quantile points (monotone in the probability mass)."""
        ev = np.asarray(proba) @ self.classes_.astype(float)
        return self.classes_[np.searchsorted(self.thresholds_, ev)]

    def predict(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.decide(self.predict_proba(X, embeddings))

    def describe(self) -> dict[str, Any]:
        """What the model card records: the assumptions, as fitted."""
        names = getattr(self, "signals_", self.signals)
        out: dict[str, Any] = {
            "signals": {n: round(float(w), 4) for n, w in zip(names, self.weights_, strict=True)},
            "prior": [round(float(p), 4) for p in self.prior_],
            "reliability": float(self.reliability),
            "n_batch": int(self.n_batch_),
        }
        if "frequency" in names:
            out["frequency"] = {"look_for": self.look_for(), "quantile": float(self.frequency_quantile),
                                "threshold": round(float(self.match_threshold_), 4)}
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["encoder"] = None
        return state
