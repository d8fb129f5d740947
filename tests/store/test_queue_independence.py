"""One person, one rating per submission: the queue never gives an assessor two slots of one submission
(double, audit, adjudication), the score log refuses a second rating by the same person in another slot,
and neither gives way under concurrent claims. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from scoring.errors import LeaseExpired, SameRater
from scoring.store import Store, queue
from scoring.store.clock import now
from scoring.store.engine import MIGRATIONS_DIR, make_engine
from scoring.store.service_tables import queue_items
from scoring.usecases import assessment


def _sub(store: Store, ext: str, routes: dict[str, str]) -> int:
    sub = store.add_submission("obs", 1, ext, {"text": f"evidence {ext}"})
    queue.enqueue(store, sub.id, routes)
    return sub.id


def _score(store: Store, it: queue.QueueItem, level: int = 1) -> None:
    queue.submit(store, it.id, str(it.holder), str(it.lease_token), {c: (level, "read it") for c in it.criteria})


def test_a_double_then_audit_submission_is_never_given_twice_to_one_person(store: Store, rubric) -> None:
    sid = _sub(store, "s1", {"questioning": "double", "feedback": "audit"})
    slots = {it.kind for it in queue.items_for_submission(store, sid)}
    assert slots == {"first", "second", "audit"}
    got = []
    while (it := queue.claim(store, "ann", 600)) is not None:
        got.append(it)
        _score(store, it)
    assert len(got) == 1, f"ann was given {[g.kind for g in got]} of one submission"
    for who in ("bob", "cy"):
        it = queue.claim(store, who, 600)
        assert it is not None and it.submission_id == sid
        _score(store, it)
    assert queue.claim(store, "dee", 600) is None, "three slots, three different people"
    raters = [h.assessor for h in store.human_scores(submission_id=sid)]
    assert sorted(set(raters)) == ["ann", "bob", "cy"]


def test_a_skipped_or_expired_and_taken_over_slot_keeps_its_siblings_from_that_person(store: Store, rubric) -> None:
    sid = _sub(store, "s1", {"questioning": "double"})
    first = queue.claim(store, "ann", 600)
    assert first is not None
    queue.release(store, first.id, "ann", str(first.lease_token), skip=True)
    assert queue.claim(store, "ann", 600) is None, "a skip is of the whole submission: not its other slot either"
    assert [it.submission_id for it in queue.available(store, "bob")] == [sid, sid]


def test_the_score_log_refuses_a_second_slot_by_the_same_person_even_on_another_criterion(store: Store, rubric) -> None:
    sub = store.add_submission("obs", 1, "s1", {"text": "t"})
    store.record_human_score(sub.id, "questioning", 1, assessor="ann", kind="first")
    with pytest.raises(SameRater, match="first rater"):
        store.record_human_score(sub.id, "feedback", 2, assessor="ann", kind="audit")
    store.record_human_score(sub.id, "feedback", 2, assessor="ann", kind="first")  # the same slot: one rating
    store.record_human_score(sub.id, "feedback", 2, assessor="bob", kind="audit")


def test_an_adjudicator_never_resolves_a_submission_they_rated(store: Store, rubric) -> None:
    sub = store.add_submission("obs", 1, "s1", {"text": "t"})
    store.record_human_score(sub.id, "questioning", 0, assessor="ann", kind="first")
    store.record_human_score(sub.id, "questioning", 3, assessor="bob", kind="second")
    with pytest.raises(SameRater, match="did not rate it"):
        assessment.adjudicate(store, sub.id, "questioning", 2, adjudicator="ann")
    assessment.adjudicate(store, sub.id, "questioning", 2, adjudicator="lead")
    sid = _sub(store, "s2", {"questioning": "audit"})
    store.record_adjudication(sid, "questioning", 1, adjudicator="lead")
    assert queue.claim(store, "lead", 600) is None, "an adjudicator is not a rater of the same submission"


def test_concurrent_claims_by_one_person_from_two_tabs_never_take_two_slots(store: Store, rubric) -> None:
    for i in range(6):
        _sub(store, f"s{i}", {"questioning": "double", "feedback": "audit"})
    got: list[queue.QueueItem] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def tab(who: str) -> None:
        barrier.wait()
        for _ in range(4):
            it = queue.claim(store, who, 600)
            if it is not None:
                with lock:
                    got.append(it)

    threads = [threading.Thread(target=tab, args=(who,)) for who in ("ann", "ann", "ann", "ann", "bob", "bob", "cy", "cy")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    ids = [it.id for it in got]
    assert len(ids) == len(set(ids)), "one item never goes to two claims"
    per = {}
    for it in got:
        per.setdefault((it.holder, it.submission_id), []).append(it.kind)
    assert all(len(k) == 1 for k in per.values()), f"one person got two slots of a submission: {per}"
    assert len(got) == 18, "6 submissions x 3 slots, 3 people: everything is handed out"


def test_reclaim_gives_an_expired_lease_back_only_when_nobody_else_holds_the_item(store: Store, rubric) -> None:
    _sub(store, "s1", {"questioning": "human"})
    it = queue.claim(store, "ann", 600)
    assert it is not None
    with store.write() as tx:
        tx.conn.execute(sa.update(queue_items).values(lease_expires=now() - timedelta(seconds=1)))
    again = queue.reclaim(store, it.id, "ann", str(it.lease_token), 600)
    assert again.holder == "ann" and again.lease_expires is not None and again.lease_expires > it.created_at
    with store.write() as tx:
        tx.conn.execute(sa.update(queue_items).values(lease_expires=now() - timedelta(seconds=1)))
    bob = queue.claim(store, "bob", 600)
    assert bob is not None and bob.id == it.id
    with pytest.raises(LeaseExpired, match="held by bob"):
        queue.reclaim(store, it.id, "ann", str(it.lease_token), 600)


def _reroute(store: Store, sid: int, routes: dict[str, str]) -> None:
    with store.write() as tx:
        queue.reroute_in(tx, sid, routes, why="a later policy")


def test_who_saw_the_machine_scores_is_never_offered_a_blind_slot_of_that_submission(store: Store, rubric) -> None:
    """ann held the non-blind slot (machine scores shown) and gave it back; a later policy double-scores the
    submission, rewriting that slot blind: ann's rating would not be blind, so she is offered neither slot."""
    sid = _sub(store, "s1", {"questioning": "human"})
    seen = queue.claim(store, "ann", 600)
    assert seen is not None and not seen.blind
    queue.release(store, seen.id, "ann", str(seen.lease_token))
    _reroute(store, sid, {"questioning": "double"})
    assert {(it.kind, it.blind) for it in queue.available(store, "bob")} == {("first", True), ("second", True)}
    assert queue.available(store, "ann") == [] and queue.count_available(store, "ann") == 0
    assert queue.claim(store, "ann", 600) is None
    for who in ("bob", "cy"):
        it = queue.claim(store, who, 600)
        assert it is not None and it.blind
        _score(store, it)
    assert sorted(h.assessor for h in store.human_scores(submission_id=sid)) == ["bob", "cy"]


