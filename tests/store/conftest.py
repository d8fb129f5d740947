"""Store fixtures: every store test runs on SQLite and on the real PostgreSQL (fresh schema per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rubrics.schema import Rubric, parse_rubric
from scoring.store import Store

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    backend = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    yield request.getfixturevalue("pg_url")


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
