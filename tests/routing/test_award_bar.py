"""The award bar: an automatic award must be shown, on held-out decisions, to go wrong no more often than a
second human rater's award does (scoring.award_bar); a "not yet" keeps the policy's decision bar."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from routing_fakes import RUBRIC
from statsmodels.stats.proportion import proportion_confint

from rubrics.schema import parse_rubric
from scoring.award_bar import (
    BARS,
    MIN_AWARDS,
    CalDecision,
    choose_award_bar,
    clopper_pearson_upper,
    evaluate_bar,
)
from scoring.credential import decide

RUB = parse_rubric({**RUBRIC, "award": {"min_level": {"quality": 3}}})
ALL_AUTO = {"quality": "auto", "style": "auto"}


def item(p: float, reference: bool, rater: bool) -> CalDecision:
    """One decision resting on ``quality`` alone: P(quality >= 3) = p, the machine's level the likelier one."""
    return CalDecision(levels={"quality": 3 if p >= 0.5 else 2, "style": 4},
                       probs={"quality": {2: 1.0 - p, 3: p}, "style": {4: 1.0}},
                       routes=ALL_AUTO, reference=reference, rater=rater)


def honest(n: int, rater_error: float, rng: np.random.Generator) -> list[CalDecision]:
    """Calibrated probabilities (the reference decision is drawn from them) and a rater who flips it."""
    p = rng.beta(0.3, 0.3, size=n)
    ref = rng.random(n) < p
    rater = np.where(rng.random(n) < rater_error, ~ref, ref)
    return [item(float(p[i]), bool(ref[i]), bool(rater[i])) for i in range(n)]


@pytest.mark.parametrize("k, n", [(0, 50), (1, 50), (3, 400), (0, 1000), (12, 90)])
def test_the_upper_bound_is_the_exact_one_sided_clopper_pearson_bound(k: int, n: int) -> None:
    assert clopper_pearson_upper(k, n, 0.05) == pytest.approx(proportion_confint(k, n, alpha=0.10, method="beta")[1])


def test_an_award_must_clear_its_own_stricter_bar_while_not_yet_keeps_the_decision_bar() -> None:
    p95 = {"quality": {2: 0.05, 3: 0.95}, "style": {4: 1.0}}
    award = decide(RUB, {"quality": 3, "style": 4}, p95, ALL_AUTO, 0.9, award_min_confidence=0.99)
    assert award.outcome == "needs_human" and award.deciding == ["quality"] and "0.950 < 0.990" in award.reason
    assert decide(RUB, {"quality": 3, "style": 4}, p95, ALL_AUTO, 0.9).outcome == "earned"  # no award bar: 0.9
    p05 = {"quality": {2: 0.95, 3: 0.05}, "style": {4: 1.0}}
    assert decide(RUB, {"quality": 2, "style": 4}, p05, ALL_AUTO, 0.9, award_min_confidence=0.99).outcome == "not_yet"


def test_a_policy_without_automatic_awards_sends_even_a_certain_award_to_a_person() -> None:
    certain = {"quality": {3: 1.0}, "style": {4: 1.0}}
    d = decide(RUB, {"quality": 3, "style": 4}, certain, ALL_AUTO, 0.9, awards_automatic=False)
    assert d.outcome == "needs_human" and d.levels_outcome == "earned" and "every award to a person" in d.reason


def test_an_overconfident_machine_gets_no_automatic_awards() -> None:
    # it says P(earned) = 0.9995 on 600 submissions, but 5% of them were not earned; the rater errs on 1%
    rng = np.random.default_rng(3)
    ref = rng.random(600) >= 0.05
    rater = np.where(rng.random(600) < 0.01, ~ref, ref)
    items = [item(0.9995, bool(r), bool(h)) for r, h in zip(ref, rater, strict=True)]
    bar, automatic, evidence = choose_award_bar(RUB, items, 0.9)
    assert (bar, automatic) == (None, False)
    assert evidence["tested"][0]["bar"] == BARS[0] and evidence["tested"][0]["passed"] is False
    assert evidence["tested"][0]["machine_false_awards"] > evidence["tested"][0]["rater_false_awards"]


@pytest.mark.parametrize("rater_error, stops_early", [(0.08, False), (0.005, True)])
def test_bars_are_tested_strictest_first_and_the_loosest_passing_one_is_chosen(rater_error: float,
                                                                                stops_early: bool) -> None:
    items = honest(3000, rater_error=rater_error, rng=np.random.default_rng(11))
    bar, automatic, evidence = choose_award_bar(RUB, items, 0.9)
    tested = evidence["tested"]
    assert [t["bar"] for t in tested] == list(BARS[: len(tested)])  # a prefix of the fixed order
    assert all(t["passed"] is not False for t in tested[:-1])  # testing stops at the first failure
    assert all(t["n_auto_awards"] < MIN_AWARDS for t in tested if t["passed"] is None)  # skipped: too few awards
    passed = [t["bar"] for t in tested if t["passed"]]
    assert bar == (min(passed) if passed else None) and automatic == bool(passed)
    assert (tested[-1]["passed"] is False) == stops_early
    assert evidence["delta"] == 0.05 and "learn-then-test" in evidence["method"]


def test_the_chosen_bar_holds_on_fresh_decisions_in_all_but_about_delta_of_repetitions() -> None:
    """Calibrate on one sample, judge on a fresh one from the same source: the machine's false-award rate on
    the decisions it makes should exceed the rater's rarely (the guarantee is for the fixed human rate,
    so the fresh comparison is noisier than delta: the test allows 3 delta)."""
    rng = np.random.default_rng(2026)
    violations = runs = 0
    for _ in range(40):
        bar, automatic, _ev = choose_award_bar(RUB, honest(500, 0.06, rng), 0.9)
        fresh = honest(500, 0.06, rng)
        r = evaluate_bar(RUB, fresh, 0.9, bar, automatic)
        runs += 1
        violations += int(r["machine_false_awards"] > r["rater_false_awards"])
    assert violations / runs <= 0.15, f"{violations} of {runs}"


def test_a_rubric_without_second_rater_scores_gets_no_automatic_awards(tmp_path: Any) -> None:
    from scoring.award_bar import with_award_bar
    from scoring.policy import RoutingPolicy

    class NoProbs:
        rubric = RUB
        scorers: dict[str, Any] = {}

    policy = with_award_bar(NoProbs(), RoutingPolicy(policy_version="p"), {})
    assert policy.awards_automatic is False and "second human score" in policy.award_evidence["why"]


def test_a_bar_with_too_few_awards_to_test_is_skipped_not_failed() -> None:
    # five sure awards at 0.9995 (too few to test), 400 honest ones at 0.992, 400 clear "not yet" of which the
    # rater wrongly awards 5%
    rng = np.random.default_rng(5)
    sure = [item(0.9995, True, True) for _ in range(5)]
    ref = rng.random(400) < 0.992
    fair = [item(0.992, bool(r), bool(r)) for r in ref]
    clear_no = [item(0.001, False, bool(rng.random() < 0.05)) for _ in range(400)]
    bar, automatic, evidence = choose_award_bar(RUB, sure + fair + clear_no, 0.9)
    first = evidence["tested"][0]
    assert first["bar"] == 0.999 and first["passed"] is None and "fewer than" in first["skipped"]
    assert automatic and bar is not None and bar <= 0.99
