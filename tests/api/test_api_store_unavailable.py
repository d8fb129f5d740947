"""The database down, full or locked mid-request: the API answers 503 `store_unavailable` problem+json with
`Retry-After`, logs one line (no traceback, no SQL or parameters), records nothing, and serves again as soon
as the database is back. `/healthz` still answers; `/readyz` says the database is unreachable."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from scoring.settings import Settings
from scoring.store import Store, keys


def test_a_database_that_stops_answering_is_503_store_unavailable_and_nothing_is_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(f"sqlite:///{tmp_path / 'api.db'}")
    _, admin = keys.create_key(store, "root", "admin")
    _, assessor = keys.create_key(store, "ana", "assessor")
    app = create_app(Settings(home=tmp_path), store=store, resume_jobs=False)
    client = TestClient(app, raise_server_exceptions=False)
    working = store.engine
    (tmp_path / "a-file").write_text("not a folder")
    store.engine = sa.create_engine(f"sqlite:///{tmp_path / 'a-file' / 'gone.db'}")  # cannot be opened: "down"
    caplog.set_level(logging.INFO)
    try:
        for method, path, headers, body in [
                ("POST", "/keys", {"X-API-Key": admin}, {"name": "ben", "role": "assessor"}),
                ("POST", "/queue/claim", {"X-API-Key": assessor}, None),
                ("GET", "/keys", {"X-API-Key": admin}, None)]:
            r = client.request(method, path, headers=headers, json=body)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["retry-after"].isdigit()
            problem = r.json()
            assert problem["code"] == "store_unavailable" and "not completed" in problem["detail"], problem
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "unreachable" in ready.json()["detail"]
    finally:
        store.engine = working
    failures = [rec for rec in caplog.records if "store unavailable" in rec.getMessage()]
    assert len(failures) == 3 and all(rec.exc_info is None for rec in failures)
    assert all("\n" not in rec.getMessage() and "SQL" not in rec.getMessage() for rec in failures)
    # back up: nothing of the failed requests was recorded, the log verifies, requests are served again
    assert [k.name for k in keys.list_keys(store)] == ["root", "ana"]
    assert store.verify_audit().ok
    assert client.post("/keys", headers={"X-API-Key": admin}, json={"name": "ben", "role": "assessor"}).status_code == 201
    store.close()


def test_every_operation_but_healthz_documents_503() -> None:
    from api.app import create_app as make

    doc = make(Settings(home=Path("/nonexistent-home")), store=Store("sqlite://"), resume_jobs=False).openapi()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert ("503" in op["responses"]) == (path != "/healthz"), (method, path)
