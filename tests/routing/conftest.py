"""Routing test fixtures; the synthetic stand-ins live in ``routing_fakes``."""

from __future__ import annotations

from typing import Any

import pytest
from routing_fakes import LEVELS, RUBRIC, FakeEncoder, OverconfidentScorer, synthetic, write_jsonl  # noqa: F401

from models.artifact import ScoringModel
from rubrics.schema import parse_rubric


@pytest.fixture(scope="session")
def fake_model() -> ScoringModel:
    enc = FakeEncoder()
    rubric = parse_rubric(RUBRIC)
    scorers = {c.id: OverconfidentScorer(encoder=enc) for c in rubric.criteria}
    return ScoringModel(rubric=rubric, scorers=scorers, encoder=enc, version="synthetic-v1", card={})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def calibrated(fake_model: ScoringModel) -> tuple[ScoringModel, Any]:
    """The fake model calibrated on 600 synthetic items, and its tuned policy.

    The bar is a human-human QWK of 0.90, above the machine's QWK over all items (about 0.87) and below it on
    its confident items, so the policy automates some items and routes the rest to people."""
    from scoring.optimise import CriterionCalibrationData, calibrate_model

    d = synthetic(600, seed=1)
    emb = FakeEncoder().encode(d["texts"])
    data = {
        c.id: CriterionCalibrationData(
            proba_raw=fake_model.scorers[c.id].predict_proba(d["texts"], embeddings=emb),
            y=d["y"], ids=d["ids"], human_qwk=0.90,
        )
        for c in fake_model.rubric.criteria
    }
    res = calibrate_model(fake_model, data, coverage=0.9, n_boot=200)
    return res.model, res.policy
