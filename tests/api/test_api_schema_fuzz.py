"""The OpenAPI document is a true contract: schemathesis, every phase and every check, reports nothing.

Runs schemathesis' engine (examples, coverage, fuzzing and stateful phases; all checks: server errors,
undocumented statuses and content types, response schemas, positive/negative data, unsupported methods
and ``Allow``, ignored auth, use after free...) over every operation, DELETE included, with a throwaway
admin key, on SQLite and on PostgreSQL when one answers. The run is bounded by time (``max_time`` per
backend) so it stays a CI test. What the checks accept beyond schemathesis' defaults is listed, with the
reason, in ``schema_contract.CHECKS``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from api_support import make_api, reflection
from schema_contract import run_contract

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]
MAX_TIME = 30.0  # seconds of generated traffic per backend


@pytest.fixture(params=BACKENDS)
def fuzz_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, api_home: Path,
             api_model_dir: Path) -> Any:
    from scoring.badges import keygen

    url = (f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'api.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    priv, _ = keygen(tmp_path_factory.mktemp("issuer-key"))  # the credential endpoint is configured, as in service
    a = make_api(url, api_home, api_model_dir, credential_key=priv, credential_issuer_id="https://example.org/issuer")
    a.submit("fuzz-seed", reflection(1))  # something for small ids to find
    yield a
    a.client.close()
    a.store.close()


@pytest.mark.slow
def test_schemathesis_reports_nothing(fuzz_api: Any) -> None:
    from scoring.store import keys

    throwaway = keys.create_key(fuzz_api.store, f"fuzz-{secrets.token_hex(4)}", "admin")[1]
    res = run_contract(fuzz_api.app, {"Authorization": f"Bearer {throwaway}"}, max_examples=3, max_time=MAX_TIME)
    doc = fuzz_api.client.get("/openapi.json").json()
    every = {f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item}
    assert res.errors == [], "\n".join(res.errors[:5])
    assert not res.failures, f"{len(res.failures)} failures:\n" + "\n".join(res.failures[:8])
    assert {"examples", "coverage", "fuzzing", "stateful"} <= res.phases, res.phases
    assert "DELETE /keys/{name}" in res.operations and len(res.operations) >= 25, sorted(every - res.operations)
    assert res.statuses[200] + res.statuses[201] > 20, res.statuses  # the handlers were reached, not only 4xx


def test_405_names_the_allowed_methods_and_two_credentials_are_refused(api: Any) -> None:
    r = api.client.delete("/keys", headers=api.h("admin"))
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
    assert r.json()["code"] == "method_not_allowed"
    r = api.client.get("/batch-jobs/upload", headers=api.h("issuer"))  # a fixed path is not a job id
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    both = api.client.get("/keys", headers={**api.h("admin"), "X-API-Key": api.keys["admin"]})
    assert both.status_code == 400 and both.json()["code"] == "ambiguous_credentials"
    assert "exactly one header" in both.json()["detail"]


def test_the_document_states_edge_statuses_and_body_rules(api: Any) -> None:
    doc = api.client.get("/openapi.json").json()
    adj = doc["paths"]["/adjudications"]["post"]["responses"]
    assert {"400", "401", "403", "404", "413", "415", "422"} <= set(adj)
    assert all(set(r["content"]) == {"application/problem+json"} for c, r in adj.items() if c[0] == "4")
    rubric = doc["paths"]["/rubrics"]["post"]
    assert rubric["requestBody"]["content"]["application/json"]["schema"]["required"] == \
        ["id", "version", "title", "evidence", "criteria"]
    assert "200" in rubric["responses"]  # re-registering the identical version
    upload = doc["components"]["schemas"]["Body_upload_batch_jobs_upload_post"]["properties"]["file"]
    assert upload["x-filename-pattern"] == r"(?i)\.(csv|tsv|jsonl|parquet)$"
    assert "/batch-jobs/{job_id}" in doc["paths"]
