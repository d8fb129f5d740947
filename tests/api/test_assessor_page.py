"""The assessor page in a real browser (headless Debian Chromium through Playwright) against a real
uvicorn server: log in, claim, score with the keyboard, submit, next item, release, blind mode.

Set ``SCORING_SCREENSHOT_DIR`` to keep the screenshots the tests take.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import double_policy, make_api, reflection

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, api: Any):
        import uvicorn

        self.api, self.port = api, _free_port()
        self.server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("uvicorn did not start in 10 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def serve(tmp_path: Path, api_home: Path, api_model_dir: Path) -> Iterator[Any]:
    started: list[tuple[LiveServer, Any]] = []

    def start(policy: Any = None) -> LiveServer:
        api = make_api(f"sqlite:///{tmp_path / f'page{len(started)}.db'}", api_home, api_model_dir, policy)
        srv = LiveServer(api).__enter__()
        started.append((srv, api))
        return srv

    yield start
    for srv, api in started:
        srv.__exit__()
        api.store.close()


def _shot(page: Any, tmp_path: Path, name: str) -> Path:
    out = tmp_path / f"{name}.png"
    page.screenshot(path=str(out), full_page=True)
    keep = os.environ.get("SCORING_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(keep) / out.name)
    return out


def _login(page: Any, srv: LiveServer, who: str = "alice") -> None:
    page.goto(f"{srv.url}/assessor")
    assert page.url.endswith("/assessor/login"), "unauthenticated visitors are sent to the login form"
    page.fill("#api_key", srv.api.keys[who])
    page.click("#login")
    page.wait_for_url(f"{srv.url}/assessor")


def _score_active_with_keyboard(page: Any, digit: str, rationale: str) -> None:
    page.keyboard.press(digit)
    page.keyboard.press("Enter")  # into the rationale
    page.keyboard.type(rationale)
    page.keyboard.press("Escape")  # back to shortcuts


def test_assessor_logs_in_claims_scores_with_the_keyboard_and_moves_on(browser, serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv = serve()
    s1 = srv.api.submit("page-1", reflection(1)).json()
    s2 = srv.api.submit("page-2", reflection(2)).json()
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()

    page.goto(f"{srv.url}/assessor/login")
    page.fill("#api_key", srv.api.keys["issuer"])
    page.click("#login")
    assert "role 'issuer'" in page.inner_text("#login-error"), "only assessor keys open the page"
    _login(page, srv)
    cookie = next(c for c in ctx.cookies() if c["name"] == "rs_key")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert "rs_key" not in page.evaluate("document.cookie"), "scripts cannot read the key"
    assert page.inner_text("#stat-open") == "2"

    page.keyboard.press("c")  # claim
    page.wait_for_url(f"{srv.url}/assessor/items/*")
    assert page.inner_text("#position").startswith("Item 1 of 2")
    assert "Route: human" in page.inner_text("#mode")
    q = s1["criteria"]["questioning"]
    assert page.inner_text("[data-testid=machine-questioning]").startswith(f"Machine: {q['score']}")
    assert page.locator(".hl-view[data-crit=questioning] mark").count() > 0, "highlights of the active criterion"
    assert page.locator(".hl-view[data-crit=questioning]").is_visible()
    assert not page.locator(".hl-view[data-crit=adjusting]").is_visible()
    assert page.locator(".level").first.is_visible() and "Not yet" in page.inner_text("#crit-questioning")

    _score_active_with_keyboard(page, "2", "Follow-up questions probe reasoning.")
    page.keyboard.press("n")
    assert "active" in (page.get_attribute("#crit-adjusting", "class") or "")
    assert page.locator(".hl-view[data-crit=adjusting]").is_visible(), "highlights follow the active criterion"
    _score_active_with_keyboard(page, "1", "Notices the misconception, adjusts late.")
    page.keyboard.press("n")
    _score_active_with_keyboard(page, "0", "No self-assessment described.")
    assert page.is_checked("#crit-questioning input[value='2']")
    _shot(page, tmp_path, "assessor-item")
    page.keyboard.press("s")  # submit -> next item
    page.wait_for_url(f"{srv.url}/assessor/items/*?msg=saved")
    assert "Scores saved" in page.inner_text("#flash")
    assert page.inner_text("#position").startswith("Item 1 of 1")
    assert "1 done by you" in page.inner_text("#count-mine")

    hs = {h.criterion: (h.score, h.rationale, h.assessor, h.blind)
          for h in srv.api.store.human_scores(submission_id=s1["submission_id"])}
    assert hs == {"questioning": (2, "Follow-up questions probe reasoning.", "alice", False),
                  "adjusting": (1, "Notices the misconception, adjusts late.", "alice", False),
                  "self_assessment": (0, "No self-assessment described.", "alice", False)}

    page.keyboard.press("s")  # nothing chosen yet: the browser's form validation stops the submit
    assert "/items/" in page.url and srv.api.store.human_scores(submission_id=s2["submission_id"]) == []
    page.keyboard.press("r")  # release
    page.wait_for_url(f"{srv.url}/assessor?msg=released")
    assert "returned to the queue" in page.inner_text("#flash")
    assert page.inner_text("#stat-open") == "1"
    _shot(page, tmp_path, "assessor-queue")
    ctx.close()


def test_blind_items_show_no_machine_score_probabilities_or_highlights(browser, serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv = serve(policy=double_policy())
    sub = srv.api.submit("blind-1", reflection(3)).json()
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    _login(page, srv)
    page.click("#claim")
    page.wait_for_url(f"{srv.url}/assessor/items/*")
    assert page.inner_text("#mode").startswith("Blind (double)")
    assert page.locator(".machine").count() == 0 and page.locator(".prob").count() == 0
    assert page.locator("mark").count() == 0 and page.locator(".hl-view").count() == 0
    html = page.content()
    for c, r in sub["criteria"].items():
        for p in r["probabilities"].values():
            assert f"{p:.2f}" not in html or f"{p:.2f}" in reflection(3), f"{c} probability leaked"
    assert "Why a person" not in html
    _shot(page, tmp_path, "assessor-blind")
    for cid in ("questioning", "adjusting", "self_assessment"):
        page.check(f"#crit-{cid} input[value='1']")
        page.fill(f"#crit-{cid} textarea", "blind read")
    page.click("#submit")
    page.wait_for_url(f"{srv.url}/assessor?msg=empty")
    assert all(h.blind and h.kind in ("first", "second") for h in srv.api.store.human_scores())
    ctx.close()
