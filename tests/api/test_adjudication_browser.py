"""The lead's adjudication pages in a real browser (headless Debian Chromium through Playwright) against a
real uvicorn server: an admin logs in, sees the disagreements, opens one, reads both ratings and resolves
it by keyboard, at 1366x768 and 390x844; a lost connection and a server error keep what was typed; axe-core
on every page state. Screenshots go to ``build/screenshots/assessor`` (or ``SCORING_SCREENSHOT_DIR``)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from api_support import double_policy, reflection
from browser_support import BROWSER_MARKS
from test_assessor_page import DESKTOP, PHONE, _axe, _no_overflow_and_form_uncovered, _shot
from test_assessor_page import serve as _serve

pytestmark = BROWSER_MARKS
serve = _serve  # the assessor page tests' live server fixture, used here as is
RESOLVE = "**/assessor/adjudications/*/*"


def _disagreement(srv: Any, ext: str) -> int:
    api = srv.api
    sid = int(api.submit(ext, reflection(3)).json()["submission_id"])
    a, b = api.claim("alice").json(), api.claim("bob").json()
    assert api.score_all(a, "alice", level=0).status_code == 201
    assert api.score_all(b, "bob", level=2).status_code == 201
    return sid


def _lead_login(page: Any, srv: Any) -> None:
    page.goto(f"{srv.url}/assessor/adjudications")
    assert page.url.endswith("/assessor/login"), "unauthenticated visitors are sent to the login form"
    page.fill("#api_key", srv.api.keys["admin"])
    page.click("#login")
    page.wait_for_url(f"{srv.url}/assessor/adjudications")


def _no_sideways_scroll(page: Any, state: str) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{state}: page {width[0]} px wide in a {width[1]} px window"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366x768", "390x844"])
def test_a_lead_sees_the_disagreement_reads_both_ratings_and_resolves_it_by_keyboard(browser, serve, viewport) -> None:  # type: ignore[no-untyped-def]
    srv = serve(policy=double_policy())
    sid = _disagreement(srv, "lead-1")
    tag = f"{viewport['width']}x{viewport['height']}"
    ctx = browser.new_context(viewport=viewport)
    page = ctx.new_page()
    _lead_login(page, srv)
    rows = page.locator("#adj-list tbody tr")
    assert rows.count() == 3 and "oldest first" in page.inner_text("#adj-list caption")
    row = page.locator("#adj-list tr[data-criterion=questioning]")
    assert "lead-1" in row.inner_text() and "level 0" in row.inner_text() and "level 2" in row.inner_text()
    _no_sideways_scroll(page, f"list at {tag}")
    _axe(page, f"disagreements list at {tag}")
    _shot(page, f"adjudication-{tag}-list")

    row.get_by_role("link", name="Resolve").click()
    page.wait_for_url(f"{srv.url}/assessor/adjudications/{sid}/questioning")
    ratings = page.inner_text("#ratings")
    assert "alice read it" in ratings and "bob read it" in ratings, "both ratings with their rationales"
    assert "first rater, blind" in ratings and "second rater, blind" in ratings
    assert page.locator("[data-testid=machine] .probs li").count() == 3, "the machine's probabilities"
    assert page.locator("#crit-questioning .descriptor").count() == 3, "the level descriptors"
    assert page.locator(".view.plain .text").first.is_visible(), "the evidence"
    _no_overflow_and_form_uncovered(page, f"item at {tag}")
    page.evaluate("() => { window.scrollTo(0, 0); document.querySelectorAll('.pane').forEach(p => { p.scrollTop = 0; }); }")
    _axe(page, f"disagreement at {tag}")
    _shot(page, f"adjudication-{tag}-item")

    page.locator("#evidence").focus()
    page.keyboard.press("7")  # not a level: refused in words, never rounded
    assert "7 is not a level" in page.inner_text("body")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.keyboard.type("Some open questions, few students answer: level 1.")
    page.keyboard.press("Escape")
    assert page.is_checked("#crit-questioning input[value='1']")
    _shot(page, f"adjudication-{tag}-item-filled")
    page.keyboard.press("s")
    page.wait_for_url(f"{srv.url}/assessor/adjudications?msg=resolved*")
    assert "Resolved score recorded: lead-1 · questioning at level 1" in page.inner_text("#flash")
    assert rows.count() == 2
    [a] = srv.api.store.adjudications()
    assert (a.submission_id, a.criterion, a.score, a.adjudicator) == (sid, "questioning", 1, "admin")
    assert a.rationale == "Some open questions, few students answer: level 1."

    for crit, digit in (("adjusting", "2"), ("self_assessment", "0")):
        page.goto(f"{srv.url}/assessor/adjudications/{sid}/{crit}")
        page.keyboard.press(digit)
        page.keyboard.press("Enter")
        page.keyboard.type(f"resolved to {digit}")
        page.keyboard.press("Escape")
        page.keyboard.press("s")
        page.wait_for_url(f"{srv.url}/assessor/adjudications?msg=resolved*")
    assert "No disagreements wait for a resolved score" in page.inner_text("#adj-empty")
    assert {(x.criterion, x.score) for x in srv.api.store.adjudications()} == {
        ("questioning", 1), ("adjusting", 2), ("self_assessment", 0)}
    _axe(page, f"empty list at {tag}")
    _shot(page, f"adjudication-{tag}-empty")
    ctx.close()


def test_a_lost_connection_or_a_server_error_keeps_the_typed_level_and_rationale(browser, serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve(policy=double_policy())
    sid = _disagreement(srv, "lead-2")
    ctx = browser.new_context(viewport=PHONE)
    page = ctx.new_page()
    mode = {"now": "pass"}
    lock = threading.Lock()

    def handle(route: Any) -> None:
        with lock:
            now = mode["now"]
        if route.request.method != "POST" or now == "pass":
            route.continue_()
        elif now == "error":
            route.fulfill(status=500, body="Internal Server Error", content_type="text/plain")
        else:
            route.abort("internetdisconnected")

    page.route(RESOLVE, handle)
    _lead_login(page, srv)
    page.goto(f"{srv.url}/assessor/adjudications/{sid}/adjusting")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.keyboard.type("between the two")
    page.keyboard.press("Escape")

    mode["now"] = "error"
    page.keyboard.press("s")
    page.wait_for_function("() => document.getElementById('live').textContent.includes('HTTP 500')")
    assert "nothing was lost" in page.inner_text("#live")
    mode["now"] = "offline"
    page.keyboard.press("s")
    page.wait_for_function("() => document.getElementById('live').textContent.includes('No connection')")
    assert page.input_value("#crit-adjusting textarea") == "between the two"
    assert page.is_checked("#crit-adjusting input[value='1']")
    _axe(page, "resolve with no connection at 390 px")
    _shot(page, "adjudication-390x844-offline")
    assert not srv.api.store.adjudications()

    page.reload()  # the draft comes back from this device
    assert page.input_value("#crit-adjusting textarea") == "between the two"
    assert page.is_checked("#crit-adjusting input[value='1']")
    mode["now"] = "pass"
    page.keyboard.press("s")
    page.wait_for_url(f"{srv.url}/assessor/adjudications?msg=resolved*")
    [a] = srv.api.store.adjudications()
    assert (a.criterion, a.score, a.rationale) == ("adjusting", 1, "between the two")
    page.goto(f"{srv.url}/assessor/adjudications/{sid}/questioning")
    assert page.input_value("#crit-questioning textarea") == "", "a draft is one pair's, cleared once recorded"
    ctx.close()
