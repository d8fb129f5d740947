"""Which model scores a rubric, and changing it: the model registry's use cases.

The registry's promoted model wins over a served ``--model`` directory, so promoting a version (CLI or
API) changes what the next submission is scored with, without a restart.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from models.artifact import ScoringModel, load_model
from scoring.errors import ModelUnavailable
from scoring.settings import Settings
from scoring.store import ModelRecord, Store

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
        self.policies_logged: set[tuple[str, float]] = set()  # policy.yaml (path, mtime) put in service here

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

    def version_dir(self, rubric_id: str) -> Path | None:
        """The directory of the model version that scores ``rubric_id`` now (the registry's promoted one,
        else the served ``--model``'s), where that model's own routing policy may be kept."""
        rec = self._promoted_record(rubric_id)
        if rec is not None:
            return Path(rec.path)
        d = self.default
        if d is not None and d.rubric.id == rubric_id and self.model_dir is not None:
            from models.artifact import resolve_version_dir

            return resolve_version_dir(self.model_dir, d.version)
        return None

    def loaded(self) -> list[str]:
        return sorted({m.version for m in self._by_path.values()})


def resolve_version(store: Store, models: ModelProvider, rubric_id: str, version: int | None) -> int:
    """The named version, else the version a model serves for the rubric, else the newest registered one."""
    if version is not None:
        store.rubric(rubric_id, version)  # NotFound (cached by the store after the first read)
        return version
    newest = store.rubric(rubric_id).version  # always asked: NotFound for an unknown rubric
    served = models.served_version(rubric_id)
    if served is not None:
        store.rubric(rubric_id, served)  # the served model's rubric must be registered too
        return served
    return newest


def promote_model(store: Store, version: str, *, actor: str, models: ModelProvider | None = None) -> ModelRecord:
    """Promote a registered version (the previous one retires, the rubric's suspensions lift, both audited);
    a serving process forgets its cached lookup so the next submission is scored with it."""
    rec = store.promote_model(version, actor=actor)
    if models is not None:
        models.invalidate()
    return rec


def serve_model_dir(store: Store, models: ModelProvider) -> ScoringModel | None:
    """Load the served ``--model`` directory and register its rubric and version (as a candidate)."""
    m = models.load_default()
    if m is not None:
        from models.artifact import resolve_version_dir

        store.register_rubric(m.rubric)
        if m.version not in {r.version for r in store.models()}:
            store.register_model(m.version, resolve_version_dir(models.model_dir, m.version),  # type: ignore[arg-type]
                                 card={"model_version": m.version}, rubric_id=m.rubric.id)
    return m


def policies_by_rubric(store: Store, models: ModelProvider, policies: Any) -> dict[str | None, Any]:
    """Which routing policy routes which rubric, so one server serves several rubrics, each with its own.

    A policy belongs to the rubric it names (``rubric_id``), else to the rubric of the model it was tuned
    for (``model_version``, looked up in the model registry or the served ``--model``), else to the served
    model's rubric; with no model served either, it routes every rubric (key ``None``). A rubric with no
    policy routes every criterion to a person; a policy whose model is not the one scoring its rubric
    refuses that rubric's submissions only (``RoutingPolicy.check_model``).
    """
    from scoring.errors import NotFound, PolicyError

    if policies is None:
        return {}
    items = list(policies) if isinstance(policies, list | tuple) else [policies]
    out: dict[str | None, Any] = {}
    default = models.default
    for p in items:
        rubric: str | None = getattr(p, "rubric_id", None)
        mv = getattr(p, "model_version", None)
        if rubric is None and mv is not None:
            if default is not None and default.version == mv:
                rubric = default.rubric.id
            else:
                try:
                    rubric = store.model(mv).rubric_id
                except NotFound:
                    raise PolicyError(f"policy {p.policy_version} was tuned for model {mv}, which is neither served "
                                      "(--model) nor registered; register the model or name the policy's rubric_id") from None
        if rubric is None and default is not None:
            rubric = default.rubric.id
        if rubric in out:
            raise PolicyError(f"two policies route rubric {rubric or '(every rubric)'}: {out[rubric].policy_version} "
                              f"and {p.policy_version}; give each rubric one policy")
        out[rubric] = p
    return out


POLICY_FILE = "policy.yaml"  # a model version's own routing policy, kept beside it in its directory
_policy_files: dict[tuple[str, float], Any] = {}


def registry_policy(models: ModelProvider, rubric_id: str) -> Any | None:
    """The routing policy kept with the model that scores ``rubric_id`` (``<version dir>/policy.yaml``,
    e.g. ``scoring calibrate --out MODEL_DIR/VERSION/policy.yaml``), read again when the file changes; None
    when there is none. Promoting a version with its policy changes the routing without a restart.

    Each file version (path, mtime) this server starts routing with is logged as ``policy_activated``
    (as ``--policy`` is at startup): the thresholds in force when a score was auto-accepted must be
    answerable from the audit log, whichever door the policy came in by. ``record_policy`` itself skips
    a policy that is already the latest logged for the rubric (a restart, a touched but unchanged file)."""
    from scoring.policy import load_policy
    from scoring.store.policy_log import record_policy

    vdir = models.version_dir(rubric_id)
    if vdir is None:
        return None
    f = vdir / POLICY_FILE
    try:
        key = (str(f), f.stat().st_mtime)
    except OSError:
        return None
    if key not in _policy_files:
        _policy_files[key] = load_policy(f)
    policy = _policy_files[key]
    if key not in models.policies_logged:
        record_policy(models.store, policy, by="serve", rubric_id=rubric_id)
        models.policies_logged.add(key)
    return policy
