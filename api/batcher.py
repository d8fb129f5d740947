"""Coalesce concurrent single-submission scoring into one model pass.

Why: on a small CPU, ten request threads each running the encoder on one text oversubscribe the cores
(every forward pass spins up its own intra-op threads) and pay the per-call overhead ten times. One
scoring thread that takes *everything queued at that moment* as a batch keeps the cores busy with one
pass at a time and adds no waiting: a lone request is scored at once, and requests arriving while a
pass runs form the next batch. Results are the same as scoring one by one (``prescore`` computes in
float64, so a row's probabilities agree to ~1e-16 whatever it is batched with: tests/scoring/test_prescore_rows.py).
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

from models.artifact import ScoringModel
from scoring.prescore import ScoredSubmission, prescore

log = logging.getLogger("api")


class Prescorer:
    def __init__(self, max_batch: int = 32):
        self.max_batch = max_batch
        self._q: queue.Queue[tuple[ScoringModel, str, dict[str, Any], Future[ScoredSubmission]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.items = 0

    def score(self, model: ScoringModel, external_id: str, evidence: dict[str, Any]) -> ScoredSubmission:
        self._ensure_thread()
        fut: Future[ScoredSubmission] = Future()
        self._q.put((model, external_id, evidence, fut))
        return fut.result()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="prescorer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            batch = [self._q.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            by_model: dict[int, list[Any]] = {}
            for entry in batch:
                by_model.setdefault(id(entry[0]), []).append(entry)
            for group in by_model.values():
                self._run(group)

    def _run(self, group: list[Any]) -> None:
        model = group[0][0]
        try:
            res = prescore(model, [g[1] for g in group], [g[2] for g in group])
        except Exception:  # noqa: BLE001 - isolate the bad request: score each alone
            if len(group) == 1:
                group[0][3].set_exception(_current())
                return
            for g in group:
                self._run([g])
            return
        self.batches += 1
        self.items += len(group)
        for g, r in zip(group, res, strict=True):
            g[3].set_result(r)


def _current() -> BaseException:
    import sys

    exc = sys.exc_info()[1]
    return exc if exc is not None else RuntimeError("prescore failed")
