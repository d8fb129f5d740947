"""Every change that decides what runs without a person is in the audit chain."""

from __future__ import annotations

from scoring.policy import RoutingPolicy
from scoring.store import Store
from scoring.store.keys import create_key, revoke_key
from scoring.store.policy_log import record_policy


def _events(store: Store, *kinds: str) -> list[dict]:  # type: ignore[type-arg]
    return [e.payload | {"event": e.event} for e in store.audit_entries() if e.event in kinds]


def test_a_policy_put_into_service_is_logged_once_per_change(store: Store) -> None:
    p1 = RoutingPolicy(policy_version="p1", rubric_id="obs", audit_rate=0.1,
                       criteria={"questioning": {"min_confidence": 0.8}})
    assert record_policy(store, p1, by="serve") is not None
    assert record_policy(store, p1, by="serve") is None  # a restart with the same file logs nothing
    p2 = p1.model_copy(update={"criteria": {"questioning": p1.criteria["questioning"].model_copy(
        update={"min_confidence": 0.5})}})
    assert record_policy(store, p2, by="ops") is not None  # same version name, looser threshold: logged
    logged = _events(store, "policy_activated")
    assert [e["criteria"]["questioning"]["min_confidence"] for e in logged] == [0.8, 0.5]
    assert logged[1]["by"] == "ops" and logged[0]["fingerprint"] != logged[1]["fingerprint"]
    assert store.verify_audit().ok


def test_suspension_lifting_promotion_and_keys_are_logged(store: Store, rubric) -> None:
    store.suspend_automation("obs", "feedback", "drift")
    store.lift_suspension("obs", "feedback", by="ann")
    store.register_model("m-2", "/models/m-2", rubric_id="obs")
    store.suspend_automation("obs", "questioning", "drift")
    store.promote_model("m-2", actor="ann")  # a promotion lifts the rubric's suspensions, logged too
    create_key(store, "ops", "admin", by="cli")
    create_key(store, "ann", "assessor", by="ops")
    revoke_key(store, "ann", by="ops")
    kinds = [e["event"] for e in _events(store, "automation_suspended", "automation_resumed", "model_promoted",
                                          "key_created", "key_revoked")]
    assert kinds == ["automation_suspended", "automation_resumed", "automation_suspended", "model_promoted",
                     "automation_resumed", "key_created", "key_created", "key_revoked"]
    assert store.verify_audit().ok
