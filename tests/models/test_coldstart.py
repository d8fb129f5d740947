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
    assert abs(sum(d["signals"].values()) - 1) <= 2e-4 and min(d["signals"].values()) >= 0  # three weights rounded to 4 decimals
    assert d["n_batch"] == 120 and d["reliability"] == 0.5 and len(d["prior"]) == 4
    assert pickle.loads(pickle.dumps(scorer)).encoder is None


def test_normal_prior_is_symmetric_and_thin_at_the_ends() -> None:
    p = normal_prior(5)
    np.testing.assert_allclose(p, p[::-1])
    assert p.sum() == pytest.approx(1) and p[2] == p.max() and p[0] < 0.15


_PRESS_DESCRIPTORS = [
    ["The teacher asks for answers only; no question asks why or how a student knows."],
    ["The teacher occasionally asks a student to explain, but accepts answers without justification."],
    ["The teacher regularly asks students why, how they know, and to justify their answers."],
    ["The teacher consistently presses for reasoning and follows up until students justify claims."],
]
_ROUTINE = ["Okay, open your books to page {i}.", "What is {i} plus {j}?", "Good, write that down.",
            "Who has the answer for number {i}?", "Turn to your partner for {j} seconds.", "Thank you, next one.",
            "Put your pencils down please.", "The answer is {j}, yes."]
_PRESSING = ["Why do you think the answer is {i}?", "Can you explain how you know that {j} works?",
             "Justify your claim about the {i} blocks.", "How do you know it is {j}? Explain your reasoning."]


def transcript_batch(n: int = 60, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Teacher turns only, 100 lines a lesson; lesson k in 0-3 presses for reasoning in about k of them
    (a rare move, as in real lessons: the threshold is the batch's 98th percentile line)."""
    rng = np.random.default_rng(seed)
    texts, y = [], []
    for _ in range(n):
        k = int(rng.choice(4, p=[0.25, 0.25, 0.25, 0.25]))
        lines = []
        for _line in range(100):
            pool = _PRESSING if rng.random() < 0.012 * k else _ROUTINE
            lines.append(str(rng.choice(pool)).format(i=int(rng.integers(1, 50)), j=int(rng.integers(1, 50))))
        texts.append("\n".join(lines))
        y.append(k)
    return texts, np.array(y)


def test_a_transcript_batch_is_scored_on_how_often_the_move_occurs(encoder) -> None:  # type: ignore[no-untyped-def]
    texts, y = transcript_batch()
    cs = ColdStartScorer(levels=[1, 2, 3, 4], level_texts=_PRESS_DESCRIPTORS, encoder=encoder,
                         description="Asks students to explain why, justify a claim or show how they know.").fit(texts)
    d = cs.describe()
    assert list(d["signals"]) == ["frequency"], d
    assert d["frequency"]["look_for"].startswith("Asks students to explain why")
    share = cs.matched_share(texts)
    assert spearmanr(share, y).statistic > 0.7
    assert spearmanr(cs.predict_proba(texts) @ np.arange(1, 5), y).statistic > 0.7
    # row-wise after fitting: one lesson scored alone gets the same share as in the batch
    assert cs.matched_share(texts[3:4])[0] == pytest.approx(share[3])


def test_whole_text_signals_stay_for_unsegmented_batches_and_can_be_forced(encoder) -> None:  # type: ignore[no-untyped-def]
    texts, _ = synthetic_batch(40)
    assert set(ColdStartScorer(levels=LEVELS, level_texts=DESCRIPTORS, encoder=encoder).fit(texts)
               .describe()["signals"]) == {"descriptors", "elaboration", "typicality"}
    forced = ColdStartScorer(levels=LEVELS, level_texts=DESCRIPTORS, encoder=encoder, signals=("frequency",)).fit(texts)
    assert forced.describe()["frequency"]["look_for"] == DESCRIPTORS[-1][0]  # no description: the top descriptor
    with pytest.raises(ScorerError, match="signals must be 'auto' or some of"):
        ColdStartScorer(levels=LEVELS, level_texts=DESCRIPTORS, encoder=encoder, signals=("length",)).fit(texts)


def test_a_criterion_the_cold_start_cannot_rank_says_so_when_it_is_trained(encoder) -> None:  # type: ignore[no-untyped-def]
    """Transcripts whose lines closest to the look-for sentence repeat word for word across lessons (a
    teacher's stock phrase) tie at the match threshold: no line matches, the signal is flat, and every
    submission would get one level without a word. `scoring train` (and `models list`) says so."""
    from rubrics import parse_rubric
    from scoring.train import cold_start, criterion_line

    rng = np.random.default_rng(1)
    stock = ["Take a moment to think before anyone answers.", "What is the answer?", "Good. Next question.",
             "Who can tell me?", "Correct.", "Let's move on."]
    texts = ["\n".join(str(rng.choice(stock)) for _ in range(rng.integers(22, 30))) for _ in range(40)]
    rub = parse_rubric({"id": "w", "version": 1, "title": "W", "evidence": ["transcript"], "criteria": [{
        "id": "pausing", "title": "Pauses", "description": "Waits before calling on anyone, tells students to take time "
        "to think.", "levels": [{"score": s, "descriptor": d} for s, d in
                                ((1, "no wait"), (2, "sometimes waits"), (3, "often waits"), (4, "always waits"))]}]})
    scorer, about = cold_start(rub.criteria[0], texts, encoder)
    assert len(set(scorer.predict(texts).tolist())) == 1  # what the warning is about
    assert about["flat"]["level"] == int(scorer.predict(texts)[0])
    line = criterion_line("pausing", {"n_scored": 0, **about})
    assert f"warning: it gives every submission of the file level {about['flat']['level']}, ranking nothing" in line
    assert "reword its `description`" in line
