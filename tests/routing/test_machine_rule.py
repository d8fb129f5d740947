"""The rule's own verdict (``machine_rule``) is a field of every route decision and of the routed output,
and every reader of "accepted items" reads it; files written before it existed are read by the reason text."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from routing_fakes import synthetic, write_jsonl

from scoring.batch import JobStateError, run_batch
from scoring.ingest import ColumnMap, read_records
from scoring.policy import CriterionPolicy, RoutingPolicy
from scoring.policy_check import read_routed
from scoring.routing import ROUTE_COLS, _routed_rows, accepted_by_rule, decide_routes, routing_hook

LEVELS = [0, 1, 2, 3, 4]


def _block(n: int = 2000, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(5, 0.3), size=n)
    return [f"id-{i}" for i in range(n)], P, np.asarray(LEVELS)[P.argmax(axis=1)], P >= 0.2


def test_machine_rule_is_the_rules_verdict_before_the_random_samples() -> None:
    ids, P, scores, sets = _block()
    crit = CriterionPolicy(min_confidence=0.6, max_set_size=2)
    plain = decide_routes(ids, "q", P, scores, LEVELS, sets, RoutingPolicy(policy_version="p", criteria={"q": crit},
                                                                             audit_rate=0.0, double_rate=0.0))
    sampled = decide_routes(ids, "q", P, scores, LEVELS, sets, RoutingPolicy(policy_version="p", criteria={"q": crit},
                                                                               audit_rate=0.3, double_rate=0.2))
    assert [d.machine_rule for d in plain] == [d.route for d in plain], "without samples: the route itself"
    assert [d.machine_rule for d in sampled] == [d.route for d in plain], "the samples do not change the verdict"
    routes = {d.route for d in sampled}
    assert {"auto", "audit", "human", "double"} <= routes
    doubles = [d for d in sampled if d.route == "double"]
    assert {d.machine_rule for d in doubles} == {"auto", "human"}
    assert all(d.to_extra()["machine_rule"] == d.machine_rule for d in sampled)
    # the structured field says what the reason text says, so old files read the same
    assert all(("machine rule: auto" in d.reason) == (d.machine_rule == "auto") for d in doubles)


@pytest.mark.parametrize(("route", "machine_rule", "reason", "accepted"), [
    ("auto", "auto", "", True),
    ("audit", "auto", "", True),
    ("human", "human", "", False),
    ("human", "auto", "credential decision: ...; machine rule: auto (...)", False),  # a person decides it
    ("double", "auto", "", True),  # the field, not the text
    ("double", "human", "a reason that happens to say machine rule: auto", False),  # the field wins
    ("double", None, "random double-scoring sample (5%); machine rule: auto (confident)", True),  # an old file
    ("double", None, "random double-scoring sample (5%); machine rule: human (low)", False),
    (None, None, None, False),
])
def test_accepted_by_rule(route: str | None, machine_rule: str | None, reason: str | None, accepted: bool) -> None:
    assert accepted_by_rule(route, machine_rule, reason) is accepted


def test_policy_check_reads_the_field_and_still_reads_files_without_it(tmp_path: Path) -> None:
    rows = [  # (id, route, machine_rule or absent, reason)
        ("a", "double", "auto", "sample"),
        ("b", "double", "human", "sample; machine rule: auto"),
        ("c", "double", None, "random double-scoring sample (5%); machine rule: auto (confident)"),
        ("d", "double", None, "random double-scoring sample (5%); machine rule: human (low)"),
        ("e", "auto", "auto", "confident"),
        ("f", "human", "human", "low"),
    ]
    path = tmp_path / "routed.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for sid, route, rule, reason in rows:
            res = {"score": 2, "probabilities": {str(k): 0.2 for k in LEVELS}, "route": route, "reason": reason}
            if rule is not None:
                res["machine_rule"] = rule
            fh.write(json.dumps({"id": sid, "model_version": "m", "criteria": {"q": res}}) + "\n")
    routed, _versions, _levels = read_routed(path)
    assert {sid for sid, (_s, acc) in routed["q"].items() if acc} == {"a", "c", "e"}


def _run(model, policy, inp: Path, out: Path, cols: list[str]):  # type: ignore[no-untyped-def]
    recs = read_records(inp, model.rubric, ColumnMap(id="id", text={"essay": "essay"}))
    return run_batch(model, recs, inp, out, block_size=64, progress=False, hooks=[routing_hook(model, policy)],
                     extra_csv_cols=cols, job_tag=f"policy={policy.policy_version}")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_the_routed_output_carries_machine_rule(calibrated, tmp_path: Path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    policy = policy.model_copy(update={"double_rate": 0.3, "audit_rate": 0.1})
    d = synthetic(200, seed=5)
    inp = write_jsonl(tmp_path / "in.jsonl", d["ids"], d["texts"])
    out = tmp_path / f"out{suffix}"
    _run(model, policy, inp, out, list(ROUTE_COLS))
    if suffix == ".csv":
        with out.open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh))
        assert {f"{c.id}.machine_rule" for c in model.rubric.criteria} <= set(header)
    got = list(_routed_rows(out))
    assert got and all(res["machine_rule"] in ("auto", "human") for _sid, _mv, _c, res in got)
    assert all(res["machine_rule"] == "auto" for *_x, res in got if res["route"] in ("auto", "audit"))
    doubles = [res for *_x, res in got if res["route"] == "double"]
    assert {r["machine_rule"] for r in doubles} == {"auto", "human"}, "both verdicts occur among double samples"
    assert all(("machine rule: auto" in r["reason"]) == (r["machine_rule"] == "auto") for r in doubles)


def test_a_csv_output_started_with_other_columns_is_not_resumed(calibrated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    d = synthetic(200, seed=6)
    inp = write_jsonl(tmp_path / "in.jsonl", d["ids"], d["texts"])
    out = tmp_path / "out.csv"
    old_cols = [c for c in ROUTE_COLS if c != "machine_rule"]  # an output begun before the field existed

    def crash(items, records):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt("killed")

    recs = read_records(inp, model.rubric, ColumnMap(id="id", text={"essay": "essay"}))
    first = iter(range(10**6))

    def crash_after_one(items, records):  # type: ignore[no-untyped-def]
        if next(first) >= 1:
            crash(items, records)

    with pytest.raises(KeyboardInterrupt):
        run_batch(model, recs, inp, out, block_size=64, progress=False,
                  hooks=[routing_hook(model, policy), crash_after_one], extra_csv_cols=old_cols,
                  job_tag=f"policy={policy.policy_version}")
    with pytest.raises(JobStateError, match="machine_rule"):
        _run(model, policy, inp, out, list(ROUTE_COLS))
    summary = _run(model, policy, inp, out, old_cols)  # the same columns resume as before
    assert summary.resumed_from > 0
