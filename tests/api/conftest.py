"""API fixtures: a small real model trained once per session, and a fresh app + store per test.

The model is trained on 80 synthetic demo reflections (``scoring.demo.make_reflections``) with the real
bundled encoder, so every API test scores through the real pipeline; the encoder loads once per
session (``models.encoder.get_encoder`` caches per cache dir, shared by all apps here).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from api_support import Api, make_api  # noqa: E402


@pytest.fixture(scope="session")
def api_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-home")


@pytest.fixture(scope="session")
def api_model_dir(api_home: Path, request: pytest.FixtureRequest) -> Path:
    """A trained checking-for-understanding model (ensemble scorers; 80 rows, min 20 per criterion).

    Kept in pytest's cache dir keyed by the rubric fingerprint and the demo banks, so later sessions
    reuse it (training costs ~20 s on 2 cores); ``pytest --cache-clear`` retrains.
    """
    import hashlib

    import models.scorers
    import scoring.train
    from models.artifact import list_versions
    from scoring.demo import BANKS

    # retrain when the demo data or the training/scorer code changes (a pickled scorer must match its class)
    src = b"".join(Path(m.__file__).read_bytes() for m in (models.scorers, scoring.train))  # type: ignore[arg-type]
    tag = hashlib.sha256(BANKS.read_bytes() + src + b"80/20/v1").hexdigest()[:12]
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cached = Path(cache.mkdir(f"api-model-{tag}")) if cache is not None else api_home / "model"
    cached.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers share the cache: one trains, the others wait for it and reuse its model
    with (cached.parent / f"api-model-{tag}.lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if not (list_versions(cached) and (cached / "LATEST").exists()):
                _train_demo_model(api_home, cached)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return cached


def _train_demo_model(api_home: Path, cached: Path) -> None:
    from models.artifact import save_model
    from models.encoder import get_encoder
    from rubrics import load_rubric
    from scoring.demo import DEMO_RUBRIC, write_demo
    from scoring.ingest import ColumnMap, infer_columns, read_records
    from scoring.train import train_model

    train_csv, _ = write_demo(api_home / "demo", n_train=80, n_backlog=5)
    rubric = load_rubric(DEMO_RUBRIC)
    cols = infer_columns(rubric, ColumnMap(id="id", scores={c.id: c.id for c in rubric.criteria}))
    records = list(read_records(train_csv, rubric, cols))
    enc = get_encoder("all-MiniLM-L6-v2", api_home / "cache")
    res = train_model(rubric, records, enc, min_labelled=20)
    save_model(res.model, cached, res.metrics, res.data_hash)


@pytest.fixture
def api(tmp_path: Path, api_home: Path, api_model_dir: Path) -> Iterator[Api]:
    a = make_api(f"sqlite:///{tmp_path / 'api.db'}", api_home, api_model_dir)
    yield a
    a.client.close()
    a.store.close()


@pytest.fixture
def api_factory(tmp_path: Path, api_home: Path, api_model_dir: Path) -> Iterator[Any]:
    """Build apps with other settings or a routing policy: ``api_factory(policy=..., lease_seconds=1)``."""
    made: list[Api] = []

    def build(policy: Any = None, url: str | None = None, **settings: Any) -> Api:
        a = make_api(url or f"sqlite:///{tmp_path / f'api{len(made)}.db'}", api_home, api_model_dir, policy,
                     **settings)
        made.append(a)
        return a

    yield build
    for a in made:
        a.client.close()
        a.store.close()