def test_a_lease_taken_over_still_counts_as_seen_and_blind_holders_may_take_a_sibling(store: Store, rubric) -> None:
    """The memory is of claims, not of the current holder: ann's expired non-blind lease, taken over by bob,
    still keeps her off a blind audit slot added later. Having held a BLIND slot and given it back shows
    nothing of the machine's, so it keeps no one off the blind sibling."""
    sid = _sub(store, "s1", {"questioning": "human"})
    it = queue.claim(store, "ann", 600)
    assert it is not None
    with store.write() as tx:
        tx.conn.execute(sa.update(queue_items).values(lease_expires=now() - timedelta(seconds=1)))
    took = queue.claim(store, "bob", 600)
    assert took is not None and took.id == it.id
    queue.release(store, took.id, "bob", str(took.lease_token))
    _reroute(store, sid, {"questioning": "double"})
    assert queue.claim(store, "ann", 600) is None and queue.claim(store, "bob", 600) is None

    other = _sub(store, "s2", {"questioning": "double"})
    first = next(i for i in queue.items_for_submission(store, other) if i.kind == "first")
    blind = queue.claim(store, "dee", 600, item_id=first.id)
    assert blind is not None and blind.submission_id == other and blind.blind
    queue.release(store, blind.id, "dee", str(blind.lease_token))
    assert {i.kind for i in queue.available(store, "dee") if i.submission_id == other} == {"first", "second"}


