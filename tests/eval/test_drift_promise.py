"""The drift monitor re-checks the routing promise on double-scored items the rule accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from eval.drift import accepted_double_scored, check_drift
from eval.gates import load_policy
from rubrics.schema import parse_rubric
from scoring.policy import CriterionPolicy, RoutingPolicy, save_policy
from scoring.policy_check import policy_bar
from scoring.store import HumanScoreIn, Store


def _store(tmp_path: Path, machine_shift: int, n: int = 120, model_path: str = "/dev/null") -> Store:
    store = Store(f"sqlite:///{tmp_path / 'drift.db'}")
    store.register_rubric(parse_rubric({"id": "r", "version": 1, "title": "t", "evidence": ["text"],
                                        "criteria": [{"id": "holistic", "title": "H", "scale": {"min": 0, "max": 4}}]}))
    store.register_model("m-1", model_path, rubric_id="r")
    store.promote_model("m-1")
    rng = np.random.default_rng(0)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        truth = int(rng.integers(0, 5))
        sub = store.add_submission("r", 1, f"s{i}", {"text": f"item {i}"})
        store.record_machine_score(sub.id, "holistic", int(np.clip(truth + machine_shift, 0, 4)), model_version="m-1",
                                   route="double", reason="random double-scoring sample (5%); machine rule: auto (x)",
                                   created_at=t0 + timedelta(minutes=i))
        noisy = [int(np.clip(truth + rng.choice([-1, 0, 0, 0, 1]), 0, 4)) for _ in range(2)]
        store.record_human_scores([
            HumanScoreIn(sub.id, "holistic", noisy[0], "ann", "first", True, created_at=t0 + timedelta(minutes=i, seconds=10)),
            HumanScoreIn(sub.id, "holistic", noisy[1], "bob", "second", True, created_at=t0 + timedelta(minutes=i, seconds=20)),
        ])
    return store


def test_accepted_items_at_human_level_pass_and_nothing_is_suspended(tmp_path: Path) -> None:
    store = _store(tmp_path, machine_shift=0)
    try:
        m, a, b = accepted_double_scored(store, "r", "holistic", window=100)
        assert len(m) == len(a) == len(b) == 100
        res = check_drift(store, "r", policy=load_policy())[0]
        assert res.extra["policy_check"]["status"] == "pass" and not res.suspended_now
    finally:
        store.close()


def test_accepted_items_below_the_human_bar_suspend_automation(tmp_path: Path) -> None:
    store = _store(tmp_path, machine_shift=2)
    try:
        res = check_drift(store, "r", policy=load_policy())[0]
        pc = res.extra["policy_check"]
        assert pc["status"] == "fail" and pc["difference"][2] < 0
        assert res.suspended_now and store.is_suspended("r", "holistic")
    finally:
        store.close()


def _routing_policy(statistic: str | None, multiplier: int | None = None) -> RoutingPolicy:
    ev: dict = {"guarantee": {"delta": 0.05, "statistic": statistic}} if statistic else {}
    if multiplier is not None:
        ev["rater_multiplier"] = multiplier
    return RoutingPolicy(policy_version="p-1", model_version="m-1",
                         criteria={"holistic": CriterionPolicy(min_confidence=0.5, evidence=ev)})


def test_policy_bar_reads_what_the_policy_recorded_else_the_scale_default() -> None:
    assert policy_bar(_routing_policy("exact").criteria["holistic"], 5) == ("exact", 1)
    assert policy_bar(_routing_policy("qwk", 2).criteria["holistic"], 3) == ("qwk", 2)
    assert policy_bar(_routing_policy(None).criteria["holistic"], 5) == ("qwk", 1)
    assert policy_bar(_routing_policy(None).criteria["holistic"], 2) == ("exact", 1)
    assert policy_bar(None, 3) == ("exact", 1)


def test_the_promise_check_uses_the_statistic_the_routing_policy_recorded(tmp_path: Path) -> None:
    # a 0-4 scale defaults to QWK; a policy chosen on exact agreement is checked on exact agreement, as
    # `scoring policy check` does
    store = _store(tmp_path, machine_shift=0)
    try:
        default = check_drift(store, "r", policy=load_policy(), act=False)[0].extra["policy_check"]
        recorded = check_drift(store, "r", policy=load_policy(), act=False,
                               routing_policy=_routing_policy("exact"))[0].extra["policy_check"]
    finally:
        store.close()
    assert default["statistic"] == "qwk" and recorded["statistic"] == "exact"
    assert recorded["difference"] == recorded["exact_difference"]


def test_the_routing_policy_kept_beside_the_promoted_model_is_found(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    save_policy(_routing_policy("exact"), model_dir / "policy.yaml")
    store = _store(tmp_path, machine_shift=0, model_path=str(model_dir))
    try:
        pc = check_drift(store, "r", policy=load_policy(), act=False)[0].extra["policy_check"]
    finally:
        store.close()
    assert pc["statistic"] == "exact"


def test_a_broken_routing_policy_beside_the_model_is_an_error_not_a_silent_default(tmp_path: Path) -> None:
    # judging a sum-scale criterion with the scale's default bar would suspend automation on a spurious fail
    import pytest

    from scoring.errors import ScoringError

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "policy.yaml").write_text("criteria: [this is not a policy\n")
    store = _store(tmp_path, machine_shift=0, model_path=str(model_dir))
    try:
        with pytest.raises(ScoringError, match="cannot be read"):
            check_drift(store, "r", policy=load_policy(), act=False)
        assert not store.is_suspended("r", "holistic")
    finally:
        store.close()
