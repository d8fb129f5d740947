"""What every request needs, built once per app: the store, settings, scoring models and routing policy."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.batcher import Prescorer
from models.artifact import ScoringModel, load_model
from scoring.errors import ModelUnavailable
from scoring.settings import Settings
from scoring.store import Store

log = logging.getLogger("api")
PROMOTED_TTL = 2.0


class ModelProvider:
    """Scoring models by rubric, loaded lazily and kept: the registry's promoted model first, else the
    served ``--model`` directory when it was trained for that rubric version.

    Why the registry wins: ``POST /models/{version}/promote`` must change what the next submission is
    scored with, without a restart.
    """

    def __init__(self, store: Store, settings: Settings, model_dir: Path | None):
        self.store, self.settings, self.model_dir = store, settings, model_dir
        self._by_path: dict[str, ScoringModel] = {}
        self._lock = threading.Lock()
        self.default: ScoringModel | None = None
        self._promoted: dict[str, tuple[float, Any]] = {}  # rubric id -> (looked up at, record)

    def invalidate(self) -> None:
        """Forget cached registry lookups (called when a model is promoted through the API)."""
        self._promoted.clear()

    def _promoted_record(self, rubric_id: str) -> Any:
        # A promotion through this server invalidates at once; one made elsewhere (CLI, another
        # worker) is seen within PROMOTED_TTL seconds. Saves a registry query per submission.
        now = time.monotonic()
        hit = self._promoted.get(rubric_id)
        if hit is None or now - hit[0] > PROMOTED_TTL:
            hit = (now, self.store.promoted_model(rubric_id))
            self._promoted[rubric_id] = hit
        return hit[1]

    def _load(self, path: str | Path, version: str | None = None) -> ScoringModel:
        key = f"{path}::{version}"
        with self._lock:
            if key not in self._by_path:
                s = self.settings
                self._by_path[key] = load_model(path, version, cache_dir=s.resolved_cache_dir(),
                                                precision=s.encoder_precision, batch_size=s.batch_size)
            return self._by_path[key]

    def load_default(self) -> ScoringModel | None:
        """Load the served model directory (at startup, so the first request does not pay for it)."""
        if self.model_dir is not None:
            self.default = self._load(self.model_dir)
        return self.default

    def get(self, rubric_id: str, rubric_version: int) -> ScoringModel:
        rec = self._promoted_record(rubric_id)
        if rec is not None:
            m = self._load(rec.path, rec.version)
            if m.rubric.id == rubric_id and m.rubric.version == rubric_version:
                return m
        d = self.default
        if d is not None and d.rubric.id == rubric_id and d.rubric.version == rubric_version:
            return d
        have = [f"{m.rubric.key} ({m.version})" for m in {id(m): m for m in self._by_path.values()}.values()]
        raise ModelUnavailable(f"no scoring model for rubric {rubric_id}@{rubric_version}; loaded: {have or 'none'}. "
                               "Serve one with `scoring serve --model DIR` or promote a registered version")

    def served_version(self, rubric_id: str) -> int | None:
        """The rubric version a submission naming no version is scored under: the one a model serves.

        Why not simply the newest registered version: registering a new version (even an identical copy)
        before a model is trained for it would otherwise turn every such submission, resends included,
        into a 503.
        """
        rec = self._promoted_record(rubric_id)
        if rec is not None:
            m = self._load(rec.path, rec.version)
            if m.rubric.id == rubric_id:
                return m.rubric.version
        d = self.default
        return d.rubric.version if d is not None and d.rubric.id == rubric_id else None

    def loaded(self) -> list[str]:
        return sorted({m.version for m in self._by_path.values()})


@dataclass
class AppContext:
    settings: Settings
    store: Store
    models: ModelProvider
    policy: Any | None = None  # scoring.policy.RoutingPolicy when routing is available
    prescorer: Prescorer = field(default_factory=Prescorer)
    jobs: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="batch-job"))
    submit_locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)
    locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def submission_lock(self, rubric_id: str, external_id: str) -> threading.Lock:
        """One lock per (rubric, external id): two identical concurrent submissions score once."""
        with self.locks_guard:
            if len(self.submit_locks) > 10_000:
                self.submit_locks.clear()
            return self.submit_locks.setdefault((rubric_id, external_id), threading.Lock())
