"""Routing decisions, the policy file, adjudication and the batch hook, as specifications."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from routing_fakes import synthetic, write_jsonl

from scoring.batch import run_batch
from scoring.errors import PolicyError
from scoring.ingest import ColumnMap, read_records
from scoring.policy import CriterionPolicy, RoutingPolicy, load_policy, save_policy
from scoring.routing import decide_routes, needs_adjudication, routing_hook, uniform_draw, write_queue

LEVELS = [0, 1, 2, 3, 4]


def _policy(**kw) -> RoutingPolicy:  # type: ignore[no-untyped-def]
    crit = CriterionPolicy(min_confidence=0.6, max_set_size=2)
    base = {"policy_version": "p-test", "criteria": {"quality": crit, "style": crit}, "audit_rate": 0.0, "double_rate": 0.0}
    return RoutingPolicy(**{**base, **kw})


def _block(n: int = 400, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(5, 0.3), size=n)
    scores = np.asarray(LEVELS)[P.argmax(axis=1)]
    sets = P >= 0.2
    return [f"id-{i}" for i in range(n)], P, scores, sets


def test_each_rule_routes_as_documented() -> None:
    ids = ["a", "b", "c"]
    P = np.array([[0.9, 0.1, 0, 0, 0], [0.5, 0.5, 0, 0, 0], [0.7, 0.1, 0.1, 0.1, 0.0]])
    scores = np.array([0, 0, 0])
    sets = np.array([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]], bool)
    d = decide_routes(ids, "quality", P, scores, LEVELS, sets, _policy())
    assert [x.route for x in d] == ["auto", "human", "human"]
    assert [x.rule for x in d] == ["confident", "low_confidence", "set_too_wide"]
    assert d[0].prediction_set == [0] and d[2].prediction_set == [0, 1, 2, 3]
    assert "0.500 < 0.600" in d[1].reason and "set size 4 > 2" in d[2].reason
    assert d[0].confidence == pytest.approx(0.9)


def test_within_tolerance_confidence_counts_neighbouring_levels() -> None:
    pol = _policy(criteria={"quality": CriterionPolicy(confidence="within", tolerance=1, min_confidence=0.95)})
    P = np.array([[0.0, 0.5, 0.46, 0.04, 0.0]])
    d = decide_routes(["a"], "quality", P, np.array([1]), LEVELS, None, pol)
    assert d[0].route == "auto" and d[0].confidence == pytest.approx(0.96)


def test_criterion_without_thresholds_goes_to_humans() -> None:
    ids, P, scores, sets = _block(50)
    d = decide_routes(ids, "unknown", P, scores, LEVELS, sets, _policy())
    assert {x.route for x in d} == {"human"} and {x.rule for x in d} == {"no_threshold"}
    default = load_policy()  # the bundled default: nothing is auto-accepted
    assert {x.route for x in decide_routes(ids, "quality", P, scores, LEVELS, sets, default)} <= {"human", "double"}


def test_audit_and_double_shares_are_honoured_and_reproducible() -> None:
    ids, P, scores, sets = _block(4000)
    pol = _policy(audit_rate=0.1, double_rate=0.05, criteria={"quality": CriterionPolicy(min_confidence=0.0)})
    d1 = decide_routes(ids, "quality", P, scores, LEVELS, sets, pol)
    d2 = decide_routes(ids, "quality", P, scores, LEVELS, sets, pol)
    routes = np.array([x.route for x in d1])
    assert routes.tolist() == [x.route for x in d2]
    assert abs((routes == "double").mean() - 0.05) < 0.015
    accepted = np.isin(routes, ["auto", "audit"])
    assert abs((routes[accepted] == "audit").mean() - 0.10) < 0.02
    other = decide_routes(ids, "quality", P, scores, LEVELS, sets, pol.model_copy(update={"policy_version": "p-2"}))
    assert [x.route for x in other] != routes.tolist(), "draws are seeded by the policy version"
    assert 0.0 <= uniform_draw("p", "audit", "x", "c") < 1.0


def test_needs_adjudication_uses_the_gap_and_per_criterion_override() -> None:
    pol = _policy(adjudication_gap=1, criteria={"style": CriterionPolicy(adjudication_gap=3)})
    assert not needs_adjudication([2, 3], pol)
    assert needs_adjudication([1, 3], pol)
    assert needs_adjudication([1, 2, 4], pol, "quality")
    assert not needs_adjudication([1, 4], pol, "style")
    assert not needs_adjudication([1, None], pol)
    assert not needs_adjudication([], pol)


def test_policy_file_round_trip_and_errors(tmp_path: Path) -> None:
    pol = _policy(model_version="m1")
    back = load_policy(save_policy(pol, tmp_path / "p.yaml"))
    assert back == pol
    (tmp_path / "bad.yaml").write_text("policy_version: x\ncoverage: 1.5\n")
    with pytest.raises(PolicyError, match=r"coverage.*1\.5"):
        load_policy(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("policy_version: x\naudit_rat: 0.1\n")
    with pytest.raises(PolicyError, match="audit_rat"):
        load_policy(tmp_path / "typo.yaml")
    with pytest.raises(PolicyError, match="tuned for model m1, found model m2"):
        pol.check_model("m2")
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "missing.yaml")


class _Store:
    def __init__(self, suspended: set[tuple[str, str]]):
        self.suspended = suspended

    def is_suspended(self, rubric_id: str, criterion: str) -> bool:
        return (rubric_id, criterion) in self.suspended


def _score(model, texts: list[str], ids: list[str]):  # type: ignore[no-untyped-def]
    from scoring.prescore import prescore

    return prescore(model, ids, [{"essay": t} for t in texts])


def test_suspended_criterion_routes_everything_to_humans(calibrated) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    d = synthetic(300, seed=11)
    items = _score(model, d["texts"], d["ids"])
    routing_hook(model, policy, _Store({(model.rubric.id, "quality")}))(items, [])
    q = [it.criteria["quality"].extra for it in items]
    assert {e["route"] for e in q} == {"human"} and {e["rule"] for e in q} == {"suspended"}
    s = [it.criteria["style"].extra["route"] for it in items]
    assert "auto" in s, "only the suspended criterion is taken off automation"
    items2 = _score(model, d["texts"], d["ids"])
    routing_hook(model, policy, None)(items2, [])
    assert "auto" in {it.criteria["quality"].extra["route"] for it in items2}


def test_hook_refuses_a_policy_tuned_for_another_model(calibrated, fake_model) -> None:  # type: ignore[no-untyped-def]
    _, policy = calibrated
    with pytest.raises(PolicyError, match="tuned for model") as err:
        routing_hook(fake_model, policy)
    assert f"pass --version {policy.model_version} to use the model it was tuned for" in str(err.value)


def _run(model, policy, inp: Path, out: Path, crash_after: int | None = None):  # type: ignore[no-untyped-def]
    hook = routing_hook(model, policy)
    calls = {"n": 0}

    def crashing(items, records):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if crash_after is not None and calls["n"] > crash_after:
            raise KeyboardInterrupt("simulated kill")

    recs = read_records(inp, model.rubric, ColumnMap(id="id", text={"essay": "essay"}))
    return run_batch(model, recs, inp, out, block_size=64, progress=False, hooks=[hook, crashing],
                     extra_csv_cols=["route", "reason", "prediction_set"], job_tag=f"policy={policy.policy_version}")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_resumed_run_routes_identically(calibrated, tmp_path: Path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    d = synthetic(300, seed=12)
    inp = write_jsonl(tmp_path / "in.jsonl", d["ids"], d["texts"])
    whole = tmp_path / f"whole{suffix}"
    _run(model, policy, inp, whole)
    resumed = tmp_path / f"resumed{suffix}"
    with pytest.raises(KeyboardInterrupt):
        _run(model, policy, inp, resumed, crash_after=2)
    summary = _run(model, policy, inp, resumed)
    assert summary.resumed_from > 0
    assert resumed.read_bytes() == whole.read_bytes()
    assert write_queue(resumed).read_bytes() == write_queue(whole, tmp_path / "q2.jsonl").read_bytes()


def test_queue_holds_routed_items_in_priority_order(calibrated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    d = synthetic(300, seed=13)
    inp = write_jsonl(tmp_path / "in.jsonl", d["ids"], d["texts"])
    out = tmp_path / "out.jsonl"
    _run(model, policy, inp, out)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    routed = {(r["id"], c) for r in rows for c, v in r["criteria"].items() if v["route"] != "auto"}
    q = [json.loads(x) for x in write_queue(out).read_text().splitlines()]
    assert {(e["id"], e["criterion"]) for e in q} == routed and routed
    conf = [e["confidence"] for e in q]
    assert conf == sorted(conf), "uncertain first"
    assert [e["priority"] for e in q] == list(range(1, len(q) + 1))
    assert all(e["blind"] == (e["route"] in ("audit", "double")) for e in q)
    oldest = [json.loads(x) for x in write_queue(out, tmp_path / "o.jsonl", order="oldest").read_text().splitlines()]
    pos = [e["input_position"] for e in oldest]
    assert pos == sorted(pos)
    with pytest.raises(PolicyError, match="queue order"):
        write_queue(out, order="newest")


def test_a_score_outside_its_own_conformal_set_is_never_accepted() -> None:
    P = np.array([[0.05, 0.6, 0.35, 0.0, 0.0]])
    sets = np.array([[0, 1, 0, 0, 0]], bool)
    pol = _policy(criteria={"quality": CriterionPolicy(confidence="within", tolerance=1, min_confidence=0.5)})
    d = decide_routes(["a"], "quality", P, np.array([2]), LEVELS, sets, pol)
    assert d[0].route == "human" and d[0].rule == "score_outside_set"
