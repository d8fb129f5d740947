"""The policy optimiser: thresholds honour a bootstrap LOWER bound on agreement, never a point estimate."""

from __future__ import annotations

import numpy as np
import pytest
from routing_fakes import FakeEncoder, OverconfidentScorer, synthetic
from sklearn.metrics import cohen_kappa_score

from models.calibration import CalibratedScorer
from scoring.errors import CalibrationDataError
from scoring.optimise import choose_thresholds_best as choose_thresholds
from scoring.optimise import qwk_values
from scoring.routing import confidence_of

LEVELS = [0, 1, 2, 3, 4]


def _cal(n: int = 600, seed: int = 21, rater_sd: float = 0.45):  # type: ignore[no-untyped-def]
    d = synthetic(n, seed=seed, rater_sd=rater_sd)
    P_raw = OverconfidentScorer().predict_proba(d["texts"], embeddings=FakeEncoder().encode(d["texts"]))
    cs = CalibratedScorer(OverconfidentScorer()).fit_calibration(P_raw, d["y"])
    P = cs.cal_proba_
    return d, P, cs.decide(P), cs.prediction_set(P, 0.9)


def test_qwk_closed_form_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 7, 200)
        b = np.clip(a + rng.integers(-2, 3, 200), 0, 6)
        ref = cohen_kappa_score(a, b, weights="quadratic", labels=list(range(int(min(a.min(), b.min())), 7)))
        assert qwk_values(a, b) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("bar", ["number", "pair"])
def test_optimiser_respects_the_qwk_lower_bound(bar: str) -> None:
    # paired, the machine is judged against rater 2 (as rater 1 is), not the less noisy resolved score: raters
    # noisier than the default make its confident items clear that bar
    d, P, scores, sets = _cal() if bar == "number" else _cal(rater_sd=0.7)
    kw = {"human_qwk": 0.90} if bar == "number" else {"human_pair": (d["r1"], d["r2"])}
    ch = choose_thresholds(P, d["y"], scores, LEVELS, sets, n_boot=300, **kw)
    cp = ch.policy
    assert cp.enabled and 0 < cp.evidence["auto_fraction_cal"] <= 1
    # recompute the chosen subset and an independent bootstrap bound on it
    conf = confidence_of(P, LEVELS, scores, cp)
    auto = conf >= cp.min_confidence
    if cp.max_set_size is not None:
        auto &= sets.sum(axis=1) <= cp.max_set_size
    assert auto.mean() == pytest.approx(cp.evidence["auto_fraction_cal"], abs=1e-3)
    rng = np.random.default_rng(99)
    idx = rng.integers(0, auto.sum(), size=(2000, auto.sum()))
    km = qwk_values(scores[auto], d["y"][auto], idx)
    if bar == "number":
        assert cp.evidence["auto_fraction_cal"] < 1, "the bar is above the all-items QWK (0.886): it must bind"
        assert np.quantile(km, 0.05) >= 0.90 - 0.01  # a fresh bootstrap agrees up to resampling noise
        assert cp.evidence["qwk_auto_lcb"] >= 0.90
        # the point estimate alone would have allowed more: the bound is what binds
        looser = [r for r in ch.table if r["qwk"] >= 0.90 and not r["feasible"]]
        assert looser, "some rules pass on the point estimate but fail on the lower bound"
    else:
        km = qwk_values(scores[auto], d["r2"][auto], idx)  # machine vs rater 2
        kh = qwk_values(d["r1"][auto], d["r2"][auto], idx)
        assert np.quantile(km - kh, 0.05) >= -0.01
        assert cp.evidence["margin_lcb"] >= 0


def test_every_feasible_rule_in_the_table_meets_the_bar_and_the_choice_is_the_largest() -> None:
    d, P, scores, sets = _cal()
    ch = choose_thresholds(P, d["y"], scores, LEVELS, sets, human_qwk=0.8, n_boot=200)
    feas = [r for r in ch.table if r["feasible"]]
    assert all(r["qwk_lcb"] >= 0.8 for r in feas)
    assert ch.policy.evidence["auto_fraction_cal"] == max(r["auto_fraction"] for r in feas)


