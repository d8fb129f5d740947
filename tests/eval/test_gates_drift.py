"""Gate policy and drift monitor: a scorer that starts adding 1 to every score must trip the gate, suspend
automation of that criterion, and promotion of a new model must lift it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from eval.drift import check_drift, simulate_offset_drift
from eval.gates import evaluate_gates, load_policy
from rubrics.schema import parse_rubric
from scoring.store import HumanScoreIn, Store


def test_bundled_policy_carries_the_ets_thresholds() -> None:
    p = load_policy()
    assert (p.min_qwk, p.max_qwk_degradation, p.max_abs_smd, p.max_abs_dsm) == (0.70, 0.10, 0.15, 0.10)
    assert p.key == "ets-2012@1" and p.min_n > 0


@pytest.mark.parametrize(
    ("metrics", "hh", "subgroups", "status", "failing"),
    [
        ({"n": 200, "qwk": 0.80, "smd": 0.05}, 0.85, {}, "pass", []),
        ({"n": 200, "qwk": 0.65, "smd": 0.05}, None, {}, "fail", ["qwk"]),
        ({"n": 200, "qwk": 0.74, "smd": 0.05}, 0.86, {}, "fail", ["qwk_degradation"]),
        ({"n": 200, "qwk": 0.80, "smd": -0.20}, None, {}, "fail", ["smd"]),
        ({"n": 200, "qwk": 0.80, "smd": 0.0}, None, {"a": (0.12, 40), "b": (0.5, 5)}, "fail", ["dsm[a]"]),
        ({"n": 10, "qwk": 0.10, "smd": 2.0}, None, {}, "insufficient", []),
    ],
)
def test_gate_outcomes(metrics, hh, subgroups, status, failing) -> None:  # type: ignore[no-untyped-def]
    res = evaluate_gates(metrics, load_policy(), human_human_qwk=hh, subgroups=subgroups)
    assert res.status == status
    assert [c.name for c in res.failures] == failing


def test_simulated_plus_one_drift_trips_the_gate_within_one_window(tmp_path) -> None:  # type: ignore[no-untyped-def]
    policy = load_policy()
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    sim = simulate_offset_drift(store, offset=1, policy=policy, seed=13)
    assert sim.qwk_before >= policy.min_qwk and abs(sim.smd_before) <= policy.max_abs_smd  # healthy first
    assert sim.items_to_trip is not None and sim.items_to_trip <= policy.drift_window
    print(f"\n+1 drift tripped after {sim.items_to_trip} audit items (window {sim.window}): {sim.failing_checks}")
    assert store.is_suspended("drift-sim", "holistic")
    susp = store.suspensions(active_only=True)[0]
    assert "drift gate failed" in susp.reason and susp.details["policy"] == policy.key
    assert "automation_suspended" in [e.event for e in store.audit_entries()]
    # the healthy scorer with no offset must not trip, with the same seed and item budget
    quiet = simulate_offset_drift(offset=0, policy=policy, seed=13, max_drift_items=sim.window)
    assert quiet.items_to_trip is None
    # a new model promoted for the rubric lifts the suspension; its audit sample starts empty
    store.register_model("sim-recalibrated", "/models/new", rubric_id="drift-sim")
    store.promote_model("sim-recalibrated")
    assert not store.is_suspended("drift-sim", "holistic")
    res = check_drift(store, "drift-sim", policy=policy)[0]
    assert res.gate.status == "insufficient" and not res.suspended_now
    assert store.verify_audit().ok
    store.close()


def test_drift_check_uses_human_human_reference_and_only_blind_audits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Non-blind audit scores (the assessor saw the machine score) never enter the drift sample."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.register_rubric(parse_rubric({"id": "r", "version": 1, "title": "t", "evidence": ["text"],
                                        "criteria": [{"id": "c", "title": "C", "scale": {"min": 0, "max": 4}}]}))
    rng = np.random.default_rng(3)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    policy = replace(load_policy(), drift_min_n=20)
    subs = store.add_submissions("r", 1, [(f"s{i}", {"text": str(i)}, {}) for i in range(60)])
    scores = []
    for i, s in enumerate(subs):
        truth = int(rng.integers(0, 5))
        store.record_machine_score(s.id, "c", min(truth + 1, 4), created_at=t0 + timedelta(minutes=i))
        scores.append(HumanScoreIn(s.id, "c", truth, "a", "audit", blind=False, created_at=t0 + timedelta(minutes=i)))
    store.record_human_scores(scores)
    res = check_drift(store, "r", policy=policy)[0]
    assert res.metrics["n"] == 0 and res.gate.status == "insufficient"
    store.record_human_scores([replace(h, blind=True, assessor="b") for h in scores])  # another person, blind
    res = check_drift(store, "r", policy=policy)[0]
    assert res.metrics["n"] == 60 and res.gate.status == "fail" and res.suspended_now
    store.close()
