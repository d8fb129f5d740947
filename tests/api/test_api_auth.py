"""Auth as a specification: keys are hashed, sent two ways, and every denial is 401/403 problem+json."""

from __future__ import annotations

import sqlalchemy as sa

from scoring.store import keys
from scoring.store.service_tables import api_keys


def _is_problem(r, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, f"expected {status}, found {r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = r.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["detail"]


def test_health_endpoints_need_no_key(api) -> None:  # type: ignore[no-untyped-def]
    h = api.client.get("/healthz")
    assert h.json()["status"] == "ok"
    assert h.headers["server-timing"].startswith("app;dur="), "time inside the app, for latency diagnosis"
    ready = api.client.get("/readyz").json()
    assert ready["status"] == "ok" and ready["database"] == "sqlite" and ready["schema_revision"]
    assert ready["models_loaded"], "the served model is loaded at startup"


def test_missing_malformed_unknown_and_revoked_keys_are_401(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.get("/rubrics")
    _is_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    _is_problem(api.client.get("/rubrics", headers={"X-API-Key": "nonsense"}), 401, "unauthorized")
    forged = api.keys["admin"][:-4] + "AAAA"
    _is_problem(api.client.get("/rubrics", headers={"Authorization": f"Bearer {forged}"}), 401, "unauthorized")
    keys.revoke_key(api.store, "researcher")
    _is_problem(api.client.get("/rubrics", headers=api.h("researcher")), 401, "unauthorized")


def test_bearer_and_x_api_key_are_both_accepted(api) -> None:  # type: ignore[no-untyped-def]
    assert api.client.get("/rubrics", headers=api.h("admin")).status_code == 200
    assert api.client.get("/rubrics", headers={"X-API-Key": api.keys["admin"]}).status_code == 200


def test_only_a_salted_hash_of_the_key_is_stored(api) -> None:  # type: ignore[no-untyped-def]
    secret = api.keys["alice"].rsplit("_", 1)[1]
    with api.store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(api_keys))]
    assert rows and all(secret not in str(v) for r in rows for v in r.values())
    assert len({r["salt"] for r in rows}) == len(rows), "every key has its own salt"


def test_roles_are_enforced_with_403(api) -> None:  # type: ignore[no-untyped-def]
    c = api.client
    sub = api.submit("auth-1").json()
    cases = [
        ("alice", "post", "/submissions", {"json": {"rubric_id": "x", "external_id": "y", "evidence": {}}}),
        ("researcher", "get", f"/submissions/{sub['submission_id']}", {}),  # never evidence text
        ("issuer", "get", "/agreement", {}),
        ("researcher", "post", "/queue/claim", {}),
        ("issuer", "post", "/queue/claim", {}),
        ("alice", "get", "/models", {}),
        ("researcher", "post", "/models/x/promote", {}),
        ("issuer", "post", "/keys", {"json": {"name": "eve", "role": "admin"}}),
        ("alice", "get", "/adjudications/pending", {}),
        ("alice", "get", "/exports/scores", {}),
    ]
    for who, method, path, kw in cases:
        r = getattr(c, method)(path, headers=api.h(who), **kw)
        _is_problem(r, 403, "forbidden")
    assert c.get(f"/submissions/{sub['submission_id']}", headers=api.h("issuer")).status_code == 200
    assert c.get(f"/submissions/{sub['submission_id']}", headers=api.h("admin")).status_code == 200


def test_an_admin_key_may_not_rate_and_is_told_why(api) -> None:  # type: ignore[no-untyped-def]
    api.submit("auth-2")
    item = api.claim("alice").json()
    for method, path, kw in (("post", "/queue/claim", {}), ("get", f"/queue/items/{item['id']}", {}),
                             ("post", f"/queue/items/{item['id']}/scores",
                              {"json": {"lease_token": item["lease_token"], "scores": {}}}),
                             ("post", f"/queue/items/{item['id']}/release", {"json": {"lease_token": "x"}})):
        r = getattr(api.client, method)(path, headers=api.h("admin"), **kw)
        _is_problem(r, 403, "forbidden")
        detail = r.json()["detail"]
        assert detail.startswith("claiming, reading and scoring queue items needs an assessor key: scores are "
                                 "recorded under a person's name"), detail
        assert "key 'admin' has role 'admin'" in detail
    assert api.client.get("/queue/stats", headers=api.h("admin")).status_code == 200, "counts are not rating"


def test_admin_creates_a_key_shown_once_and_it_works(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.post("/keys", headers=api.h("admin"), json={"name": "carol", "role": "assessor"})
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    new = r.json()["key"]
    listed = api.client.get("/keys", headers=api.h("admin")).json()
    assert "carol" in {k["name"] for k in listed} and all("key" not in k for k in listed)
    assert api.client.get("/queue/stats", headers={"X-API-Key": new}).status_code == 200
    _is_problem(api.client.post("/keys", headers=api.h("admin"), json={"name": "carol", "role": "issuer"}),
                409, "conflict")
    assert api.client.delete("/keys/carol", headers=api.h("admin")).json()["revoked_at"]
    _is_problem(api.client.get("/queue/stats", headers={"X-API-Key": new}), 401, "unauthorized")


def test_another_issuers_submission_answers_like_an_unknown_one(api) -> None:  # type: ignore[no-untyped-def]
    sid = api.submit("mine").json()["submission_id"]
    unknown = api.client.get("/submissions/999999", headers=api.h("issuer2"))
    for path in (f"/submissions/{sid}", f"/submissions/{sid}/feedback"):
        foreign = api.client.get(path, headers=api.h("issuer2"))
        _is_problem(foreign, 404, "not_found")
        body, ref = foreign.json(), unknown.json()
        assert body["detail"] == ref["detail"].replace("999999", str(sid)) and "issuer" not in body["detail"]
    _is_problem(api.client.post(f"/submissions/{sid}/credential", headers=api.h("issuer2")), 404, "not_found")


def test_the_last_admin_key_cannot_be_revoked_and_key_changes_are_audited(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.delete("/keys/admin", headers=api.h("admin"))
    _is_problem(r, 409, "last_admin_key")
    assert "create another admin key first" in r.json()["detail"]
    assert api.client.get("/keys", headers=api.h("admin")).status_code == 200  # still in charge
    new = api.client.post("/keys", headers=api.h("admin"), json={"name": "root2", "role": "admin"}).json()["key"]
    assert api.client.delete("/keys/admin", headers={"X-API-Key": new}).status_code == 200
    _is_problem(api.client.delete("/keys/root2", headers={"X-API-Key": new}), 409, "last_admin_key")
    logged = [(e.event, e.payload["name"], e.payload["by"]) for e in api.store.audit_entries()
              if e.event in ("key_created", "key_revoked")]
    assert ("key_created", "root2", "admin") in logged and ("key_revoked", "admin", "root2") in logged
    assert api.store.verify_audit().ok

