"""``scoring bench assessor``: an assessor's shift driven in Chromium against a real server, timed per action.

A fresh SQLite store, a real ``scoring serve`` process (uvicorn, the demo model or ``--model``) on loopback,
``items`` submissions mixing reflections and WebVTT/SRT transcripts, and headless Debian Chromium driven by
Playwright through :mod:`eval.assessor_shift`: the same keyboard-only shift the browser tests script,
including an accept-machine round, a reload, a network drop and an expired lease. Figures are milliseconds
per assessor action (claim, select, accept, next, submit): browser round-trip and rendering, no thinking
time. Target: p95 < 300 ms.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from eval.assessor_shift import CHROMIUM
from eval.assessor_shift import CHROMIUM_ARGS as ARGS

TARGET_P95_MS = 300.0


def _pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(xs), q)), 1) if xs else float("nan")


def run(*, model: Path | None = None, out: Path = Path("bench-out/assessor"), items: int = 20,
        viewport: tuple[int, int] = (1366, 768), log: Callable[[str], None] = print) -> dict[str, Any]:
    import sqlalchemy as sa
    from playwright.sync_api import sync_playwright

    from eval.assessor_shift import run_shift, shift_evidence
    from eval.bench_api import ensure_model
    from eval.serving import start_server
    from scoring.store import Store, keys
    from scoring.store.clock import now
    from scoring.store.service_tables import queue_items

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    out.mkdir(parents=True, exist_ok=True)
    model_dir = ensure_model(model, out, log)
    db_path = Path(tempfile.mkdtemp(prefix="bench-assessor-", dir=out)) / "bench.db"
    url = f"sqlite:///{db_path}"
    store = Store(url)
    issuer = keys.create_key(store, "bench-issuer", "issuer")[1]
    assessor = keys.create_key(store, "bench-assessor", "assessor")[1]
    server = start_server(db_url=url, model_dir=model_dir, out=out, cache_dir=db_path.parent / "embedding-cache",
                          log=log)
    base = server.base

    def expire(item_id: int) -> None:  # the lease runs out (the store's clock), as after a long break
        with store.write() as tx:
            tx.conn.execute(sa.update(queue_items).where(queue_items.c.id == item_id)
                            .values(lease_expires=now() - timedelta(seconds=5)))

    try:
        server.wait_ready()
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {issuer}"}, timeout=60) as c:
            for ext, text in shift_evidence(items):
                c.post("/submissions", json={"rubric_id": "checking-for-understanding", "external_id": ext,
                                             "evidence": {"reflection": text}}).raise_for_status()
        log(f"{items} submissions queued; shift at {viewport[0]}x{viewport[1]} in Chromium ...")
        load_before = os.getloadavg()[0]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}).new_page()
            t0 = time.perf_counter()
            shift = run_shift(page, base, assessor, items, expire=expire)
            wall = time.perf_counter() - t0
            browser.close()
        load_after = os.getloadavg()[0]
    finally:
        server.stop()
        store.close()
    ms = shift.ms()
    per = {k: {"n": len(v), "median_ms": _pct([1000 * x for x in v], 50), "p95_ms": _pct([1000 * x for x in v], 95)}
           for k, v in shift.timings.items()}
    res = {"bench": "assessor", "items": items, "viewport": f"{viewport[0]}x{viewport[1]}", "actions": len(ms),
           "page_ms_median": _pct(ms, 50), "page_ms_p95": _pct(ms, 95), "page_ms_max": _pct(ms, 100),
           "per_action": per, "shift_s": round(wall, 1), "events": shift.events,
           "loadavg_1m_before": round(load_before, 2), "loadavg_1m_after": round(load_after, 2),
           "target_p95_ms": TARGET_P95_MS}
    res["pass"] = bool(_pct(ms, 95) < TARGET_P95_MS)
    return res
