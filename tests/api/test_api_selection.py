"""POST /selection: the stored, unscored submissions whose human scores teach the model most go to the queue first."""

from __future__ import annotations

import pytest
from api_support import expect_problem, reflection

from scoring.store import queue


def _auto_policy():  # type: ignore[no-untyped-def]
    """Every criterion auto-accepted, nothing audited: submissions are stored with no queue item."""
    routing = pytest.importorskip("scoring.policy")
    crit = {c: {"min_confidence": 0.0} for c in ("questioning", "adjusting", "self_assessment")}
    return routing.RoutingPolicy(policy_version="test-auto", double_rate=0.0, audit_rate=0.0, criteria=crit)


def test_selection_queues_distinct_submissions_ahead_and_a_second_call_adds_new_ones(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=_auto_policy())
    for i in range(24):
        assert api.submit(f"s-{i}", reflection(i)).status_code == 201
    open_before = api.client.get("/queue/stats", headers=api.h("alice")).json()["open"]  # award-bar items, if any
    queued = {s.id for s in api.store.submissions() if queue.items_for_submission(api.store, s.id)}
    r = api.client.post("/selection", headers=api.h("admin"), json={"rubric_id": "checking-for-understanding", "n": 4})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["candidates"] == 24 and "Sener" in first["method"]  # queued ones wait untouched: candidates too
    assert [s["rank"] for s in first["selected"]] == [1, 2, 3, 4]
    new = [s["submission_id"] for s in first["selected"] if s["submission_id"] not in queued]
    assert first["slots_created"] == len(new) and first["slots_moved"] == 4 - len(new)
    assert api.client.get("/queue/stats", headers=api.h("alice")).json()["open"] == open_before + len(new)
    items = [queue.items_for_submission(api.store, s["submission_id"])[0] for s in first["selected"]]
    assert [(i.priority, i.rank) for i in items] == [(15, float(k)) for k in (1, 2, 3, 4)]
    assert all(i.route == "human" for i in items if i.submission_id in new)
    r = api.client.post("/selection", headers=api.h("issuer"), json={"rubric_id": "checking-for-understanding", "n": 4})
    second = r.json()
    assert second["candidates"] == 24 - 4
    assert not {s["submission_id"] for s in first["selected"]} & {s["submission_id"] for s in second["selected"]}


def test_selection_refuses_in_words(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=_auto_policy())
    body = {"rubric_id": "checking-for-understanding", "n": 3}
    p = expect_problem(api.client.post("/selection", headers=api.h("admin"), json=body), 422, "invalid_request")
    assert "no stored submission that nobody has scored or started" in p["detail"]
    expect_problem(api.client.post("/selection", headers=api.h("alice"), json=body), 403, "forbidden")
    expect_problem(api.client.post("/selection", headers=api.h("admin"), json={**body, "n": 0}), 422, "validation_error")


def test_an_issuer_selects_and_queues_only_its_own_submissions(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=_auto_policy())
    for i in range(6):
        assert api.submit(f"a-{i}", reflection(i), who="issuer").status_code == 201
    for i in range(6, 12):
        assert api.submit(f"b-{i}", reflection(i), who="issuer2").status_code == 201
    subs = {s.external_id: s.id for s in api.store.submissions()}
    theirs = {subs[f"a-{i}"] for i in range(6)}
    mine = {subs[f"b-{i}"] for i in range(6, 12)}
    queued = {s for s in theirs | mine if queue.items_for_submission(api.store, s)}
    body = {"rubric_id": "checking-for-understanding", "n": 50}
    r = api.client.post("/selection", headers=api.h("issuer2"), json=body)
    assert r.status_code == 201, r.text
    got = r.json()
    picked = {s["submission_id"] for s in got["selected"]}
    assert picked == mine and got["candidates"] == len(mine)
    assert all(s["external_id"].startswith("b-") for s in got["selected"])
    assert not any(queue.items_for_submission(api.store, s) for s in theirs - queued)  # A's stay unqueued
    p = expect_problem(api.client.post("/selection", headers=api.h("issuer2"), json=body), 422, "invalid_request")
    assert "issuer issuer2" in p["detail"]
    r = api.client.post("/selection", headers=api.h("admin"), json=body)  # an admin selects from everyone's
    assert {s["submission_id"] for s in r.json()["selected"]} == theirs


def test_selection_orders_a_day_one_queue_that_routing_already_filled(api_factory) -> None:  # type: ignore[no-untyped-def]
    """Day one: no policy, so every stored submission already waits in the queue for a person. Selection moves
    its picks to the front, in its order, with the selection's reason; the rest wait behind them, and a
    submission a person has started is never picked."""
    api = api_factory()  # no routing policy: every criterion goes to one person
    for i in range(24):
        assert api.submit(f"d-{i}", reflection(i)).status_code == 201
    started = api.client.post("/queue/claim", headers=api.h("alice")).json()
    r = api.client.post("/selection", headers=api.h("issuer"), json={"rubric_id": "checking-for-understanding", "n": 4})
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["candidates"] == 23 and got["slots_created"] == 0 and got["slots_moved"] == 4
    picked = [s["external_id"] for s in got["selected"]]
    assert started["external_id"] not in picked
    order = []
    for _ in range(4):
        item = api.client.post("/queue/claim", headers=api.h("bob")).json()
        order.append(item["external_id"])
        assert item["reason"].startswith("questioning: human (selected to teach the model")
    assert order == picked
    again = api.client.post("/selection", headers=api.h("issuer"), json={"rubric_id": "checking-for-understanding", "n": 4})
    assert again.json()["candidates"] == 19  # the picks are out of the pool; the others still wait
    assert not set(picked) & {s["external_id"] for s in again.json()["selected"]}
