"""Details of the assessor page a tester found wanting: why a person is asked (in words, from the queue item's
own reason), the login form on a pasted paragraph, a bad item number on claim, a second submit from another
tab, and release / skip answers the script can wait for before it drops the local draft."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import reflection

from scoring.store import queue
from scoring.store.service_tables import queue_items
from scoring.usecases.assessment import plain_reason, queue_reasons

CRITERIA = ("questioning", "adjusting", "self_assessment")
JSON = {"Accept": "application/json"}


def _auto_policy() -> Any:
    """Every criterion and every credential decision auto-accepted, nothing sampled: the machine's routing
    reason is its auto-accept rule, and the tests lay out the queue themselves."""
    routing = pytest.importorskip("scoring.policy")
    crit = {c: {"min_confidence": 0.0} for c in CRITERIA}
    return routing.RoutingPolicy(policy_version="test-auto", double_rate=0.0, audit_rate=0.0, criteria=crit,
                                 decision_min_confidence=0.5, award_min_confidence=0.5)


def _page(api: Any, who: str = "alice") -> Any:
    c = api.client
    c.cookies.set("rs_key", api.keys[who], path="/assessor")
    return c


def _empty_queue(api: Any) -> None:
    with api.store.write() as tx:  # the award bar may have queued borderline decisions
        tx.conn.execute(sa.delete(queue_items))


def _claim_page(api: Any, who: str = "alice") -> tuple[int, str, str]:
    c = _page(api, who)
    r = c.post("/assessor/claim", follow_redirects=False)
    assert r.status_code == 303 and "/assessor/items/" in r.headers["location"], r.headers.get("location")
    iid = int(r.headers["location"].split("?")[0].rsplit("/", 1)[1])
    page = c.get(f"/assessor/items/{iid}").text
    token = re.search(r'name="lease_token" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    return iid, token, page


def _why(page: str) -> str:
    """Every "Why a person" line of an item page, as text."""
    found = re.findall(r'<p class="(?:why|reason)"[^>]*>(.*?)</p>', page, re.S)
    return " | ".join(html.unescape(re.sub(r"<[^>]+>", "", f)).strip() for f in found)


# ------------------------------------------------------------------------------------- why a person


def test_an_item_queued_by_selection_says_it_helps_train_the_model_not_the_auto_accept_rule(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=_auto_policy())
    for i in range(4):
        assert api.submit(f"sel-{i}", reflection(50 + i)).status_code == 201
    _empty_queue(api)
    r = api.client.post("/selection", headers=api.h("admin"), json={"rubric_id": "checking-for-understanding", "n": 1})
    assert r.status_code == 201, r.text
    sid = r.json()["selected"][0]["submission_id"]
    assert all(m.route == "auto" for m in api.store.machine_scores(submission_id=sid)), "the machine accepted these"
    _iid, _token, page = _claim_page(api)
    why = _why(page)
    assert re.search(r'id="why-person"', page) and "chosen to help train the model" in why, why
    assert "confidence" not in why and ">=" not in why and "set [" not in why, why
    assert page.count("Why a person") == 1, "said once for the whole item"


def test_a_routed_item_says_why_in_words_never_conformal_sets(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=_auto_policy())
    assert api.submit("routed-1", reflection(60)).status_code == 201
    _empty_queue(api)
    sid = api.store.find_submission("checking-for-understanding", "routed-1").id
    machine = {m.criterion: m for m in api.store.machine_scores(submission_id=sid)}
    queue.enqueue(api.store, sid, {c: "human" for c in CRITERIA}, reasons={
        "questioning": f"machine score {machine['questioning'].score} is not in its conformal set; set []",
        "adjusting": "set size 3 > 2; set [0, 1, 2]",
        "self_assessment": "automation of 'self_assessment' is suspended"})
    _iid, _token, page = _claim_page(api)
    why = _why(page)
    assert "set [" not in page and "conformal" not in page and "set size" not in why, why
    assert "the model is unsure between levels 0, 1 and 2" in why
    assert "automatic scoring of this criterion is paused" in why
    assert 'id="why-person"' not in page, "no reason is shared: each criterion says its own"
    assert len(re.findall(r'<p class="reason">', page)) == 3


def test_the_machine_scores_auto_accept_rule_is_never_given_as_why_a_person(api_factory) -> None:  # type: ignore[no-untyped-def]
    """An item that names no reason of its own (queued by hand) says nothing rather than the rule that
    accepted the machine's score."""
    api = api_factory(policy=_auto_policy())
    assert api.submit("bare-1", reflection(61)).status_code == 201
    _empty_queue(api)
    sid = api.store.find_submission("checking-for-understanding", "bare-1").id
    assert all(m.route == "auto" and m.reason for m in api.store.machine_scores(submission_id=sid))
    queue.enqueue(api.store, sid, {c: "human" for c in CRITERIA})
    _iid, _token, page = _claim_page(api)
    assert "Why a person" not in page and "confidence" not in _why(page)


