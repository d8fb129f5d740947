"""Calibration and conformal sets as specifications, on synthetic data with a known over-confident scorer."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from routing_fakes import LEVELS, FakeEncoder, OverconfidentScorer, synthetic

from models.calibration import (
    CalibratedScorer,
    CalibrationError,
    ConformalSets,
    ProbabilityCalibrator,
    level_index,
    log_loss,
    top_label_ece,
)


def _proba(d: dict) -> np.ndarray:
    return OverconfidentScorer().predict_proba(d["texts"], embeddings=FakeEncoder().encode(d["texts"]))


def test_calibration_lowers_ece_and_log_loss_on_held_out_items() -> None:
    cal, test = synthetic(800, seed=2), synthetic(3000, seed=3)
    cs = CalibratedScorer(OverconfidentScorer(), method="auto").fit_calibration(_proba(cal), cal["y"])
    P, yi = _proba(test), level_index(test["y"], np.asarray(LEVELS))
    Q = cs.calibrate(P)
    assert top_label_ece(P, yi) > 0.05, "the fixture must be miscalibrated for this test to mean anything"
    assert top_label_ece(Q, yi) < 0.5 * top_label_ece(P, yi)
    assert log_loss(Q, yi) < log_loss(P, yi)
    assert cs.report_["method"] in ("temperature", "isotonic")
    assert set(cs.report_["cv_scores"]) == {"temperature", "isotonic", "none"}


def test_temperature_above_one_for_an_overconfident_scorer() -> None:
    d = synthetic(800, seed=4)
    cal = ProbabilityCalibrator("temperature").fit(_proba(d), level_index(d["y"], np.asarray(LEVELS)))
    assert cal.temperature_ > 1.0


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_marginal_conformal_coverage_holds_on_exchangeable_data(coverage: float) -> None:
    """Split conformal: average coverage over repetitions within a small band above the nominal level."""
    covs = []
    for rep in range(20):
        cal, test = synthetic(300, seed=100 + rep), synthetic(1000, seed=200 + rep)
        cs = ConformalSets().fit(_proba(cal), level_index(cal["y"], np.asarray(LEVELS)))
        S = cs.predict_set(_proba(test), coverage)
        covs.append(S[np.arange(1000), level_index(test["y"], np.asarray(LEVELS))].mean())
    assert coverage - 0.015 <= np.mean(covs) <= coverage + 0.03


def test_label_conditional_sets_cover_every_level() -> None:
    cal, test = synthetic(1500, seed=5), synthetic(4000, seed=6)
    yc, yt = level_index(cal["y"], np.asarray(LEVELS)), level_index(test["y"], np.asarray(LEVELS))
    cs = ConformalSets("label").fit(_proba(cal), yc)
    assert cs.mondrian_ == "label"
    S = cs.predict_set(_proba(test), 0.9)
    per_level = [S[yt == k, k].mean() for k in range(len(LEVELS))]
    assert min(per_level) >= 0.85, per_level


def test_label_conditional_falls_back_to_marginal_when_a_level_is_rare() -> None:
    d = synthetic(60, seed=7)
    cs = ConformalSets("label", min_per_level=50).fit(_proba(d), level_index(d["y"], np.asarray(LEVELS)))
    assert cs.mondrian_ == "none"


def test_calibrated_scorer_keeps_the_contract_and_pickles_without_encoder() -> None:
    d = synthetic(300, seed=8)
    enc = FakeEncoder()
    cs = CalibratedScorer(OverconfidentScorer(encoder=enc)).fit_calibration(_proba(d), d["y"])
    P = cs.predict_proba(d["texts"][:5])
    assert P.shape == (5, len(LEVELS)) and np.allclose(P.sum(axis=1), 1)
    assert list(cs.classes_) == LEVELS
    assert set(cs.decide(P)) <= set(LEVELS)
    clone = pickle.loads(pickle.dumps(cs))
    clone.encoder = enc  # what models.artifact.load_model does after unpickling
    assert clone.base.encoder is enc
    assert np.allclose(clone.predict_proba(d["texts"][:5]), P)


def test_calibration_errors_say_what_was_expected() -> None:
    d = synthetic(100, seed=9)
    with pytest.raises(CalibrationError, match=r"scores \[7\] are not levels"):
        CalibratedScorer(OverconfidentScorer()).fit_calibration(_proba(d), np.r_[d["y"][:-1], 7])
    with pytest.raises(CalibrationError, match="at least 20"):
        CalibratedScorer(OverconfidentScorer()).fit_calibration(_proba(d)[:5], d["y"][:5])
    with pytest.raises(CalibrationError, match="coverage"):
        ConformalSets().fit(_proba(d), level_index(d["y"], np.asarray(LEVELS))).predict_set(_proba(d), 1.5)
