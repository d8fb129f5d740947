"""Shared fixtures: the real bundled encoder and a small model trained once per session.

Tests never reach a hub: HF_HUB_OFFLINE is forced before anything imports transformers.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import functools  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

PG_URL = os.environ.get("SCORING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@functools.lru_cache(maxsize=1)
def pg_skip_reason() -> str | None:
    """Why PostgreSQL tests must skip (None when a server answers at PG_URL)."""
    from scoring.store.engine import unreachable

    return unreachable(PG_URL)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test (skips with the reason when no server answers)."""
    why = pg_skip_reason()
    if why:
        pytest.skip(why)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def encoder_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def encoder(encoder_cache: Path):
    from models.encoder import get_encoder

    return get_encoder("all-MiniLM-L6-v2", encoder_cache)


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from scoring.demo import write_demo

    return write_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory, demo_files: tuple[Path, Path], encoder) -> Path:
    """A real model trained on the synthetic demo reflections, saved as a versioned artifact."""
    from models.artifact import save_model
    from rubrics import load_rubric
    from scoring.demo import DEMO_RUBRIC
    from scoring.ingest import ColumnMap, infer_columns, read_records
    from scoring.train import train_model

    rubric = load_rubric(DEMO_RUBRIC)
    cols = infer_columns(rubric, ColumnMap(id="id", scores={c.id: c.id for c in rubric.criteria}))
    records = list(read_records(demo_files[0], rubric, cols))
    res = train_model(rubric, records, encoder)
    out = tmp_path_factory.mktemp("models")
    save_model(res.model, out, res.metrics, res.data_hash)
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium shared by one browser test module (see tests/browser_support.py)."""
    from browser_support import launch_chromium

    yield from launch_chromium()
