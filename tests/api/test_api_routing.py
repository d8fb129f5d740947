"""POST /routing/apply: after a restart under a newer policy, the submissions nobody has started take its routes."""

from __future__ import annotations

from typing import Any

from api_support import Api, expect_problem, reflection
from fastapi.testclient import TestClient

from scoring.store import queue


def _auto_policy():  # type: ignore[no-untyped-def]
    """Every criterion auto-accepted, nothing audited or double-scored."""
    from scoring.policy import RoutingPolicy

    crit = {c: {"min_confidence": 0.0} for c in ("questioning", "adjusting", "self_assessment")}
    return RoutingPolicy(policy_version="test-auto", double_rate=0.0, audit_rate=0.0, criteria=crit)


def _restarted(before: Api, url: str, home: Any, model_dir: Any, policy: Any) -> Api:
    """The same store and keys, served again under ``policy``."""
    from api import create_app
    from scoring.settings import Settings

    app = create_app(Settings(home=home, database_url=url, cache_dir=home / "cache"), model_dir=model_dir, policy=policy)
    return Api(TestClient(app, raise_server_exceptions=False), app, dict(before.keys))


def test_a_policy_served_after_the_backlog_arrived_takes_charge_of_what_nobody_started(  # type: ignore[no-untyped-def]
    api_factory, tmp_path, api_home, api_model_dir
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    before = api_factory(url=url)  # no policy: every criterion goes to a person
    for i in range(8):
        assert before.submit(f"s-{i}", reflection(i)).status_code == 201
    held = before.client.post("/queue/claim", headers=before.h("alice"))
    assert held.status_code == 200, held.text
    open_before = before.client.get("/queue/stats", headers=before.h("alice")).json()["open"]
    assert open_before == 7

    after = _restarted(before, url, api_home, api_model_dir, _auto_policy())  # the server restarted with a policy
    body = {"rubric_id": "checking-for-understanding"}
    dry = after.client.post("/routing/apply", headers=after.h("admin"), json={**body, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["rerouted"] == 7 and after.client.get("/queue/stats", headers=after.h("alice")).json()["open"] == 7
    r = after.client.post("/routing/apply", headers=after.h("admin"), json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["rerouted"], got["in_progress"], got["policy_version"]) == (7, 1, "test-auto")
    assert got["routes_before"] == {"human": 21} and got["routes_after"]["auto"] > 0
    waiting = after.client.get("/queue/stats", headers=after.h("alice")).json()["open"]
    assert waiting < open_before
    left = [it for s in after.store.submissions() for it in queue.items_for_submission(after.store, s.id)
            if it.status == "open"]
    assert all("credential decision" in it.reason for it in left)  # only borderline decisions still ask a person
    assert queue.item(after.store, held.json()["id"]).status == "claimed"  # alice keeps what she holds
    assert after.store.verify_audit().ok
    after.client.close()
    after.store.close()


def test_applying_refuses_in_words(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory()  # no policy served
    body = {"rubric_id": "checking-for-understanding"}
    p = expect_problem(api.client.post("/routing/apply", headers=api.h("admin"), json=body), 422, "invalid_request")
    assert "no routing policy serves rubric checking-for-understanding" in p["detail"]
    expect_problem(api.client.post("/routing/apply", headers=api.h("alice"), json=body), 403, "forbidden")
    expect_problem(api.client.post("/routing/apply", headers=api.h("admin"), json={**body, "extra": 1}), 422,
                   "validation_error")
