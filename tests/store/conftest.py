"""Store fixtures: every store test runs on SQLite and on the real PostgreSQL (fresh schema per test)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from rubrics.schema import Rubric, parse_rubric
from scoring.store import Store

PG_URL = os.environ.get("SCORING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        eng = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(sa.text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server answers"
        return f"no PostgreSQL answers at {PG_URL}: {type(exc).__name__}"


_PG_SKIP = _pg_available()


BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    backend = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
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


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    try:
        yield s
    finally:
        s.close()


def make_rubric(rubric_id: str = "obs", version: int = 1, max_score: int = 3, title: str = "Observation") -> Rubric:
    """A two-criterion rubric on a 0..max_score scale."""
    return parse_rubric({
        "id": rubric_id, "version": version, "title": title, "evidence": ["text"],
        "criteria": [
            {"id": "questioning", "title": "Questioning", "scale": {"min": 0, "max": max_score}},
            {"id": "feedback", "title": "Feedback", "scale": {"min": 0, "max": max_score}},
        ],
    })


@pytest.fixture(name="make_rubric")
def _make_rubric_fixture():  # type: ignore[no-untyped-def]
    return make_rubric


@pytest.fixture
def rubric(store: Store) -> Rubric:
    """The two-criterion rubric, registered in the store."""
    r = make_rubric()
    store.register_rubric(r)
    return r
