"""The one scoring core: submit-score-route-record writes everything of a submission in ONE transaction.

Specification, on SQLite and on PostgreSQL, with the synthetic model (no encoder, runs in seconds):
a submission's row, owner, machine scores (with route and reason), their audit entries and its queue slots
are written together or not at all; a resend is answered from the store; another issuer's id or other
content under the same id is refused; the queue follows the policy's order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from routing_fakes import synthetic

from scoring.errors import DuplicateSubmission, ExternalIdTaken
from scoring.store import Store, queue
from scoring.usecases import intake

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'core.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    st = Store(url)
    yield st
    st.close()


def _subs(n: int, seed: int = 3) -> list[intake.NewSubmission]:
    d = synthetic(n, seed)
    return [intake.NewSubmission(i, {"essay": t}, {"school": f"s{k % 3}"})
            for k, (i, t) in enumerate(zip(d["ids"], d["texts"], strict=True))]


def _counts(store: Store) -> dict[str, int]:
    import sqlalchemy as sa

    with store.engine.connect() as c:
        return {name: int(c.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())
                for name in ("submissions", "submission_owners", "machine_scores", "queue_items", "audit_log")}


def test_one_submission_is_recorded_whole_with_routes_audit_entries_and_queue_slots(store, calibrated) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    store.register_rubric(model.rubric)
    subs = _subs(40)
    outs = [intake.submit(store, model, "issuer-a", s, policy=policy) for s in subs]
    assert all(o.created and o.submission is not None for o in outs)
    ms = store.machine_scores()
    assert len(ms) == 40 * len(model.rubric.criteria)
    assert all(m.route in ("auto", "audit", "human", "double") and m.reason and m.policy_version == policy.policy_version
               for m in ms)
    # every machine score has its audit entry, and the chain verifies
    logged = {e.seq for e in store.audit_entries() if e.event == "machine_score"}
    assert {m.audit_seq for m in ms} <= logged and store.verify_audit().ok
    # every criterion a person must see has its slot, of the kind its route needs
    for o in outs:
        routes = {c: r.extra["route"] for c, r in o.scored.criteria.items()}  # type: ignore[union-attr]
        kinds = {q.kind: set(q.criteria) for q in o.slots}
        for c, r in routes.items():
            want = {"auto": set(), "human": {"first"}, "audit": {"audit"}, "double": {"first", "second"}}[r]
            assert {k for k, cs in kinds.items() if c in cs} == want, (c, r, kinds)
    assert {m.route for m in ms} >= {"auto", "human"}  # the policy really routes both ways here


def test_a_resend_is_answered_from_the_store_and_refusals_change_nothing(store, calibrated) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    store.register_rubric(model.rubric)
    s = _subs(1)[0]
    first = intake.submit(store, model, "issuer-a", s, policy=policy)
    before = _counts(store)
    again = intake.submit(store, model, "issuer-a", s, policy=policy)
    assert not again.created and again.submission.id == first.submission.id  # type: ignore[union-attr]
    with pytest.raises(ExternalIdTaken):
        intake.submit(store, model, "issuer-b", s, policy=policy)
    with pytest.raises(DuplicateSubmission):
        intake.submit(store, model, "issuer-a", intake.NewSubmission(s.external_id, {"essay": "quality=0.1 other"}),
                      policy=policy)
    assert _counts(store) == before


def test_a_failure_inside_the_transaction_leaves_nothing_behind(store, calibrated, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    store.register_rubric(model.rubric)
    before = _counts(store)

    def broken(*_a: Any, **_k: Any) -> int:
        raise RuntimeError("disk full while queueing")

    monkeypatch.setattr(queue, "enqueue_in", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        intake.submit(store, model, "issuer-a", _subs(1)[0], policy=policy)
    assert _counts(store) == before  # no submission, score, audit entry or owner without its queue slots
    monkeypatch.undo()
    assert intake.submit(store, model, "issuer-a", _subs(1)[0], policy=policy).created  # and a retry records it
    assert store.verify_audit().ok


def test_a_block_with_a_repeated_id_records_it_once_and_refuses_other_content(store, calibrated) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    store.register_rubric(model.rubric)
    a, b = _subs(2)
    clash = intake.NewSubmission(a.external_id, {"essay": "quality=3.9 a different essay"})
    subs = [a, b, a, clash]
    items = model_items(model, subs)
    pv = intake.route(model, policy, store, items)
    outs = intake.record_scored(store, model, "issuer-a", subs, items, pv)
    assert [o.created for o in outs] == [True, True, False, False]
    assert outs[2].submission.id == outs[0].submission.id  # type: ignore[union-attr]
    assert isinstance(outs[3].error, DuplicateSubmission)
    assert len(store.submissions()) == 2


def model_items(model: Any, subs: list[intake.NewSubmission]) -> list[Any]:
    from scoring.prescore import prescore

    return prescore(model, [s.external_id for s in subs], [s.evidence for s in subs])


def test_the_queue_serves_the_policys_order_least_confident_first(store, calibrated) -> None:  # type: ignore[no-untyped-def]
    model, policy = calibrated
    store.register_rubric(model.rubric)
    subs = _subs(200, seed=8)
    items = model_items(model, subs)
    pv = intake.route(model, policy.model_copy(update={"double_rate": 0.0, "audit_rate": 0.0}), store, items)
    intake.record_scored(store, model, "issuer-a", subs, items, pv, queue_order="uncertain")
    ranks = {s.external_id: intake.queue_rank(it, "uncertain") for s, it in zip(subs, items, strict=True)}
    by_sub = {s.id: s.external_id for s in store.submissions()}
    claimed = []
    while (it := queue.claim(store, "alice", 600)) is not None:
        claimed.append(ranks[by_sub[it.submission_id]])
    assert len(claimed) >= 10 and claimed == sorted(claimed)


def test_the_report_counts_automation_from_recorded_routes_even_where_no_person_scored(store, calibrated) -> None:  # type: ignore[no-untyped-def]
    from eval.agreement import automation_table, load_frames

    model, policy = calibrated
    store.register_rubric(model.rubric)
    subs = _subs(80, seed=5)
    items = model_items(model, subs)
    pv = intake.route(model, policy, store, items)
    intake.record_scored(store, model, "issuer-a", subs, items, pv)
    routes = [r.extra["route"] for it in items for r in it.criteria.values()]
    accepted = sum(r in ("auto", "audit") for r in routes)
    assert 0 < accepted < len(routes) and not store.human_scores()
    table = automation_table(load_frames(store))
    pooled = table[table["criterion"] == "(all)"].iloc[0]
    assert (pooled["n"], pooled["n_accepted"]) == (len(routes), accepted)
    assert pooled["auto_fraction"] == pytest.approx(accepted / len(routes))
    per = table[table["criterion"] != "(all)"]
    assert sorted(per["criterion"]) == sorted(c.id for c in model.rubric.criteria) and per["n"].sum() == len(routes)
