"""A trained scoring model on disk: one directory per version, with a model card.

Layout of ``MODEL_DIR``::

    MODEL_DIR/
      <version>/            one immutable version
        card.json           rubric id+version+fingerprint, training-data hash, metrics, created time,
                            encoder version, scorer kind per criterion, library versions
        rubric.yaml         the rubric the model was trained for (exact copy)
        scorers.joblib      {criterion id: fitted scorer}; encoder weights are NOT inside
      LATEST                name of the newest version (what ``load`` picks by default)

Why versions are directories that never change: a machine score records its model version, and an
auditor must be able to load exactly that model months later.
Only load model directories you trust: scorers are pickled scikit-learn objects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import yaml

from models.contract import CriterionScorer
from models.encoder import DEFAULT_BATCH_SIZE, Encoder, get_encoder
from rubrics import Rubric, load_rubric


class ArtifactError(RuntimeError):
    """A model directory that is missing, incomplete, or for another rubric."""


@dataclass
class ScoringModel:
    """Everything needed to pre-score a rubric's criteria."""

    rubric: Rubric
    scorers: dict[str, CriterionScorer]
    encoder: Encoder
    version: str = ""
    card: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, criterion_id: str, texts: list[str]) -> np.ndarray:
        return self.scorers[criterion_id].predict_proba(texts)


def new_version(rubric: Rubric, data_hash: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{rubric.id}-v{rubric.version}-{stamp}-{data_hash[:8]}"


def _library_versions() -> dict[str, str]:
    import sentence_transformers
    import sklearn
    import torch

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "sentence-transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
    }


def check_rubric_home(model_dir: str | Path, rubric_id: str) -> None:
    """Refuse a model directory that holds another rubric's models: one directory is one credential's
    model history, and ``scoring score --model DIR`` / ``serve`` load its LATEST. Training rubric B into A's
    directory (a wrong ``--rubric`` file) would silently make every later run score A's evidence on B's criteria."""
    root = Path(model_dir)
    latest = root / "LATEST"
    if not latest.is_file():
        return
    version = latest.read_text(encoding="utf-8").strip()
    try:
        held = (read_card(root / version).get("rubric") or {}).get("id")
    except ArtifactError:
        return  # a damaged LATEST is reported where it is loaded
    if held is not None and held != rubric_id:
        raise ArtifactError(f"{root} holds models of rubric {held!r} (LATEST {version}), not {rubric_id!r}: check "
                            f"--rubric, or train rubric {rubric_id!r} into another --out directory")


def save_model(model: ScoringModel, model_dir: str | Path, metrics: dict[str, Any], data_hash: str, *,
               make_latest: bool = True) -> Path:
    """Write a new version atomically (a temp dir renamed into place) and point LATEST at it (unless
    ``make_latest`` is off: e.g. a calibration of an older version must not replace a newer model)."""
    root = Path(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    check_rubric_home(root, model.rubric.id)
    version = model.version or new_version(model.rubric, data_hash)
    target = root / version
    if target.exists():
        raise ArtifactError(f"model version {version} already exists in {root}; versions are immutable")
    card = {
        "model_version": version,
        "rubric": {"id": model.rubric.id, "version": model.rubric.version, "fingerprint": model.rubric.fingerprint()},
        "training_data_sha256": data_hash,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "encoder": model.encoder.version,
        "scorers": {cid: type(s).__name__ for cid, s in model.scorers.items()},
        "metrics": metrics,
        "libraries": _library_versions(),
        **{k: v for k, v in model.card.items() if k not in {"model_version", "metrics"}},
    }
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    (tmp / "rubric.yaml").write_text(
        yaml.safe_dump(model.rubric.model_dump(mode="json"), sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    joblib.dump(model.scorers, tmp / "scorers.joblib", compress=3)
    (tmp / "card.json").write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, target)
    if make_latest:
        latest_tmp = root / ".LATEST.tmp"
        latest_tmp.write_text(version + "\n")
        os.replace(latest_tmp, root / "LATEST")
    model.version, model.card = version, card
    return target


def read_card(version_dir: str | Path) -> dict[str, Any]:
    """A version's model card, or an ArtifactError naming the file when it is missing or damaged."""
    path = Path(version_dir) / "card.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"model card {path} is unreadable ({exc}); the version is damaged: retrain or restore it") from None
    if not isinstance(card, dict) or "model_version" not in card:
        raise ArtifactError(f"model card {path} has no model_version; the version is damaged: retrain or restore it")
    return card


def list_versions(model_dir: str | Path) -> list[str]:
    root = Path(model_dir)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "card.json").exists()) if root.exists() else []


def resolve_version_dir(model_dir: str | Path, version: str | None = None) -> Path:
    """A version directory: ``model_dir`` itself if it is one, else the named or LATEST version inside it."""
    root = Path(model_dir)
    if (root / "card.json").exists():
        return root
    if not root.exists():
        raise ArtifactError(f"model directory {root} does not exist; train one with `scoring train`")
    if version is None:
        latest = root / "LATEST"
        if not latest.exists():
            raise ArtifactError(f"{root} holds no trained model (no LATEST file); train one with `scoring train`")
        version = latest.read_text().strip()
    target = root / version
    if not (target / "card.json").exists():
        raise ArtifactError(f"model version {version!r} not found in {root}; available: {list_versions(root)}")
    return target


def load_model(
    model_dir: str | Path,
    version: str | None = None,
    cache_dir: str | Path | None = None,
    precision: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ScoringModel:
    """Load a version (default LATEST) and attach the encoder it was trained with."""
    vdir = resolve_version_dir(model_dir, version)
    for name in ("card.json", "rubric.yaml", "scorers.joblib"):
        if not (vdir / name).exists():
            raise ArtifactError(f"model version {vdir} is incomplete: {name} is missing")
    card = read_card(vdir)
    rubric = load_rubric(vdir / "rubric.yaml")
    enc_name = card.get("encoder_name", "all-MiniLM-L6-v2")
    encoder = get_encoder(enc_name, cache_dir, precision=precision, batch_size=batch_size)
    trained_prec = str(card.get("encoder", "")).rsplit(":", 1)[-1]
    if trained_prec in {"fp32", "bf16"} and precision == "auto" and trained_prec != encoder.precision:
        # Same weights, near-identical vectors; keep the machine's fast path but say so.
        card.setdefault("notes", []).append(f"trained with {trained_prec}, scoring with {encoder.precision}")
    try:
        scorers = joblib.load(vdir / "scorers.joblib")
    except Exception as exc:  # noqa: BLE001 - truncated, corrupt or from an incompatible library version
        raise ArtifactError(f"{vdir / 'scorers.joblib'} cannot be loaded ({type(exc).__name__}: {exc}); "
                            "the version is damaged or was saved by incompatible library versions") from None
    if not isinstance(scorers, dict):
        raise ArtifactError(f"{vdir / 'scorers.joblib'} does not hold a scorer per criterion")
    for s in scorers.values():
        s.encoder = encoder
    return ScoringModel(rubric=rubric, scorers=scorers, encoder=encoder, version=card["model_version"], card=card)


def data_hash(ids: list[str], texts: list[str], labels: dict[str, list[Any]]) -> str:
    """Order-independent hash of the training data (ids, evidence, human scores)."""
    rows = sorted(
        hashlib.sha256(
            json.dumps([i, t, {c: labels[c][k] for c in sorted(labels)}], default=str).encode("utf-8", "surrogatepass")
        ).hexdigest()
        for k, (i, t) in enumerate(zip(ids, texts, strict=True))
    )
    return hashlib.sha256("".join(rows).encode()).hexdigest()
