"""Helpers for the API tests (imported by conftest and the tests; pytest puts this folder on sys.path)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient


def expect_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    """Assert ``r`` is an ``application/problem+json`` answer with this status and code; return its body."""
    assert r.status_code == status, f"expected {status} {code}, found {r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


def wait_for_job(api: Any, job_id: int, who: str = "issuer") -> dict[str, Any]:
    """Poll a batch job until it has ended: done, failed or cancelled (fails the test after 30 s)."""
    import time

    for _ in range(300):
        j: dict[str, Any] = api.client.get(f"/batch-jobs/{job_id}", headers=api.h(who)).json()
        if j["status"] in ("done", "failed", "cancelled"):
            return j
        time.sleep(0.1)
    raise AssertionError(f"batch job {job_id} did not finish: {j}")


def reflection(i: int) -> str:
    from scoring.demo import make_reflections

    return make_reflections(i + 1, seed=99)[i]["reflection"]


@dataclass
class Api:
    """A running app (TestClient) with one key per role, and helpers that make tests read as specs."""

    client: TestClient
    app: Any
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def store(self) -> Any:
        return self.app.state.ctx.store

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def submit(self, ext: str, text: str | None = None, who: str = "issuer", **kw: Any) -> Any:
        body = {"rubric_id": "checking-for-understanding", "external_id": ext,
                "evidence": {"reflection": text if text is not None else reflection(abs(hash(ext)) % 40)}}
        return self.client.post("/submissions", json=body, headers={**self.h(who), **kw.pop("headers", {})}, **kw)

    def claim(self, who: str = "alice", highlights: int = 0) -> Any:
        return self.client.post("/queue/claim", headers=self.h(who), params={"highlights": highlights})

    def score_all(self, view: dict[str, Any], who: str = "alice", level: int | None = None) -> Any:
        scores = {c["id"]: {"score": c["levels"][-1]["score"] if level is None else level,
                            "rationale": f"{who} read it"} for c in view["criteria"]}
        return self.client.post(f"/queue/items/{view['id']}/scores", headers=self.h(who),
                                json={"lease_token": view["lease_token"], "scores": scores})


def make_api(url: str, home: Path, model_dir: Path, policy: Any = None, **settings: Any) -> Api:
    from api import create_app
    from scoring.settings import Settings
    from scoring.store import keys

    s = Settings(home=home, database_url=url, cache_dir=home / "cache", **settings)
    app = create_app(s, model_dir=model_dir, policy=policy)
    api = Api(TestClient(app, raise_server_exceptions=False), app)
    for name, role in (("admin", "admin"), ("issuer", "issuer"), ("issuer2", "issuer"),
                       ("researcher", "researcher"), ("alice", "assessor"), ("bob", "assessor")):
        api.keys[name] = keys.create_key(app.state.ctx.store, name, role)[1]
    return api


def double_policy() -> Any:
    """Every criterion to two blind raters (double_rate 1)."""
    routing = pytest.importorskip("scoring.policy")
    return routing.RoutingPolicy(policy_version="test-double", double_rate=1.0, audit_rate=0.0)


def audit_policy() -> Any:
    """Every criterion auto-accepted (threshold 0) and then sampled for a blind audit (audit_rate 1)."""
    routing = pytest.importorskip("scoring.policy")
    crit = {c: {"min_confidence": 0.0} for c in ("questioning", "adjusting", "self_assessment")}
    return routing.RoutingPolicy(policy_version="test-audit", double_rate=0.0, audit_rate=1.0, criteria=crit)
