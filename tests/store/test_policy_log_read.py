"""The routing policy a store put into service can be read back from its audit log, so work that reaches
the store outside the service (an imported sheet of ratings) is judged by the same adjudication gaps."""

from __future__ import annotations

from scoring.policy import CriterionPolicy, RoutingPolicy
from scoring.store import Store
from scoring.store.policy_log import logged_policy, record_policy


def test_the_last_logged_policy_of_a_rubric_comes_back_with_its_gaps(store: Store) -> None:
    assert logged_policy(store, "obs") is None
    first = RoutingPolicy(policy_version="p-1", rubric_id="obs", adjudication_gap=1)
    later = RoutingPolicy(policy_version="p-2", rubric_id="obs", adjudication_gap=0,
                          criteria={"feedback": CriterionPolicy(min_confidence=0.5, adjudication_gap=2)})
    record_policy(store, first, by="t")
    record_policy(store, later, by="t")
    record_policy(store, RoutingPolicy(policy_version="x-1", rubric_id="other", adjudication_gap=3), by="t")
    got = logged_policy(store, "obs")
    assert got is not None and got.policy_version == "p-2"
    assert got.gap_for("questioning") == 0 and got.gap_for("feedback") == 2