def test_routing_reasons_in_plain_words() -> None:
    reason = ("questioning: human (credential decision: borderline: P(not_yet) 0.830 < 0.900; ['questioning'] go to "
              "a person; machine rule: auto (confidence 0.716 >= 0.000)); adjusting: human (selected to teach the "
              "model (rank 1, uncertainty 0.22)); self_assessment: human")
    got = queue_reasons(reason, CRITERIA)
    assert got["questioning"][1].startswith("credential decision: borderline") and got["questioning"][1].endswith("0.000)")
    assert got["adjusting"] == ("human", "selected to teach the model (rank 1, uncertainty 0.22)")
    assert got["self_assessment"] == ("human", "")
    assert plain_reason(*got["questioning"]) == "the credential decision is close, and this criterion can tip it"
    assert plain_reason(*got["adjusting"]).startswith("chosen to help train the model")  # type: ignore[union-attr]
    words = {w: plain_reason("human", w) for w in (
        "machine score 1 is not in its conformal set; set []", "set size 2 > 1; set [1, 2]",
        "confidence 0.612 < 0.800; set [1]", "policy p has no enabled thresholds for 'q'",
        "no routing policy loaded: every criterion goes to a human")}
    assert words["set size 2 > 1; set [1, 2]"] == "the model is unsure between levels 1 and 2"
    assert all("set [" not in w and "conformal" not in w and "0." not in w for w in words.values() if w), words
    assert "double-scored" in str(plain_reason("double", "random double-scoring sample (20%); machine rule: auto (x)"))
    assert "blind audit" in str(plain_reason("audit", "random blind audit (5%); confidence 0.9 >= 0.8; set [1]"))


# ------------------------------------------------------------------------------------- forms in words


def test_a_pasted_paragraph_at_login_gets_the_form_back_with_a_message(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.post("/assessor/login", data={"api_key": "x" * 450})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html"), r.text[:200]
    assert 'id="login-error"' in r.text and "450 characters" in r.text and 'name="api_key"' in r.text
    assert "rs_key" not in r.cookies


def test_a_bad_item_number_on_claim_is_said_and_claims_nothing(api) -> None:  # type: ignore[no-untyped-def]
    for i in range(2):
        api.submit(f"bad-{i}", reflection(70 + i))
    c = _page(api)
    for bad in ("abc", "-3", "1.5", "²"):
        r = c.post("/assessor/claim", data={"item": bad}, follow_redirects=False)
        assert r.headers["location"] == "/assessor?msg=baditem", bad
    assert queue.held_by(api.store, "alice") == [], "nothing was claimed"
    assert "not a valid item number" in c.get("/assessor?msg=baditem").text
    r = c.post("/assessor/claim", data={"item": "999999"}, follow_redirects=False)
    assert r.headers["location"] == "/assessor?msg=gone" and queue.held_by(api.store, "alice") == []


def test_a_second_submit_from_another_tab_says_you_already_submitted_it(api) -> None:  # type: ignore[no-untyped-def]
    api.submit("tabs-1", reflection(80))
    iid, token, _page_html = _claim_page(api)
    first = {"lease_token": token, **{f"score__{c}": "1" for c in CRITERIA}, **{f"rationale__{c}": "r" for c in CRITERIA}}
    r = api.client.post(f"/assessor/items/{iid}/submit", data=first, headers=JSON)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    second = {**first, **{f"score__{c}": "2" for c in CRITERIA}}  # the other tab, other levels
    r = api.client.post(f"/assessor/items/{iid}/submit", data=second, headers=JSON)
    assert r.status_code == 409 and r.json()["ok"] is False
    msg = r.json()["message"]
    assert "already submitted this item (in another tab or window)" in msg and "questioning 1" in msg, msg
    r = api.client.post(f"/assessor/items/{iid}/submit", data=second, follow_redirects=False)
    assert r.headers["location"] == "/assessor?msg=mine"
    assert "in another tab or window" in api.client.get("/assessor?msg=mine").text
    assert {h.score for h in api.store.human_scores()} == {1}, "the later submit recorded nothing"
    bob = _page(api, "bob")  # an item bob never claimed is not his, finished or not, naming nobody
    r = bob.post(f"/assessor/items/{iid}/submit", data=second, headers=JSON)
    assert r.status_code == 403 and r.json()["message"] == (
        f"queue item {iid} is not held by 'bob'; assessors see only items they claimed")


def test_release_and_skip_answer_the_script_in_json_and_plain_forms_with_a_redirect(api) -> None:  # type: ignore[no-untyped-def]
    for i in range(2):
        api.submit(f"rel-{i}", reflection(90 + i))
    iid, token, _ = _claim_page(api)
    r = api.client.post(f"/assessor/items/{iid}/release", data={"lease_token": "0" * 32}, headers=JSON)
    assert r.status_code == 409 and r.json()["ok"] is False and r.json()["message"]
    assert queue.item(api.store, iid).holder == "alice", "a refused release changes nothing"
    r = api.client.post(f"/assessor/items/{iid}/release", data={"lease_token": token}, headers=JSON)
    assert r.status_code == 200 and r.json() == {"ok": True, "next": "/assessor?msg=released"}
    iid, token, _ = _claim_page(api)
    r = api.client.post(f"/assessor/items/{iid}/release", data={"lease_token": token, "skip": "1"}, headers=JSON)
    assert r.json() == {"ok": True, "next": "/assessor?msg=skipped"}
    iid, token, _ = _claim_page(api)
    r = api.client.post(f"/assessor/items/{iid}/release", data={"lease_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/assessor?msg=released"
