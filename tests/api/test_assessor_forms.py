"""The assessor page's forms without the script (plain posts, as a browser without JavaScript sends them)
and the JSON answers the script reads: rationale rules, a submit after the lease expired, renewals."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from api_support import reflection

from scoring.store import queue
from scoring.store.clock import now
from scoring.store.service_tables import queue_items


def _page_client(api: Any, who: str = "alice") -> Any:
    c = api.client
    c.cookies.set("rs_key", api.keys[who], path="/assessor")
    return c


def _claim(api: Any, who: str = "alice") -> tuple[int, str, dict[str, int]]:
    c = _page_client(api, who)
    r = c.post("/assessor/claim", follow_redirects=False)
    assert r.status_code == 303 and "/assessor/items/" in r.headers["location"], r.text
    iid = int(r.headers["location"].rsplit("/", 1)[1])
    page = c.get(f"/assessor/items/{iid}").text
    token = re.search(r'name="lease_token" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    machine = {cid: int(lv) for cid, lv in re.findall(r'data-crit="([a-z_]+)" id="crit-[a-z_]+"[^>]*data-machine="(\d+)"', page)}
    return iid, token, machine


def _expire(api: Any, iid: int) -> None:
    with api.store.write() as tx:
        tx.conn.execute(sa.update(queue_items).where(queue_items.c.id == iid)
                        .values(lease_expires=now() - timedelta(seconds=5)))


def test_a_rationale_is_asked_only_where_the_rule_says(api) -> None:  # type: ignore[no-untyped-def]
    api.submit("form-1", reflection(1))
    iid, token, machine = _claim(api)
    assert set(machine) == {"questioning", "adjusting", "self_assessment"}
    other = {c: (lv + 1) % 3 for c, lv in machine.items()}  # every level differs from the machine's
    form = {"lease_token": token, **{f"score__{c}": str(lv) for c, lv in other.items()}}
    r = api.client.post(f"/assessor/items/{iid}/submit", data=form, follow_redirects=False)
    assert r.status_code == 422 and "a rationale is required for a level that differs from the machine" in r.text
    assert all(f'value="{lv}"' in r.text for lv in other.values()), "the chosen levels stay on the page"
    agree = {"lease_token": token, **{f"score__{c}": str(lv) for c, lv in machine.items() if lv != 0},
             **{f"score__{c}": "0" for c, lv in machine.items() if lv == 0},
             **{f"rationale__{c}": "lowest level: none of it is in the evidence" for c, lv in machine.items() if lv == 0}}
    r = api.client.post(f"/assessor/items/{iid}/submit", data=agree, follow_redirects=False)
    assert r.status_code == 303, r.text
    got = {h.criterion: (h.score, h.rationale) for h in api.store.human_scores()}
    assert {c: s for c, (s, _) in got.items()} == machine
    assert all(why == "" for c, (s, why) in got.items() if s != 0), "accepting the machine's level needs no rationale"


def test_a_submit_after_expiry_records_when_nobody_took_the_item_and_names_who_did_otherwise(api) -> None:  # type: ignore[no-untyped-def]
    api.submit("form-2", reflection(2))
    api.submit("form-3", reflection(3))
    iid, token, machine = _claim(api)
    form = {"lease_token": token, **{f"score__{c}": str(lv) for c, lv in machine.items()},
            **{f"rationale__{c}": "r" for c in machine}}
    _expire(api, iid)
    r = api.client.post(f"/assessor/items/{iid}/submit", data=form, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert len(api.store.human_scores()) == 3

    nxt = int(r.json()["next"].split("/")[-1].split("?")[0])
    tok2 = queue.item(api.store, nxt).lease_token
    _expire(api, nxt)
    bob = api.claim("bob").json()
    assert bob["id"] == nxt
    r = api.client.post(f"/assessor/items/{nxt}/renew", data={"lease_token": tok2})
    assert r.status_code == 409 and "held by bob" in r.json()["message"]
    r = api.client.post(f"/assessor/items/{nxt}/submit", data={**form, "lease_token": str(tok2)},
                        headers={"Accept": "application/json"})
    assert r.status_code == 409 and r.json()["lost"] is True and "held by bob" in r.json()["message"]
    assert len(api.store.human_scores()) == 3, "nothing recorded over bob's claim"


def test_renewing_extends_a_held_lease(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(lease_seconds=60)
    api.submit("form-4", reflection(4))
    iid, token, _ = _claim(api)
    before = queue.item(api.store, iid).lease_expires
    with api.store.write() as tx:
        tx.conn.execute(sa.update(queue_items).where(queue_items.c.id == iid)
                        .values(lease_expires=now() + timedelta(seconds=10)))
    r = api.client.post(f"/assessor/items/{iid}/renew", data={"lease_token": token})
    assert r.status_code == 200 and r.json()["lease_token"] == token and r.json()["seconds_left"] > 50
    assert queue.item(api.store, iid).lease_expires >= before  # type: ignore[operator]


def test_claim_from_the_list_takes_that_item_or_says_nothing_matches(api) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        api.submit(f"form-l{i}", reflection(20 + i))
    c = _page_client(api)
    listed = [int(x) for x in re.findall(r'<tr data-item="(\d+)"', c.get("/assessor").text)]
    assert len(listed) == 3
    r = c.post("/assessor/claim", data={"item": str(listed[2])}, follow_redirects=False)
    assert r.headers["location"] == f"/assessor/items/{listed[2]}"
    c2 = _page_client(api, "bob")
    r = c2.post("/assessor/claim", data={"route": "audit"}, follow_redirects=False)
    assert r.headers["location"] == "/assessor?msg=nomatch&route=audit"
    page = c2.get("/assessor?route=human&criterion=questioning").text
    assert re.findall(r'<tr data-item="(\d+)"', page) == [str(listed[0]), str(listed[1])]


def test_a_claim_that_finds_nothing_comes_back_to_the_list_under_the_same_filters(api) -> None:  # type: ignore[no-untyped-def]
    """"Nothing matches those filters" is said above the list those filters give, never above the whole
    queue with the filters reset to "any"; so is a row's item someone else took meanwhile."""
    for i in range(2):
        api.submit(f"form-f{i}", reflection(24 + i))
    c = _page_client(api)
    r = c.post("/assessor/claim", data={"route": "audit", "criterion": "questioning"}, follow_redirects=False)
    assert r.headers["location"] == "/assessor?msg=nomatch&criterion=questioning&route=audit"
    page = c.get(r.headers["location"]).text
    assert "Nothing matches those filters" in page and "Nothing waiting for you with these filters" in page
    assert '<option value="audit" selected>' in page and '<option value="questioning" selected>' in page
    assert not re.findall(r'<tr data-item="(\d+)"', page), "the list shown is the filtered one: empty"

    page = c.get("/assessor?route=human").text
    listed = re.findall(r'<tr data-item="(\d+)"', page)
    iid = api.claim("bob").json()["id"]  # bob takes the first listed item meanwhile, through the API
    assert str(iid) == listed[0]
    r = c.post("/assessor/claim", data={"item": str(iid), "route": "human"}, follow_redirects=False)
    assert r.headers["location"] == "/assessor?msg=gone&route=human"
    row = re.search(rf'<input type="hidden" name="item" value="{listed[1]}">\s*(.*?)</form>', page, re.S)
    assert row and '<input type="hidden" name="route" value="human">' in row.group(1), \
        "a row's Claim carries the filters, so Submit & next goes on within them"
    r = c.post("/assessor/claim", data={"item": listed[1], "route": "human"}, follow_redirects=False)
    assert r.headers["location"] == f"/assessor/items/{listed[1]}?route=human"


