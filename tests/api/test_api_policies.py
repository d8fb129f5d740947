"""One server, several rubrics, each with its own routing policy: a policy routes only its rubric, so a
server started with ``--policy`` still scores every other rubric's submissions (to a person), and refuses
only submissions of a rubric whose policy was tuned for another model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from api_support import expect_problem, reflection

from scoring.errors import PolicyError
from scoring.policy import RoutingPolicy
from scoring.usecases.registry import policies_by_rubric

RUBRIC = "checking-for-understanding"


def test_a_policy_for_another_rubric_leaves_this_rubrics_submissions_to_people(api_factory) -> None:  # type: ignore[no-untyped-def]
    other = RoutingPolicy(policy_version="talk-v1", rubric_id="accountable-talk", double_rate=1.0, audit_rate=0.0)
    api = api_factory(policy=other)
    r = api.submit("multi-1", reflection(1))
    assert r.status_code == 201, r.text
    body = r.json()
    assert {c["route"] for c in body["criteria"].values()} == {"human"} and body["policy_version"] is None
    assert api.app.state.ctx.policy_for("accountable-talk") is other


def test_each_rubric_is_routed_by_its_own_policy(api_factory) -> None:  # type: ignore[no-untyped-def]
    mine = RoutingPolicy(policy_version="cfu-double", rubric_id=RUBRIC, double_rate=1.0, audit_rate=0.0)
    other = RoutingPolicy(policy_version="talk-v1", rubric_id="accountable-talk")
    api = api_factory(policy=[mine, other])
    body = api.submit("multi-2", reflection(2)).json()
    assert {c["route"] for c in body["criteria"].values()} == {"double"} and body["policy_version"] == "cfu-double"


def test_only_the_rubric_whose_policy_fits_another_model_is_refused(api_factory) -> None:  # type: ignore[no-untyped-def]
    stale = RoutingPolicy(policy_version="cfu-old", rubric_id=RUBRIC, model_version="cfu-20250101-retired")
    api = api_factory(policy=stale)
    body = expect_problem(api.submit("multi-3", reflection(3)), 422, "invalid_policy")
    assert "cfu-20250101-retired" in body["detail"]


def test_policies_resolve_to_rubrics_by_name_model_or_served_model() -> None:
    served = SimpleNamespace(version="m-1", rubric=SimpleNamespace(id="served-rubric"))
    store = SimpleNamespace(model=lambda v: SimpleNamespace(rubric_id="registered-rubric") if v == "m-2" else
                            (_ for _ in ()).throw(__import__("scoring.errors").errors.NotFound(v)))
    models = SimpleNamespace(default=served)
    by_name = RoutingPolicy(policy_version="a", rubric_id="named")
    by_served = RoutingPolicy(policy_version="b", model_version="m-1")
    by_registry = RoutingPolicy(policy_version="c", model_version="m-2")
    got = policies_by_rubric(store, models, [by_name, by_served, by_registry])  # type: ignore[arg-type]
    assert got == {"named": by_name, "served-rubric": by_served, "registered-rubric": by_registry}
    with pytest.raises(PolicyError, match="neither served"):
        policies_by_rubric(store, models, RoutingPolicy(policy_version="d", model_version="m-404"))  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="two policies route rubric served-rubric"):
        policies_by_rubric(store, models, [by_served, RoutingPolicy(policy_version="e")])  # type: ignore[arg-type]
    assert policies_by_rubric(store, SimpleNamespace(default=None), RoutingPolicy(policy_version="f")) == {  # type: ignore[arg-type]
        None: RoutingPolicy(policy_version="f")}


def test_a_policy_kept_with_the_serving_model_routes_its_rubric_and_is_reread_when_it_changes(
        tmp_path, api_home, api_model_dir) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from api_support import make_api

    from scoring.policy import save_policy

    model_dir = tmp_path / "model"
    shutil.copytree(api_model_dir, model_dir)
    version = (model_dir / "LATEST").read_text().strip()
    api = make_api(f"sqlite:///{tmp_path / 'reg.db'}", api_home, model_dir)
    try:
        assert {c["route"] for c in api.submit("reg-1", reflection(1)).json()["criteria"].values()} == {"human"}
        save_policy(RoutingPolicy(policy_version="kept-with-model", model_version=version, double_rate=1.0,
                                  audit_rate=0.0), model_dir / version / "policy.yaml")
        body = api.submit("reg-2", reflection(2)).json()
        assert body["policy_version"] == "kept-with-model"
        assert {c["route"] for c in body["criteria"].values()} == {"double"}
    finally:
        api.client.close()
        api.store.close()


def test_a_policy_kept_with_the_serving_model_is_logged_when_it_comes_into_service_and_when_it_changes(
        tmp_path, api_home, api_model_dir) -> None:  # type: ignore[no-untyped-def]
    import os
    import shutil

    from api_support import make_api

    from scoring.policy import load_policy, save_policy
    from scoring.store.policy_log import policy_fingerprint

    model_dir = tmp_path / "model"
    shutil.copytree(api_model_dir, model_dir)
    version = (model_dir / "LATEST").read_text().strip()
    f = model_dir / version / "policy.yaml"
    api = make_api(f"sqlite:///{tmp_path / 'logged.db'}", api_home, model_dir)

    def logged() -> list[dict]:  # type: ignore[type-arg]
        return [e.payload for e in api.store.audit_entries() if e.event == "policy_activated"]

    try:
        save_policy(RoutingPolicy(policy_version="kept-v1", model_version=version, double_rate=1.0, audit_rate=0.0), f)
        assert api.submit("log-1", reflection(1)).json()["policy_version"] == "kept-v1"
        first = policy_fingerprint(load_policy(f))
        assert [(e["policy_version"], e["fingerprint"], e["rubric_id"]) for e in logged()] == [
            ("kept-v1", first, RUBRIC)]
        api.submit("log-2", reflection(2))  # the same file again: nothing new in the log
        assert len(logged()) == 1
        save_policy(RoutingPolicy(policy_version="kept-v2", model_version=version, double_rate=0.0, audit_rate=0.0), f)
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))  # a new mtime even on a coarse clock
        assert api.submit("log-3", reflection(3)).json()["policy_version"] == "kept-v2"
        second = policy_fingerprint(load_policy(f))
        assert second != first
        assert [(e["policy_version"], e["fingerprint"]) for e in logged()] == [("kept-v1", first), ("kept-v2", second)]
        assert api.store.verify_audit().ok
    finally:
        api.client.close()
        api.store.close()
