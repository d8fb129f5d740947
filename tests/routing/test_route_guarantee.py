"""The routing promise holds after selection: Learn then Test, short scales, and the human-bar statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from scoring.human_bar import agreement_intervals, bar_statistic, margin_test
from scoring.optimise import choose_thresholds, rule_families
from scoring.routing import confidence_of

LEVELS = [0, 1, 2, 3, 4]


def world(n: int, seed: int, machine_sd: float, rater_sd: float = 0.5, levels: int = 5) -> dict[str, np.ndarray]:
    """Items of varying difficulty. The model knows how hard an item is (its probabilities are sharp on easy
    items) but not the human noise; the machine score is a third 'rater' with its own noise."""
    rng = np.random.default_rng(seed)
    top = levels - 1
    latent = rng.uniform(-0.4, top + 0.4, n)
    sharp = rng.uniform(0.5, 6.0, n)
    lv = np.arange(levels)
    logits = -sharp[:, None] * (lv[None, :] - latent[:, None]) ** 2
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    scale = 1.0 / np.sqrt(sharp)  # easy items are easy for everyone

    def rater(sd: float) -> np.ndarray:
        return np.clip(np.round(latent + rng.normal(0, sd * scale)), 0, top).astype(int)

    r1, r2, m = rater(rater_sd), rater(rater_sd), rater(machine_sd)
    return {"P": P, "y": r1, "machine": m, "r1": r1.astype(float), "r2": r2.astype(float)}


def null_world(n: int, seed: int) -> dict[str, np.ndarray]:
    """The machine is a noisier rater than the humans on EVERY item, and its confidence says nothing about
    that (random probabilities): every subset a rule can pick agrees with the human less than humans do,
    so any rule certified is a violation of the promise."""
    rng = np.random.default_rng(seed)
    latent = rng.uniform(-0.4, 4.4, n)

    def rater(sd: float) -> np.ndarray:
        return np.clip(np.round(latent + rng.normal(0, sd, n)), 0, 4).astype(int)

    r1, r2, m = rater(0.5), rater(0.5), rater(0.53)
    return {"P": rng.dirichlet(np.ones(5), n), "y": r1, "machine": m, "r1": r1.astype(float), "r2": r2.astype(float)}


def _choose(w: dict[str, np.ndarray], selection: str, seed: int, levels: list[int] = LEVELS, **kw):  # type: ignore[no-untyped-def]
    return choose_thresholds(w["P"], w["y"], w["machine"], levels, None, human_pair=(w["r1"], w["r2"]),
                             seed=seed, selection=selection, **kw)


def test_learn_then_test_bounds_the_chance_of_a_rule_below_the_bar_where_winner_picking_does_not() -> None:
    # in each world every rule is (slightly) below the bar: the share of worlds with a rule certified is the
    # error rate the promise bounds by delta = 5% (allowance for 30 worlds: 10%)
    ltt = np.mean([_choose(null_world(400, s), "ltt", s, n_boot=400).policy.enabled for s in range(30)])
    assert ltt <= 0.10, f"LTT certified a rule below the bar in {ltt:.0%} of worlds"
    best = np.mean([_choose(null_world(400, s), "best", s, n_boot=100).policy.enabled for s in range(10)])
    assert best > 0.10, "the same check fails for the winner-picking optimiser (best of many rules on the same items)"


def test_a_machine_better_than_the_raters_is_automated_and_the_evidence_records_the_guarantee() -> None:
    w = world(600, 1, machine_sd=0.25, rater_sd=0.8)
    ch = _choose(w, "ltt", 1, n_boot=400)
    cp, ev = ch.policy, ch.policy.evidence
    assert cp.enabled and ev["auto_fraction_cal"] >= 0.5
    g = ev["guarantee"]
    assert g["delta"] == 0.05 and "learn-then-test" in g["method"] and g["statistic"] == "qwk"
    assert "exchangeable" in g["assumption"] and g["level_per_test"] == pytest.approx(0.05 / len(g["families"]) / len(g["starts"]), abs=1e-6)
    assert ev["p_value"] <= g["level_per_test"]
    assert all(r["certified"] for r in ev["sequence"][:-1])  # the family's sequence up to its first failure
    auto = confidence_of(w["P"], LEVELS, w["machine"], cp) >= cp.min_confidence
    assert auto.mean() == pytest.approx(ev["auto_fraction_cal"], abs=1e-4), "the stored rule is the tested rule"
    iv = ev["agreement_auto_cal"]
    assert iv["machine_qwk"][1] <= iv["machine_qwk"][0] <= iv["machine_qwk"][2]
    assert {"machine_exact", "human_qwk", "human_exact", "qwk_difference", "exact_difference"} <= set(iv)


def test_each_sequence_stops_at_its_first_rule_that_is_not_certified() -> None:
    ch = _choose(world(500, 3, machine_sd=0.4, rater_sd=0.6), "ltt", 3, n_boot=400)
    for f in {(r["family"], r["start"]) for r in ch.table}:
        rows = [r for r in ch.table if (r["family"], r["start"]) == f]
        assert all(r["certified"] for r in rows[:-1])
        shares = [r["auto_fraction"] for r in rows]
        assert shares == sorted(shares), "thresholds run from the strictest to the loosest"


def test_no_rule_that_is_always_true_on_a_short_scale() -> None:
    assert rule_families(2, None, 30) == [(0, None)]
    assert rule_families(3, None, 30) == [(0, None)]
    assert (1, None) in rule_families(7, None, 30) and (0, None) in rule_families(7, None, 30)
    assert rule_families(25, None, 30) == [(1, None), (2, None)]
    assert rule_families(5, np.ones(100), 30) == [(0, None)]
    assert (0, 1) in rule_families(5, np.ones(100), 30, singleton_family=True), "singleton sets: a family on request"


def test_binary_scale_uses_exact_agreement_and_stays_defined_on_a_skewed_accepted_subset() -> None:
    w = world(1000, 5, machine_sd=0.1, rater_sd=1.0, levels=2)
    ch = _choose(w, "ltt", 5, levels=[0, 1], n_boot=400)
    g = ch.policy.evidence["guarantee"]
    assert g["statistic"] == "exact" and "McNemar" in g["test"]
    assert all(f["tolerance"] == 0 for f in g["families"])
    assert ch.policy.enabled and ch.policy.confidence == "exact"
    iv = ch.policy.evidence["agreement_auto_cal"]
    assert iv["machine_exact"][0] is not None and iv["exact_difference"][1] is not None
    # all accepted items one level, and the humans agree: kappa is undefined, exact agreement is not
    one = margin_test(np.ones(40), np.ones(40), (np.ones(40), np.ones(40)), statistic="qwk", n_boot=200)
    assert np.isnan(one.machine) and one.p_value == 1.0, "an undefined kappa never certifies a rule"
    # machine vs rater 2 (the reference) against rater 1 vs rater 2
    ex = margin_test(np.ones(40), np.ones(40), (np.r_[np.zeros(10), np.ones(30)], np.ones(40)), statistic="exact")
    assert ex.machine == 1.0 and ex.human == 0.75 and ex.p_value == pytest.approx(binomtest(10, 10, 0.5, "greater").pvalue)


def test_bar_statistic_by_scale() -> None:
    assert bar_statistic(2) == bar_statistic(3) == "exact"
    assert bar_statistic(4) == "qwk" and bar_statistic(2, paired=False) == "qwk"
    assert bar_statistic(6, "exact") == "exact"
    with pytest.raises(ValueError, match="statistic must be one of"):
        bar_statistic(4, "median")


def test_agreement_intervals_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    h = rng.integers(0, 5, 300)
    m = np.clip(h + rng.integers(-1, 2, 300), 0, 4)
    r2 = np.clip(h + rng.integers(-1, 2, 300), 0, 4)
    iv = agreement_intervals(m, h, (h, r2), n_boot=300)
    labels = list(range(5))
    # paired: the machine is compared with rater 2, as rater 1 is
    assert iv["machine_qwk"][0] == pytest.approx(cohen_kappa_score(m, r2, weights="quadratic", labels=labels), abs=1e-4)
    assert iv["human_qwk"][0] == pytest.approx(cohen_kappa_score(h, r2, weights="quadratic", labels=labels), abs=1e-4)
    assert iv["machine_exact"][0] == pytest.approx(np.mean(m == r2), abs=1e-4)
    assert iv["qwk_difference"][0] == pytest.approx(iv["machine_qwk"][0] - iv["human_qwk"][0], abs=2e-4)
    one = agreement_intervals(m, h, None, n_boot=300)  # a single human: the machine is compared with it
    assert one["machine_qwk"][0] == pytest.approx(cohen_kappa_score(m, h, weights="quadratic", labels=labels), abs=1e-4)
    for k in ("machine_qwk", "human_qwk", "qwk_difference", "exact_difference"):
        assert iv[k][1] <= iv[k][0] <= iv[k][2]


def test_a_confidence_equal_for_every_item_still_offers_the_rule_accept_all() -> None:
    w = world(400, 7, machine_sd=0.2, rater_sd=0.8)
    w["P"] = np.tile(np.full(5, 0.2), (400, 1))  # the model is equally (un)sure of every item
    ch = _choose(w, "ltt", 7, n_boot=400)
    assert ch.policy.enabled and ch.policy.evidence["auto_fraction_cal"] == 1.0


# ------------------------------------------------------------------ who is compared with whom


def resolved_world(n: int, seed: int) -> dict[str, np.ndarray]:
    """Two raters of equal quality; the score of record is their sum (ASAP-AES sets 1, 7, 8), and the machine
    is exactly as good as one rater: a third, independent rater of the same noise, on the sum's scale."""
    rng = np.random.default_rng(seed)
    latent = rng.uniform(-0.4, 4.4, n)

    def rater() -> np.ndarray:
        return np.clip(np.round(latent + rng.normal(0, 0.7, n)), 0, 4).astype(int)

    r1, r2, m = rater(), rater(), rater()
    return {"y": r1 + r2, "machine": 2 * m, "r1": r1.astype(float), "r2": r2.astype(float)}