def test_submit_and_next_claims_within_the_assessors_filters(api_factory) -> None:  # type: ignore[no-untyped-def]
    routing = __import__("scoring.policy", fromlist=["RoutingPolicy"])
    crit = {c: {"min_confidence": 0.0} for c in ("questioning", "adjusting", "self_assessment")}
    api = api_factory(policy=routing.RoutingPolicy(policy_version="test-auto", double_rate=0.0, audit_rate=0.0,
                                                   criteria=crit))  # nothing queued by routing
    for i in range(3):
        assert api.submit(f"filt-{i}", reflection(30 + i)).status_code == 201
    with api.store.write() as tx:  # this test lays out the queue itself (the award bar may have queued some)
        tx.conn.execute(sa.delete(queue_items))
    ids = sorted(s.id for s in api.store.submissions())
    queue.enqueue(api.store, ids[0], {"questioning": "human"}, priority=30)  # first in queue order
    want = [queue.enqueue(api.store, sid, {"adjusting": "human"})[0].id for sid in ids[1:]]
    c = _page_client(api)
    r = c.post("/assessor/claim", data={"criterion": "adjusting"}, follow_redirects=False)
    assert r.headers["location"] == f"/assessor/items/{want[0]}?criterion=adjusting"
    for k, iid in enumerate(want):
        page = c.get(r.headers["location"]).text
        assert '<input type="hidden" name="criterion" value="adjusting">' in page
        token = re.search(r'name="lease_token" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
        form = {"lease_token": token, "criterion": "adjusting", "score__adjusting": "1", "rationale__adjusting": "r"}
        r = c.post(f"/assessor/items/{iid}/submit", data=form, follow_redirects=False)
        assert r.status_code == 303, r.text
        expected = (f"/assessor/items/{want[k + 1]}?msg=saved&criterion=adjusting" if k + 1 < len(want)
                    else "/assessor?msg=nomatch&criterion=adjusting")
        assert r.headers["location"] == expected, "the next item matches the filter, not the queue's first"
    assert queue.items_for_submission(api.store, ids[0])[0].status == "open"


def test_renew_on_an_item_you_do_not_hold_claims_nothing(api) -> None:  # type: ignore[no-untyped-def]
    for i in range(2):
        api.submit(f"form-r{i}", reflection(40 + i))
    c = _page_client(api)
    listed = [int(x) for x in re.findall(r'<tr data-item="(\d+)"', c.get("/assessor").text)]
    last = listed[-1]  # last in queue order: a renew must not jump the queue
    r = c.post(f"/assessor/items/{last}/renew", data={"lease_token": "0" * 32})
    assert r.status_code == 403 and "is not held by 'alice'" in r.json()["message"], r.text
    assert queue.item(api.store, last).status == "open" and queue.item(api.store, last).holder is None


def test_without_the_script_the_evidence_reads_even_where_highlights_exist(api) -> None:  # type: ignore[no-untyped-def]
    """The highlighted views start hidden (the script shows one per criterion); the plain text must not,
    or an assessor without JavaScript scores a blank page."""
    text = reflection(2)
    api.submit("form-plain", text)
    iid, _token, _machine = _claim(api)
    page = api.client.get(f"/assessor/items/{iid}").text
    assert 'class="view hl-view"' in page, "the fixture's items carry highlights"
    plain = re.search(r'<div class="view plain"[^>]*>', page)
    assert plain is not None and "hidden" not in plain.group(0)
    assert text.split()[0] in page[plain.end():plain.end() + 2000]


def test_a_submit_after_the_session_ended_says_log_in_again_not_no_connection(api) -> None:  # type: ignore[no-untyped-def]
    """The page's script posts with Accept: application/json; a redirect to the login form read as a lost
    connection, and the page retried forever. It gets a 401 in words; a plain form post still redirects."""
    api.submit("form-gone", reflection(4))
    iid, token, _machine = _claim(api)
    api.client.cookies.clear()  # logged out in another tab
    r = api.client.post(f"/assessor/items/{iid}/submit", data={"lease_token": token},
                        headers={"Accept": "application/json"}, follow_redirects=False)
    assert r.status_code == 401 and r.json()["ok"] is False and "log in again" in r.json()["message"].lower()
    r = api.client.post(f"/assessor/items/{iid}/submit", data={"lease_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/assessor/login"
