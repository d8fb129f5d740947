"""An assessor's shift on the web page, scripted in Chromium: the tests and ``scoring bench assessor`` both
drive it, so the figures the benchmark prints come from the same keyboard-only work the tests check.

A shift: log in, claim, then per item choose each criterion's level with a digit (or accept the machine's
level with ``a`` on accept rounds), write a rationale where the page asks for one, move on with ``n``,
submit with ``s`` (which opens the next item). Along the way: an out-of-scale key, a reload mid-item (the
draft comes back), a network drop on submit (route abort: the draft stays, the retry succeeds) and an
expired lease (the submit still records, since nobody else took the item).

Timed actions (browser round-trip and rendering, no thinking time): ``claim`` (key to the item page
loaded), ``select`` and ``accept`` (key to the radio checked and a frame painted), ``next`` (key to the
next criterion active), ``submit`` (key to the next item's page loaded).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Debian's Chromium, headless, with nothing that reaches the network (the tests and `scoring bench assessor`).
CHROMIUM = "/usr/bin/chromium"
SUBMIT_PATTERN = "**/assessor/items/*/submit"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

STUDENT_LINES = [
    "I think it's three quarters because the pieces are the same size.",
    "I got a different answer, I split it into eighths.",
    "Can you say the question again?",
    "Because if you double both numbers it stays the same fraction.",
    "I agree with Maya but I did it with a number line.",
    "Is it the same as one half?",
    "We drew a picture and counted the shaded parts.",
    "I'm not sure, maybe six?",
]


def _clock(t: float, sep: str) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def transcript(reflection: str, fmt: str, seed: int) -> str:
    """A classroom transcript built from a reflection's sentences (the teacher's turns) and student
    replies between them: WebVTT with ``<v>`` voice tags, or SRT with ``Name:`` labels."""
    from models.sentences import split_sentences

    rng = random.Random(seed)
    teacher = [reflection[a:b] for a, b in split_sentences(reflection)]
    turns: list[tuple[str, str]] = []
    for k, s in enumerate(teacher):
        turns.append(("Ms. Okafor", s))
        for _ in range(rng.choice((1, 2))):
            turns.append((rng.choice(["Maya", "Student 2", "Jonah"]), rng.choice(STUDENT_LINES)))
        if k % 3 == 2:
            turns.append(("Ms. Okafor", "Turn to your partner and explain how you know."))
    t, lines = 4.0, []
    if fmt == "vtt":
        lines.append("WEBVTT\n")
    for n, (who, text) in enumerate(turns, start=1):
        d = 2.0 + len(text) / 18
        sep = "." if fmt == "vtt" else ","
        cue = f"{_clock(t, sep)} --> {_clock(t + d, sep)}"
        body = f"<v {who}>{text}</v>" if fmt == "vtt" else f"{who}: {text}"
        lines.append(f"{n}\n{cue}\n{body}\n")
        t += d + 0.5
    return "\n".join(lines)


def shift_evidence(n: int, seed: int = 99) -> list[tuple[str, str]]:
    """``n`` (external id, evidence text) pairs: reflections, WebVTT and SRT transcripts, interleaved."""
    from scoring.demo import make_reflections

    rows = make_reflections(n, seed=seed)
    out = []
    for i, r in enumerate(rows):
        kind = ("reflection", "vtt", "reflection", "srt")[i % 4]
        text = r["reflection"] if kind == "reflection" else transcript(r["reflection"], kind, seed + i)
        out.append((f"shift-{kind}-{i + 1:03d}", text))
    return out


@dataclass
class ShiftLog:
    timings: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in
                                                                     ("claim", "select", "accept", "next", "submit")})
    items: list[int] = field(default_factory=list)  # queue item ids in the order they were scored
    accepted: dict[int, dict[str, int]] = field(default_factory=dict)  # item -> criterion -> machine level accepted
    chosen: dict[int, dict[str, int]] = field(default_factory=dict)  # item -> criterion -> level submitted
    rationales: dict[int, dict[str, str]] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)

    def ms(self) -> list[float]:
        return [1000 * x for xs in self.timings.values() for x in xs]


FRAME = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


class Shift:
    """Drives one assessor's shift. ``check(name, page)`` is called at each page state worth checking
    (screenshots, overflow, axe); ``expire(item_id)`` makes the item's lease run out (the store's clock)."""

    def __init__(self, page: Any, base: str, *, check: Callable[[str, Any], None] | None = None,
                 expire: Callable[[int], None] | None = None, events: bool = True, timeout_ms: int = 15_000):
        self.page, self.base, self.check, self.expire, self.events = page, base, check, expire, events
        self.log = ShiftLog()
        page.set_default_timeout(timeout_ms)
        self._drop_submits = False
        self.dropped: list[str] = []
        if events:
            # Routed before the first navigation and switched by a flag: a route added to a page that had
            # already navigated a dozen times let a submit through unseen now and then (Chromium 156 in CI).
            page.route(SUBMIT_PATTERN, self._route_submit)

    def _route_submit(self, route: Any) -> None:
        if self._drop_submits:
            self.dropped.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def _state(self, name: str) -> None:
        if self.check is not None:
            self.check(name, self.page)

    def _timed(self, action: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        self.page.evaluate(FRAME)
        self.log.timings[action].append(time.perf_counter() - t0)
        return out

    def login(self, api_key: str) -> None:
        p = self.page
        p.goto(f"{self.base}/assessor/login")
        self._state("login")
        p.fill("#api_key", api_key)
        p.keyboard.press("Enter")
        p.wait_for_url(f"{self.base}/assessor")
        self._state("queue")

    def item_id(self) -> int:
        m = re.search(r"/assessor/items/(\d+)", self.page.url)
        if m is None:
            raise AssertionError(f"expected an item page, found {self.page.url}")
        return int(m.group(1))

    def claim(self) -> None:
        def go() -> None:
            self.page.keyboard.press("c")
            self.page.wait_for_url(re.compile(r".*/assessor/items/\d+$"))
            self.page.wait_for_load_state("load")
        self._timed("claim", go)

    def _crits(self) -> list[dict[str, Any]]:
        return list(self.page.eval_on_selector_all("fieldset.criterion", """els => els.map(f => ({
            id: f.dataset.crit, scale: f.dataset.scale.split(','), machine: f.dataset.machine ?? null}))"""))

    def _press_and_wait_checked(self, action: str, key: str, cid: str, level: str) -> None:
        sel = f"#crit-{cid} input[value='{level}']"

        def go() -> None:
            self.page.keyboard.press(key)
            self.page.wait_for_function("s => document.querySelector(s).checked", arg=sel, polling="raf")
        self._timed(action, go)

    def _write(self, text: str) -> None:
        p = self.page
        p.keyboard.press("Enter")
        p.keyboard.type(text)
        p.keyboard.press("Escape")

    def _needs_rationale(self, cid: str) -> bool:
        return bool(self.page.eval_on_selector(f"#crit-{cid} textarea", "t => t.required"))

    def score_item(self, i: int) -> None:
        """Score the open item with the keyboard and submit it (which opens the next one)."""
        p, iid = self.page, self.item_id()
        crits = self._crits()
        accept_round = i % 5 == 2 and all(c["machine"] is not None for c in crits)
        self.log.accepted[iid], self.log.chosen[iid], self.log.rationales[iid] = {}, {}, {}
        self._state("item")
        for j, c in enumerate(crits):
            cid = c["id"]
            if j > 0:
                def nxt(cid: str = cid) -> None:
                    p.keyboard.press("n")
                    p.wait_for_function("s => document.querySelector(s).classList.contains('active')",
                                        arg=f"#crit-{cid}", polling="raf")
                self._timed("next", nxt)
            if self.events and i == 1 and j == 0:
                self._out_of_scale(c)
            if self.events and i == 3 and j == 0:
                self._highlights()
            if accept_round:
                self._press_and_wait_checked("accept", "a", cid, c["machine"])
                self.log.accepted[iid][cid] = int(c["machine"])
                level = c["machine"]
            else:
                level = c["scale"][(i + j) % len(c["scale"])]
                self._press_and_wait_checked("select", level, cid, level)
            self.log.chosen[iid][cid] = int(level)
            if self._needs_rationale(cid):
                why = f"Item {i + 1}, {cid}: the evidence shows level {level}."
                self._write(why)
                self.log.rationales[iid][cid] = why
            if self.events and i == 5 and j == 0:
                self._reload_mid_item(cid, level)
        if self.events and i == 1:
            self._state("item-filled")
        if self.events and accept_round:
            self._state("accepted")
        if self.events and i == 7:
            self._network_drop()
        if self.events and i == 10 and self.expire is not None:
            self.expire(iid)
            self.log.events.append(f"lease of item {iid} expired before submit")
        self.log.items.append(iid)

        def submit() -> None:
            p.keyboard.press("s")
            p.wait_for_url(lambda u: f"/items/{iid}" not in u and ("/items/" in u or u.endswith("msg=empty")))
            p.wait_for_load_state("load")
        self._timed("submit", submit)

    # -- the events of a shift ------------------------------------------------------------------
    def _out_of_scale(self, c: dict[str, Any]) -> None:
        p = self.page
        bad = str(max(int(x) for x in c["scale"]) + 1)
        if len(bad) > 1:
            return
        p.keyboard.press(bad)
        p.wait_for_function("() => !document.getElementById('live').hidden")
        msg = p.inner_text("#live")
        if f"{bad} is not a level" not in msg or p.locator(f"#crit-{c['id']} input:checked").count():
            raise AssertionError(f"key {bad} on scale {c['scale']}: expected a refusal and no level, found {msg!r}")
        self.log.events.append(f"key {bad} refused: {msg}")
        self._state("out-of-scale")

    def _highlights(self) -> None:
        p = self.page
        if not p.locator(".hl-view:not([hidden]) mark").count():
            return
        p.keyboard.press("]")
        p.keyboard.press("]")
        p.wait_for_function("() => document.querySelector('mark.current') !== null")
        inside = p.evaluate("""() => { const m = document.querySelector('mark.current');
            const e = document.getElementById('evidence').getBoundingClientRect(), r = m.getBoundingClientRect();
            return r.top >= e.top - 1 && r.bottom <= e.bottom + 1 && r.top >= 0 && r.bottom <= window.innerHeight; }""")
        if not inside:
            raise AssertionError("the current highlight is not scrolled into view (evidence pane and window)")
        self.log.events.append("highlights: ] moved to the second highlight, scrolled into view")
        self._state("highlight")

    def _reload_mid_item(self, cid: str, level: str) -> None:
        p = self.page
        p.reload()
        p.wait_for_load_state("load")
        if not p.is_checked(f"#crit-{cid} input[value='{level}']"):
            raise AssertionError("the draft's level did not come back after a reload")
        if "restored" not in p.inner_text("#live"):
            raise AssertionError("the page did not say the draft was restored")
        self.log.events.append("reload mid-item: draft restored")
        self._state("reloaded")

    def _network_drop(self) -> None:
        self._drop_submits = True
        try:
            self._dropped_submit_is_reported()
        finally:
            self._drop_submits = False

    def _dropped_submit_is_reported(self) -> None:
        p = self.page
        p.keyboard.press("s")
        try:
            p.wait_for_function("() => document.getElementById('live').textContent.includes('No connection')")
        except Exception as e:  # say what the page did instead, so a failure can be read from its message
            state = p.evaluate("() => ({live: document.getElementById('live').textContent, "
                               "valid: document.getElementById('score-form').checkValidity(), "
                               "focus: document.activeElement && document.activeElement.tagName})")
            raise AssertionError(f"no 'No connection' message after a dropped submit: requests dropped {self.dropped}, "
                                 f"page {p.url}, state {state}") from e
        draft = p.evaluate("() => localStorage.getItem('rs-draft:' + document.getElementById('score-form').dataset.item)")
        if not draft or '"levels"' not in draft:
            raise AssertionError("no local draft after a network failure")
        if "/items/" not in p.url:
            raise AssertionError("the page was replaced on a network failure")
        self.log.events.append("network drop on submit: message shown, draft kept")
        self._state("network-drop")


def run_shift(page: Any, base: str, api_key: str, items: int, **kw: Any) -> ShiftLog:
    """Log in and score ``items`` items, claiming the first from the queue page."""
    s = Shift(page, base, **kw)
    s.login(api_key)
    s.claim()
    for i in range(items):
        s.score_item(i)
    return s.log