def test_unreachable_bar_disables_automation_and_reports_the_closest_candidate() -> None:
    d, P, scores, sets = _cal()
    ch = choose_thresholds(P, d["y"], scores, LEVELS, sets, human_qwk=0.999, n_boot=100)
    assert not ch.policy.enabled and "no rule" in ch.policy.evidence["why"]
    closest = ch.policy.evidence["closest_rule"]
    assert closest == max(ch.table, key=lambda r: r["qwk_lcb"])  # the target is the same for every candidate
    assert closest["qwk_lcb"] < 0.999 and not closest["feasible"]
    line = ch.policy.describe()
    assert line.startswith("disabled: no rule") and f"QWK LCB {closest['qwk_lcb']:.3f} vs 0.999" in line


def test_paired_bar_reports_the_closest_margin() -> None:
    d, P, scores, sets = _cal()
    r2 = d["y"].astype(float)  # a second rater identical to the score of record: the margin is never >= 0
    ch = choose_thresholds(P, d["y"], scores, LEVELS, sets, human_pair=(d["y"].astype(float), r2), n_boot=100)
    closest = ch.policy.evidence["closest_rule"]
    assert not ch.policy.enabled and closest["margin_lcb"] == max(r["margin_lcb"] for r in ch.table) < 0
    assert f"margin LCB {closest['margin_lcb']:+.3f}" in ch.policy.describe()


def test_optimiser_needs_a_bar_and_enough_items() -> None:
    d, P, scores, sets = _cal()
    with pytest.raises(CalibrationDataError, match="second rater.*or a figure"):
        choose_thresholds(P, d["y"], scores, LEVELS, sets)
    with pytest.raises(CalibrationDataError, match="at least 30"):
        choose_thresholds(P[:10], d["y"][:10], scores[:10], LEVELS, sets[:10], human_qwk=0.7)


def test_calibrate_model_makes_a_new_version_the_policy_is_bound_to(calibrated, fake_model) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    assert model.version != fake_model.version and model.card["base_model_version"] == fake_model.version
    assert policy.model_version == model.version and policy.rubric_id == model.rubric.id
    policy.check_model(model.version, model.rubric.id)
    for cid, cp in policy.criteria.items():
        assert cp.evidence["calibration"]["method"] in ("temperature", "isotonic", "none")
        assert abs(cp.evidence["coverage_cal_cv"] - 0.9) < 0.05
        assert isinstance(model.scorers[cid], CalibratedScorer)


def test_criterion_bar_uses_the_raters_over_all_items_and_is_recorded(fake_model) -> None:  # type: ignore[no-untyped-def]
    from scoring.optimise import CriterionCalibrationData, calibrate_model

    d = synthetic(600, seed=3)
    emb = FakeEncoder().encode(d["texts"])
    cid = fake_model.rubric.criteria[0].id
    data = {cid: CriterionCalibrationData(proba_raw=fake_model.scorers[cid].predict_proba(d["texts"], embeddings=emb),
                                          y=d["y"], ids=d["ids"], first=d["r1"], second=d["r2"])}
    same = calibrate_model(fake_model, data, n_boot=150, bar="same-items").policy.criteria[cid].evidence
    crit = calibrate_model(fake_model, data, n_boot=150, bar="criterion").policy.criteria[cid].evidence
    assert same["bar_kind"] == "same-items" and "paired" in same["bar"]
    assert crit["bar_kind"] == "criterion"
    both = ~(np.isnan(d["r1"]) | np.isnan(d["r2"]))
    overall = round(float(qwk_values(d["r1"][both], d["r2"][both])), 4)
    assert f"human_qwk {overall}" in crit["bar"], "the figure is the raters' QWK over every calibration item"
    assert crit["qwk_auto_lcb"] >= overall
    with pytest.raises(CalibrationDataError, match="bar must be one of"):
        calibrate_model(fake_model, data, bar="vibes")