def test_the_machine_is_compared_with_the_reference_rater_not_the_resolved_score() -> None:
    # a machine that is just another rater is NOT better than the raters: no margin, no certificate. Compared
    # with the resolved score (which averages out both raters' noise) it looked better than rater 1 vs rater 2.
    w = resolved_world(3000, 0)
    pair = (2 * w["r1"], 2 * w["r2"])  # raters doubled onto the sum's scale, as calibrate_model does
    bt = margin_test(w["machine"], w["y"], pair, statistic="qwk", n_boot=400)
    ref = cohen_kappa_score(w["machine"] // 2, w["r2"].astype(int), weights="quadratic", labels=LEVELS)
    assert bt.machine == pytest.approx(ref, abs=1e-6), "machine vs rater 2"
    assert bt.human == pytest.approx(cohen_kappa_score(w["r1"], w["r2"], weights="quadratic"), abs=1e-6)
    assert abs(bt.margin) < 0.03 and bt.p_value > 0.05
    old = cohen_kappa_score(w["machine"], w["y"], weights="quadratic", labels=list(range(9)))  # the old comparison
    assert old - bt.human > 0.03, "against the resolved score the same machine looks better than the raters"


def test_a_copy_of_the_training_rater_is_not_certified() -> None:
    # the model learns rater 1's scores (y = rater 1): a machine that reproduces rater 1 exactly agrees with
    # rater 2 exactly as well as rater 1 does; under the old comparison (machine vs y) it was perfect
    w = world(600, 11, machine_sd=0.8, rater_sd=0.8)
    w["machine"] = w["r1"].astype(int)
    ch = _choose(w, "ltt", 11, n_boot=300)
    assert not ch.policy.enabled
    iv = agreement_intervals(w["machine"], w["y"], (w["r1"], w["r2"]), n_boot=200)
    assert iv["qwk_difference"][0] == 0.0 and iv["exact_difference"][0] == 0.0


def test_on_a_sum_scale_raters_are_doubled_onto_the_machines_scale() -> None:
    from scoring.policy_check import check_criterion

    rng = np.random.default_rng(3)
    latent = rng.uniform(0.6, 6.4, 400)
    r1, r2 = (np.clip(np.round(latent + rng.normal(0, 0.6, 400)), 1, 6) for _ in range(2))
    m = 2 * r1  # the machine gives the score of record's scale (2-12) and is as good as one rater
    ok = check_criterion("c", m, r1, r2, statistic="qwk", rater_multiplier=2, n_boot=300)
    assert ok.difference[0] == pytest.approx(0.0, abs=1e-9) and ok.status == "pass"
    wrong = check_criterion("c", m, r1, r2, statistic="qwk", n_boot=300)  # one scale against the other
    assert wrong.status == "fail"
