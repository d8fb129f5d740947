"""The lead's adjudication pages without the script (plain posts, as a browser without JavaScript sends them)
and the JSON answers the script reads: who may open them, what they list, and every refusal in words."""

from __future__ import annotations

from typing import Any

from api_support import double_policy, reflection

from scoring.store import HumanScoreIn


def _page(api: Any, who: str) -> Any:
    c = api.client
    c.cookies.set("rs_key", api.keys[who], path="/assessor")
    return c


def _disagreement(api: Any, ext: str = "adj-1", low: int = 0, high: int = 2) -> int:
    """A submission whose two blind ratings (alice, bob) differ by more than the gap on every criterion."""
    sid = int(api.submit(ext, reflection(3)).json()["submission_id"])
    a, b = api.claim("alice").json(), api.claim("bob").json()
    assert api.score_all(a, "alice", level=low).status_code == 201
    assert api.score_all(b, "bob", level=high).status_code == 201
    return sid


JSON = {"Accept": "application/json"}


def test_an_admin_logs_in_to_the_disagreements_and_records_a_resolved_score(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=double_policy())
    sid = _disagreement(api)
    r = api.client.post("/assessor/login", data={"api_key": api.keys["admin"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/assessor/adjudications", "a lead lands on the list"
    c = _page(api, "admin")
    page = c.get("/assessor/adjudications").text
    assert "oldest first (3)" in page and page.count('data-submission="') == 3
    assert "adj-1" in page and "level 0 <span class=\"slot\">(first rater)" in page and "(second rater)" in page

    item = c.get(f"/assessor/adjudications/{sid}/questioning").text
    assert "alice read it" in item and "bob read it" in item, "both ratings with their rationales"
    assert "by alice" in item and "first rater, blind" in item and "second rater, blind" in item
    assert "Machine's level" in item and 'aria-label="Probability of each level"' in item
    assert item.count('type="radio" name="score"') == 3 and "Not yet" in item, "the levels with their descriptors"

    url = f"/assessor/adjudications/{sid}/questioning"
    r = c.post(url, data={"score": "1", "rationale": "  "}, follow_redirects=False)
    assert r.status_code == 422 and "Write a rationale" in r.text and 'value="1" required\n                 checked' in r.text
    r = c.post(url, data={"rationale": "kept"}, follow_redirects=False)
    assert r.status_code == 422 and "Choose the resolved level" in r.text and ">kept</textarea>" in r.text
    r = c.post(url, data={"score": "7", "rationale": "x"}, headers=JSON)
    assert r.status_code == 422 and r.json()["ok"] is False and "7" in r.json()["message"]
    assert not api.store.adjudications()

    r = c.post(url, data={"score": "1", "rationale": "Probes some answers, not many students."}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/assessor/adjudications?msg=resolved")
    listed = c.get(r.headers["location"]).text
    assert "Resolved score recorded: adj-1 · questioning at level 1." in listed and "oldest first (2)" in listed
    [a] = api.store.adjudications()
    assert (a.submission_id, a.criterion, a.score, a.adjudicator, a.rationale) == (
        sid, "questioning", 1, "admin", "Probes some answers, not many students.")

    again = c.post(url, data={"score": "2", "rationale": "second try"}, headers=JSON)
    assert again.status_code == 409 and "already resolved to 1 by 'admin'" in again.json()["message"]
    page = c.post(url, data={"score": "2", "rationale": "second try"}, follow_redirects=False)
    assert page.status_code == 409 and "already resolved to 1 by &#39;admin&#39;" in page.text
    assert 'id="resolved"' in page.text and 'id="submit"' not in page.text, "no form on a resolved pair"
    assert len(api.store.adjudications()) == 1

    for crit in ("adjusting", "self_assessment"):
        assert c.post(f"/assessor/adjudications/{sid}/{crit}", data={"score": "1", "rationale": "between"},
                      headers=JSON).json()["ok"] is True
    assert "No disagreements wait for a resolved score" in c.get("/assessor/adjudications").text


def test_nothing_to_adjudicate_and_unknown_pairs_are_said_in_words(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=double_policy())
    sid = _disagreement(api, "adj-2", low=1, high=2)  # within the gap of 1: nothing to resolve
    c = _page(api, "admin")
    assert "No disagreements wait" in c.get("/assessor/adjudications").text
    page = c.get(f"/assessor/adjudications/{sid}/questioning").text
    assert "Nothing to resolve" in page and "within the adjudication gap" in page and 'id="submit"' not in page
    r = c.post(f"/assessor/adjudications/{sid}/questioning", data={"score": "1", "rationale": "x"}, headers=JSON)
    assert r.status_code == 409 and "no disagreement on 'questioning'" in r.json()["message"]
    r = c.get(f"/assessor/adjudications/{sid}/no_such_criterion", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("msg=unknown")
    assert "no such submission or criterion" in c.get(r.headers["location"]).text
    r = c.post("/assessor/adjudications/99999/questioning", data={"score": "1", "rationale": "x"}, headers=JSON)
    assert r.status_code == 404 and r.json()["ok"] is False and not api.store.adjudications()


def test_an_adjudicator_who_rated_the_submission_is_refused_in_words(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=double_policy())
    sid = int(api.submit("adj-3", reflection(4)).json()["submission_id"])
    # the lead's own past rating (imported history, `scoring import`), and another person's that disagrees
    api.store.record_human_scores([HumanScoreIn(sid, "questioning", 0, "admin", "first", True, "mine"),
                                   HumanScoreIn(sid, "questioning", 2, "bob", "second", True, "bob's")])
    c = _page(api, "admin")
    assert f'data-submission="{sid}"' in c.get("/assessor/adjudications").text
    url = f"/assessor/adjudications/{sid}/questioning"
    r = c.post(url, data={"score": "1", "rationale": "between"}, follow_redirects=False)
    assert r.status_code == 409
    assert "&#39;admin&#39; rated submission" in r.text and "someone who did not rate it" in r.text
    assert ">between</textarea>" in r.text, "what was typed stays"
    r = c.post(url, data={"score": "1", "rationale": "between"}, headers=JSON)
    assert r.status_code == 409 and "'admin' rated submission" in r.json()["message"]
    assert not api.store.adjudications()


def test_an_assessor_key_cannot_open_the_adjudication_pages(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=double_policy())
    sid = _disagreement(api)
    c = _page(api, "alice")
    for url in ("/assessor/adjudications", f"/assessor/adjudications/{sid}/questioning"):
        r = c.get(url, follow_redirects=False)
        assert r.status_code == 403 and "needs a lead&#39;s key (role admin)" in r.text
        assert "Go to your queue" in r.text
    r = c.post(f"/assessor/adjudications/{sid}/questioning", data={"score": "1", "rationale": "x"}, headers=JSON)
    assert r.status_code == 403 and "role 'assessor'" in r.json()["message"]
    assert "bob read it" not in c.get(f"/assessor/adjudications/{sid}/questioning").text, \
        "no ratings are shown to an assessor"
    assert not api.store.adjudications()
    c.cookies.clear()
    r = c.get("/assessor/adjudications", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/assessor/login", "no key: the login form"


def test_an_admin_still_cannot_open_the_rating_queue(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(policy=double_policy())
    api.submit("adj-4", reflection(5))
    c = _page(api, "admin")
    r = c.get("/assessor", follow_redirects=False)
    assert r.status_code == 403 and "scoring queue items needs an assessor key" in r.text
    assert 'href="/assessor/adjudications"' in r.text
    r = c.post("/assessor/claim", follow_redirects=False)
    assert r.status_code == 403
    r = c.post("/assessor/items/1/submit", data={"lease_token": "x"}, headers=JSON)
    assert r.status_code == 403 and "needs an assessor key" in r.json()["message"]
    assert api.store.human_scores() == []
    issuer = api.client.post("/assessor/login", data={"api_key": api.keys["issuer"]}, follow_redirects=False)
    assert issuer.status_code == 403 and "role &#39;issuer&#39;" in issuer.text, "other roles are refused at login"
