"""The cold-start scorer: calibrated-ish on the rubric's own scale with no human score, never piled at the top."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.stats import spearmanr

from models.coldstart import ColdStartScorer, normal_prior
from models.scorers import ScorerError

LEVELS = [0, 1, 2, 3]
DESCRIPTORS = [
    ["Off topic or no answer to the question about feedback."],
    ["Mentions feedback once, with no example and no detail."],
    ["Describes the feedback given to students with one example."],
    ["Explains the feedback given to students with several specific examples, the students' responses and "
     "what the teacher changed next."],
]
_DETAILS = ["I wrote comments on each draft.", "Students revised their paragraphs the next day.",
            "I asked them which comment helped most.", "Two students rewrote their conclusions.",
            "I changed the next lesson to model topic sentences.", "We compared drafts side by side.",
            "One pupil said the checklist made the goal clear.", "I followed up in small groups on Friday."]


def synthetic_batch(n: int = 120, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """A planted scale: level k answers on topic with k specific details (level 0 is off topic)."""
    rng = np.random.default_rng(seed)
    texts, y = [], []
    for i in range(n):
        k = int(rng.choice(4, p=[0.15, 0.35, 0.35, 0.15]))
        if k == 0:
            texts.append(f"The school bus was late again on day {i} and the canteen ran out of bread.")
        else:
            det = " ".join(rng.choice(_DETAILS, size=2 * k, replace=False))
            texts.append(f"I gave my class feedback on their essays (week {i}). {det}")
        y.append(k)
    return texts, np.array(y)


@pytest.fixture(scope="module")
def fitted(encoder):  # type: ignore[no-untyped-def]
    texts, y = synthetic_batch()
    return ColdStartScorer(levels=LEVELS, level_texts=DESCRIPTORS, encoder=encoder).fit(texts), texts, y


def test_it_orders_a_planted_scale_without_any_score(fitted) -> None:  # type: ignore[no-untyped-def]
    scorer, texts, y = fitted
    ev = scorer.predict_proba(texts) @ np.array(LEVELS, float)
    assert spearmanr(ev, y).statistic > 0.6


def test_decisions_spread_like_the_prior_and_do_not_pile_in_the_top_levels(fitted) -> None:  # type: ignore[no-untyped-def]
    scorer, texts, _ = fitted
    pred = scorer.predict(texts)
    shares = np.array([np.mean(pred == k) for k in LEVELS])
    assert shares[2:].sum() < 0.6, f"top two levels hold {shares[2:].sum():.0%}"
    np.testing.assert_allclose(shares, normal_prior(4), atol=0.08)
    # the average predicted distribution is the prior too: the probabilities claim no more than they know
    np.testing.assert_allclose(scorer.predict_proba(texts).mean(axis=0), normal_prior(4), atol=0.08)


def test_probabilities_are_modest_about_what_an_unlabelled_signal_knows(fitted) -> None:  # type: ignore[no-untyped-def]
    scorer, texts, _ = fitted
    assert scorer.predict_proba(texts).max() < 0.9, "no score without a human may look certain"


def test_scoring_is_row_wise_after_fitting_on_the_batch(fitted) -> None:  # type: ignore[no-untyped-def]
    scorer, texts, _ = fitted
    P = scorer.predict_proba(texts)
    np.testing.assert_allclose(scorer.predict_proba(texts[5:8]), P[5:8], atol=1e-5)


def test_a_prior_given_by_the_issuer_sets_the_shares(encoder) -> None:  # type: ignore[no-untyped-def]
    texts, _ = synthetic_batch(100, seed=1)
    s = ColdStartScorer(levels=LEVELS, level_texts=DESCRIPTORS, encoder=encoder, prior=[0.1, 0.2, 0.3, 0.4]).fit(texts)
    shares = np.array([np.mean(s.predict(texts) == k) for k in LEVELS])
    np.testing.assert_allclose(shares, [0.1, 0.2, 0.3, 0.4], atol=0.06)


def test_bad_configurations_are_refused_in_words(encoder) -> None:  # type: ignore[no-untyped-def]
    texts, _ = synthetic_batch(40)
    with pytest.raises(ScorerError, match="expected at least 20 texts, found 5"):
        ColdStartScorer(levels=LEVELS, level_texts=DESCRIPTORS, encoder=encoder).fit(texts[:5])
    with pytest.raises(ScorerError, match=r"levels \[1\] have no descriptor"):
        ColdStartScorer(levels=LEVELS, level_texts=[["a"], [" "], ["c"], ["d"]], encoder=encoder).fit(texts)
    with pytest.raises(ScorerError, match="prior must give 4 non-negative shares"):
        ColdStartScorer(levels=LEVELS, level_texts=DESCRIPTORS, encoder=encoder, prior=[1.0, 2.0]).fit(texts)
    with pytest.raises(ScorerError, match="reliability must be between 0 and 1"):
        ColdStartScorer(levels=LEVELS, level_texts=DESCRIPTORS, encoder=encoder, reliability=1.0).fit(texts)


def test_the_card_states_the_fitted_assumptions(fitted) -> None:  # type: ignore[no-untyped-def]
    scorer, _, _ = fitted
    d = scorer.describe()
    assert set(d["signals"]) == {"descriptors", "elaboration", "typicality"}
    assert abs(sum(d["signals"].values()) - 1) < 1e-6 and min(d["signals"].values()) >= 0
    assert d["n_batch"] == 120 and d["reliability"] == 0.5 and len(d["prior"]) == 4
    assert pickle.loads(pickle.dumps(scorer)).encoder is None


def test_normal_prior_is_symmetric_and_thin_at_the_ends() -> None:
    p = normal_prior(5)
    np.testing.assert_allclose(p, p[::-1])
    assert p.sum() == pytest.approx(1) and p[2] == p.max() and p[0] < 0.15
