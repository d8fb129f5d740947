"""The work queue as a specification: leases, blind mode, skips, races, adjudication."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from api_support import audit_policy, double_policy, expect_problem, reflection

from scoring.store import Store, queue


def test_claim_score_submit_records_human_scores_in_the_audit_log(api) -> None:  # type: ignore[no-untyped-def]
    sub = api.submit("q-1", reflection(1)).json()
    r = api.claim("alice", highlights=3)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["submission_id"] == sub["submission_id"] and view["blind"] is False
    assert view["evidence"]["reflection"] == reflection(1)
    assert (view["position"], view["waiting"]) == (1, 1)
    for c in view["criteria"]:  # human route: the machine's reading is shown, with highlights
        assert c["machine"]["score"] == sub["criteria"][c["id"]]["score"]
        assert c["highlights"] and {"start", "end", "kind", "strength"} <= set(c["highlights"][0])
        assert [lv["score"] for lv in c["levels"]] == [0, 1, 2]
    r = api.score_all(view, "alice", level=1)
    assert r.status_code == 201, r.text
    hs = api.store.human_scores(submission_id=sub["submission_id"])
    assert {(h.criterion, h.score, h.assessor, h.kind, h.blind) for h in hs} == {
        (c, 1, "alice", "first", False) for c in ("questioning", "adjusting", "self_assessment")}
    assert all(h.rationale == "alice read it" for h in hs)
    assert api.store.verify_audit().ok
    expect_problem(api.score_all(view, "alice"), 409, "already_scored")
    assert api.claim("alice").status_code == 204, "nothing left"
    stats = api.client.get("/queue/stats", headers=api.h("alice")).json()
    assert (stats["open"], stats["done"], stats["mine_done"]) == (0, 1, 1)


def test_a_claimed_or_read_item_names_the_issuers_submission_id(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=double_policy())  # blind items too: the issuer's id cues no machine score
    api.submit("T-5001", reflection(11))
    a = api.claim("alice").json()
    assert a["external_id"] == "T-5001" and a["blind"] is True
    assert api.client.get(f"/queue/items/{a['id']}", headers=api.h("alice")).json()["external_id"] == "T-5001"


def test_scores_off_the_scale_and_missing_criteria_are_422(api) -> None:  # type: ignore[no-untyped-def]
    api.submit("q-2", reflection(2))
    view = api.claim().json()
    tok = view["lease_token"]
    url = f"/queue/items/{view['id']}/scores"
    all3 = {c["id"]: {"score": 1, "rationale": "r"} for c in view["criteria"]}
    expect_problem(api.client.post(url, headers=api.h("alice"),
                             json={"lease_token": tok, "scores": {**all3, "questioning": {"score": 7}}}),
             422, "score_out_of_scale")
    expect_problem(api.client.post(url, headers=api.h("alice"),
                             json={"lease_token": tok, "scores": {"questioning": {"score": 1}}}), 422, "invalid_request")
    expect_problem(api.client.post(url, headers=api.h("alice"), json={"lease_token": tok, "scores": "x"}),
             422, "validation_error")
    for odd in (True, "1", 1.0):  # a level is a JSON integer: a boolean or a string is a client's mistake
        expect_problem(api.client.post(url, headers=api.h("alice"), json={
            "lease_token": tok, "scores": {**all3, "questioning": {"score": odd}}}), 422, "validation_error")
    assert api.store.human_scores() == [], "a rejected submit records nothing"
    assert api.client.post(url, headers=api.h("alice"), json={"lease_token": tok, "scores": all3}).status_code == 201


def test_an_expired_lease_passes_to_the_next_claimer_and_the_old_holder_gets_409(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(lease_seconds=1)
    api.submit("q-3", reflection(3))
    a = api.claim("alice").json()
    assert api.claim("bob").status_code == 204, "held items are not offered"
    time.sleep(1.2)
    b = api.claim("bob").json()
    assert b["id"] == a["id"] and b["lease_token"] != a["lease_token"]
    expect_problem(api.score_all(a, "alice"), 409, "lease_expired")
    expect_problem(api.client.post(f"/queue/items/{a['id']}/release", headers=api.h("alice"),
                             json={"lease_token": a["lease_token"]}), 409, "lease_expired")
    assert api.score_all(b, "bob").status_code == 201
    assert {h.assessor for h in api.store.human_scores()} == {"bob"}


def test_assessors_see_only_items_they_hold(api) -> None:  # type: ignore[no-untyped-def]
    api.submit("q-4", reflection(4))
    a = api.claim("alice").json()
    expect_problem(api.client.get(f"/queue/items/{a['id']}", headers=api.h("bob")), 403, "forbidden")
    assert api.client.get(f"/queue/items/{a['id']}", headers=api.h("alice")).json()["id"] == a["id"]
    expect_problem(api.client.get("/queue/items/424242", headers=api.h("alice")), 404, "not_found")
    expect_problem(api.client.post(f"/queue/items/{a['id']}/scores", headers=api.h("bob"),
                             json={"lease_token": a["lease_token"], "scores": {}}), 403, "forbidden")


def test_submitting_or_releasing_an_item_never_claimed_is_refused_in_the_words_reading_it_gets(api) -> None:  # type: ignore[no-untyped-def]
    api.submit("q-4b", reflection(4))
    a = api.claim("alice").json()
    url = f"/queue/items/{a['id']}"
    read = expect_problem(api.client.get(url, headers=api.h("bob")), 403, "forbidden")
    assert read["detail"] == f"queue item {a['id']} is not held by 'bob'; assessors see only items they claimed"
    scores = {c["id"]: {"score": 1, "rationale": "bob read it"} for c in a["criteria"]}
    for token in (a["lease_token"], "guess"):  # bob never held it: no lease of his expired, whatever he sends
        sub = expect_problem(api.client.post(f"{url}/scores", headers=api.h("bob"),
                                             json={"lease_token": token, "scores": scores}), 403, "forbidden")
        rel = expect_problem(api.client.post(f"{url}/release", headers=api.h("bob"), json={"lease_token": token}),
                             403, "forbidden")
        assert sub["detail"] == rel["detail"] == read["detail"], "one answer, nothing about who holds it"
    assert api.store.human_scores() == [] and queue.item(api.store, a["id"]).holder == "alice"
    assert api.score_all(a, "alice").status_code == 201  # scored: still not bob's to submit
    expect_problem(api.client.post(f"{url}/scores", headers=api.h("bob"),
                                   json={"lease_token": a["lease_token"], "scores": scores}), 403, "forbidden")
    expect_problem(api.score_all(a, "alice"), 409, "already_scored")  # the holder's own second submit stays 409


def test_release_returns_an_item_and_skip_never_offers_it_again(api) -> None:  # type: ignore[no-untyped-def]
    api.submit("q-5", reflection(5))
    a = api.claim("alice").json()
    r = api.client.post(f"/queue/items/{a['id']}/release", headers=api.h("alice"), json={"lease_token": a["lease_token"]})
    assert r.json() == {"item_id": a["id"], "status": "open"}
    a2 = api.claim("alice").json()
    assert a2["id"] == a["id"]
    api.client.post(f"/queue/items/{a['id']}/release", headers=api.h("alice"),
                    json={"lease_token": a2["lease_token"], "skip": True})
    assert api.claim("alice").status_code == 204
    assert api.claim("bob").json()["id"] == a["id"]


def test_double_routes_are_blind_and_need_two_different_assessors(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=double_policy())
    sub = api.submit("q-6", reflection(6)).json()
    assert {r["route"] for r in sub["criteria"].values()} == {"double"}
    assert sorted(q["kind"] for q in sub["queue"]) == ["first", "second"]
    a = api.claim("alice", highlights=3).json()
    assert a["blind"] is True and a["reason"] is None
    assert all(c["machine"] is None and c["highlights"] is None for c in a["criteria"])
    assert api.claim("alice").status_code == 204, "the other slot of the same submission is not for alice"
    b = api.claim("bob").json()
    assert b["submission_id"] == a["submission_id"] and b["kind"] != a["kind"]
    assert api.score_all(a, "alice", level=0).status_code == 201
    early = expect_problem(api.client.post("/adjudications", headers=api.h("admin"), json={  # one rating: no dispute
        "submission_id": sub["submission_id"], "criterion": "questioning", "score": 2}), 409, "nothing_to_adjudicate")
    assert "await a second rater" in early["detail"] and not api.store.adjudications()
    r = api.score_all(b, "bob", level=2)
    assert r.status_code == 201 and sorted(r.json()["needs_adjudication"]) == sorted(c["id"] for c in b["criteria"])
    # bob never saw alice's scores: the item view carries none
    assert "human_scores" not in b
    pend = api.client.get("/adjudications/pending", headers=api.h("admin")).json()
    assert len(pend) == 3 and pend[0]["human_scores"] == [0, 2]
    r = api.client.post("/adjudications", headers=api.h("admin"),
                        json={"submission_id": sub["submission_id"], "criterion": "questioning", "score": 1,
                              "rationale": "between"})
    assert r.status_code == 201 and len(r.json()["human_score_ids"]) == 2 and r.json()["machine_score_id"]
    assert len(api.client.get("/adjudications/pending", headers=api.h("admin")).json()) == 2
    expect_problem(api.client.post("/adjudications", headers=api.h("admin"),
                             json={"submission_id": sub["submission_id"], "criterion": "adjusting", "score": 9}),
             422, "score_out_of_scale")
    again = expect_problem(api.client.post("/adjudications", headers=api.h("admin"),
                                     json={"submission_id": sub["submission_id"], "criterion": "questioning", "score": 2}),
                     409, "already_adjudicated")
    assert "already resolved to 1 by 'admin'" in again["detail"]
    assert len([a for a in api.store.adjudications() if a.criterion == "questioning"]) == 1
    view = api.client.get(f"/submissions/{sub['submission_id']}", headers=api.h("issuer")).json()
    assert [(a["criterion"], a["score"]) for a in view["adjudications"]] == [("questioning", 1)]  # the level of record
    agr = api.client.get("/agreement", headers=api.h("researcher")).json()
    assert agr["human_human"] and agr["human_human"][0]["n"] == 1
    rows = api.client.get("/exports/scores", headers=api.h("researcher")).json()
    assert rows and all(reflection(6)[:30] not in str(r) for r in rows), "no evidence text in exports"
    assert api.store.verify_audit().ok


def test_a_wrong_lease_token_on_a_blind_item_is_said_before_its_missing_rationale_which_names_no_machine_level(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=double_policy())
    api.submit("q-6b", reflection(6))
    a = api.claim("alice").json()
    assert a["blind"] is True
    url = f"/queue/items/{a['id']}/scores"
    lowest = {c["id"]: {"score": c["levels"][0]["score"], "rationale": ""} for c in a["criteria"]}
    bad = expect_problem(api.client.post(url, headers=api.h("alice"), json={"lease_token": "0" * 32, "scores": lowest}),
                         409, "lease_expired")
    assert "lease_token does not match" in bad["detail"], "the token is what is wrong, not the rationale"
    why = expect_problem(api.client.post(url, headers=api.h("alice"),
                                         json={"lease_token": a["lease_token"], "scores": lowest}), 422, "invalid_request")
    assert "machine" not in why["detail"].replace("no machine level is shown", ""), why["detail"]
    assert why["detail"].startswith("a rationale is required for the lowest level of a criterion (this item is "
                                    "blind: no machine level is shown, so only the lowest level needs one)"), why["detail"]
    top = {c["id"]: {"score": c["levels"][-1]["score"], "rationale": ""} for c in a["criteria"]}
    assert api.client.post(url, headers=api.h("alice"), json={"lease_token": a["lease_token"], "scores": top}
                           ).status_code == 201, "on a blind item any other level needs no rationale"


def test_audit_routes_are_blind(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=audit_policy())
    sub = api.submit("q-7", reflection(7)).json()
    assert {r["route"] for r in sub["criteria"].values()} == {"audit"}
    a = api.claim("alice").json()
    assert a["kind"] == "audit" and a["blind"] is True and all(c["machine"] is None for c in a["criteria"])
    api.score_all(a, "alice")
    assert {h.kind for h in api.store.human_scores()} == {"audit"} and all(h.blind for h in api.store.human_scores())


def _race_claims(store: Store, n_items: int, assessors: list[str], per: int) -> list[tuple[str, int]]:
    sub = store.submissions()[0]
    for i in range(n_items):  # many slots over copies of one submission
        s = store.add_submission(sub.rubric_id, sub.rubric_version, f"race-{i}", {"reflection": f"text {i}"})
        queue.enqueue(store, s.id, {"questioning": "human"})
    got: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(assessors))

    def worker(who: str) -> None:
        start.wait()
        for _ in range(per):
            it = queue.claim(store, who, 600)
            if it is not None:
                with lock:
                    got.append((who, it.id))

    with ThreadPoolExecutor(len(assessors)) as ex:
        list(ex.map(worker, assessors))
    return got


def test_concurrent_claims_never_give_one_item_to_two_assessors_sqlite(api) -> None:  # type: ignore[no-untyped-def]
    api.submit("seed", reflection(8))
    got = _race_claims(api.store, 60, ["a1", "a2", "a3", "a4"], 20)
    ids = [i for _, i in got]
    assert len(ids) == len(set(ids)) == 61, f"{len(ids)} claims, {len(set(ids))} distinct"


def test_concurrent_claims_never_give_one_item_to_two_assessors_postgres(api_factory, pg_url) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(url=pg_url)
    assert api.client.get("/readyz").json()["database"] == "postgresql"
    api.submit("seed", reflection(8))
    got = _race_claims(api.store, 60, ["a1", "a2", "a3", "a4"], 20)
    ids = [i for _, i in got]
    assert len(ids) == len(set(ids)) == 61, f"{len(ids)} claims, {len(set(ids))} distinct"


def test_racing_submits_of_one_item_record_exactly_one_set_of_scores(api) -> None:  # type: ignore[no-untyped-def]
    _race_submits(api)


def test_racing_submits_of_one_item_record_exactly_one_set_of_scores_postgres(api_factory, pg_url) -> None:  # type: ignore[no-untyped-def]
    _race_submits(api_factory(url=pg_url))


def _race_submits(api) -> None:  # type: ignore[no-untyped-def]
    api.submit("q-9", reflection(9))
    view = api.claim("alice").json()
    scores = {c["id"]: (1, "race") for c in view["criteria"]}
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def go() -> None:
        barrier.wait()
        try:
            queue.submit(api.store, view["id"], "alice", view["lease_token"], scores)
            outcomes.append("ok")
        except Exception as exc:  # noqa: BLE001
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["AlreadyScored"] * 5 + ["ok"], outcomes
    assert len(api.store.human_scores()) == 3 and api.store.verify_audit().ok


def test_racing_submits_of_different_items_lose_no_score(api) -> None:  # type: ignore[no-untyped-def]
    for i in range(8):
        api.submit(f"r-{i}", reflection(10 + i))
    held = [queue.claim(api.store, f"as{i}", 600) for i in range(8)]
    barrier = threading.Barrier(8)

    def go(it) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        queue.submit(api.store, it.id, it.holder, it.lease_token, {c: (2, "x") for c in it.criteria})

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(go, held))
    assert len(api.store.human_scores()) == 8 * 3 and api.store.verify_audit().ok


def test_model_registry_lists_and_promotes(api) -> None:  # type: ignore[no-untyped-def]
    ms = api.client.get("/models", headers=api.h("researcher")).json()
    assert len(ms) == 1 and ms[0]["status"] == "candidate"
    r = api.client.post(f"/models/{ms[0]['version']}/promote", headers=api.h("admin"))
    assert r.status_code == 200 and r.json()["status"] == "promoted"
    expect_problem(api.client.post("/models/nope/promote", headers=api.h("admin")), 404, "not_found")
    assert api.submit("after-promote", reflection(20)).json()["model_version"] == ms[0]["version"]


def test_one_assessor_cannot_hold_the_whole_queue(api_factory) -> None:  # type: ignore[no-untyped-def]
    """Claims through the API stop at SCORING_MAX_HELD_ITEMS held under live leases (409 naming them), so one
    client cannot lock every item until the leases expire; submitting or releasing one frees a place."""
    api = api_factory(max_held_items=2)
    for i in range(4):
        assert api.submit(f"held-{i}", reflection(20 + i)).status_code == 201
    got = [api.client.post("/queue/claim", headers=api.h("alice")) for _ in range(2)]
    assert [g.status_code for g in got] == [200, 200]
    p = expect_problem(api.client.post("/queue/claim", headers=api.h("alice")), 409, "too_many_held")
    assert str(got[0].json()["id"]) in p["detail"] and "submit or release one first" in p["detail"]
    assert api.client.post("/queue/claim", headers=api.h("bob")).status_code == 200  # others still can
    first = got[0].json()
    r = api.client.post(f"/queue/items/{first['id']}/release", headers=api.h("alice"),
                        json={"lease_token": first["lease_token"]})
    assert r.status_code == 200, r.text
    assert api.client.post("/queue/claim", headers=api.h("alice")).status_code == 200