def test_a_slot_held_when_the_claim_memory_arrives_is_remembered(store_url: str, rubric) -> None:
    """A store from the release before ``queue_claims``: ann holds a non-blind slot when it is upgraded. The
    migration copies the claims it can see, so her later release does not make her eligible for a blind slot."""
    store = Store(store_url)
    sid = _sub(store, "s1", {"questioning": "human"})
    held = queue.claim(store, "ann", 600)
    assert held is not None
    store.close()
    engine, cfg = make_engine(store_url), Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect().execution_options(store_write=True) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007_credential_status")  # the older release's schema: no claim memory
    engine.dispose()
    store = Store(store_url)  # this release opens it and migrates
    try:
        queue.release(store, held.id, "ann", str(held.lease_token))
        _reroute(store, sid, {"questioning": "double"})
        assert queue.claim(store, "ann", 600) is None
        assert {i.kind for i in queue.available(store, "bob")} == {"first", "second"}
    finally:
        store.close()


def test_a_blind_slot_of_a_resubmission_never_goes_to_someone_who_saw_another_attempt(store: Store, rubric) -> None:
    """Ann rated a teacher's first attempt and Bob held a slot of the second: neither may be the blind second
    rater or auditor of a later attempt (they know how the earlier one was judged); a non-blind slot is fine,
    and so is anyone who never saw the chain."""
    first = _sub(store, "t-1", {"questioning": "human"})
    it = queue.claim(store, "ann", 600)
    assert it is not None and it.submission_id == first
    _score(store, it)
    second = store.add_submission("obs", 1, "t-1-r2", {"text": "better evidence"}, {"revises": "t-1"})
    queue.enqueue(store, second.id, {"questioning": "human"})
    held = queue.claim(store, "bob", 600)
    assert held is not None and held.submission_id == second.id
    queue.release(store, held.id, "bob", str(held.lease_token))
    third = store.add_submission("obs", 1, "t-1-r3", {"text": "best evidence"}, {"revises": "t-1-r2"})
    queue.enqueue(store, third.id, {"questioning": "human", "feedback": "audit"})
    blind = {i.id for i in queue.items_for_submission(store, third.id) if i.blind}
    assert len(blind) == 1, "the audit route makes a blind slot, the human route a slot that shows the machine"
    for who in ("ann", "bob"):
        offered = {i.id for i in queue.available(store, who) if i.submission_id == third.id}
        assert offered and not offered & blind, f"{who} saw another attempt: no blind slot of this one"
    assert blind <= {i.id for i in queue.available(store, "cy")}  # never saw the chain
    unrelated = _sub(store, "u-1", {"questioning": "double"})
    assert {i.submission_id for i in queue.available(store, "ann")} >= {unrelated}  # other teachers: as before


def test_a_store_from_before_chains_learns_them_from_the_stored_metadata(store_url: str, rubric) -> None:
    """A store upgraded from the release before ``submission_chains``: its resubmissions are linked from
    their ``revises`` metadata by the migration, so the blind-slot rule holds for attempts stored before."""
    store = Store(store_url)
    first = _sub(store, "t-1", {"questioning": "human"})
    it = queue.claim(store, "ann", 600)
    assert it is not None and it.submission_id == first
    _score(store, it)
    store.add_submission("obs", 1, "t-1-r2", {"text": "better"}, {"revises": "t-1"})
    third = store.add_submission("obs", 1, "t-1-r3", {"text": "best"}, {"revises": "t-1-r2"})
    store.close()
    engine, cfg = make_engine(store_url), Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect().execution_options(store_write=True) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0009_batch_job_control")  # the older release's schema: no chains
    engine.dispose()
    store = Store(store_url)  # this release opens it and migrates
    try:
        queue.enqueue(store, third.id, {"feedback": "audit"})
        assert [i.submission_id for i in queue.available(store, "ann")] == []
        assert [i.submission_id for i in queue.available(store, "bob")] == [third.id]
    finally:
        store.close()
