"""The audit log is append-only and tamper-evident: any edit or deletion is found and named by seq."""

from __future__ import annotations

import json

import sqlalchemy as sa

from scoring.store import Store
from scoring.store.audit import canonical_json, entry_hash


def _fill(store: Store) -> None:
    sub = store.add_submission("obs", 1, "s1", {"text": "t"})
    store.record_machine_score(sub.id, "questioning", 2, model_version="m-1")
    store.record_human_score(sub.id, "questioning", 2, assessor="ann", kind="first")
    store.record_human_score(sub.id, "questioning", 3, assessor="bob", kind="second")
    store.record_adjudication(sub.id, "questioning", 3, adjudicator="cat")
    store.suspend_automation("obs", "feedback", "drift")


def _raw(store: Store, sql: str, **params: object) -> None:
    with store.engine.connect().execution_options(store_write=True) as c, c.begin():
        c.execute(sa.text(sql), params)


def test_every_score_event_is_logged_and_the_chain_verifies(store: Store, rubric) -> None:
    _fill(store)
    entries = list(store.audit_entries())
    assert [e.event for e in entries] == ["rubric_registered", "machine_score", "human_score", "human_score",
                                          "adjudication", "automation_suspended"]
    assert [e.seq for e in entries] == list(range(1, 7))
    for prev, cur in zip(entries, entries[1:], strict=False):  # each entry carries the previous one's hash
        assert cur.prev_hash == prev.entry_hash
        assert cur.entry_hash == entry_hash(cur.seq, cur.event, canonical_json(cur.payload), cur.prev_hash,
                                         store.canonical_form())
    res = store.verify_audit()
    assert res.ok and res.entries_checked == 6 and res.first_bad_seq is None


def test_edited_log_row_is_detected(store: Store, rubric) -> None:
    _fill(store)
    entry = [e for e in store.audit_entries() if e.event == "human_score"][1]
    forged = dict(entry.payload, score=2)  # pretend the second rater agreed
    _raw(store, "UPDATE audit_log SET payload = :p WHERE seq = :s", p=json.dumps(forged), s=entry.seq)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == entry.seq
    assert "edited" in res.problem


def test_edit_that_recomputes_its_own_hash_still_breaks_the_next_link(store: Store, rubric) -> None:
    _fill(store)
    e = [x for x in store.audit_entries() if x.event == "machine_score"][0]
    body = canonical_json(dict(e.payload, score=0))
    _raw(store, "UPDATE audit_log SET payload = :p, entry_hash = :h WHERE seq = :s",
         p=body, h=entry_hash(e.seq, e.event, body, e.prev_hash, store.canonical_form()), s=e.seq)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == e.seq + 1


def test_deleted_log_row_is_detected(store: Store, rubric) -> None:
    _fill(store)
    _raw(store, "DELETE FROM audit_log WHERE seq = 3")
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == 3 and "deleted" in res.problem


def test_deleting_the_last_entries_is_detected_through_the_score_rows(store: Store, rubric) -> None:
    sub = store.add_submission("obs", 1, "s1", {"text": "t"})
    store.record_human_score(sub.id, "questioning", 1, assessor="ann")
    h = store.record_human_score(sub.id, "questioning", 2, assessor="bob", kind="second")
    _raw(store, "DELETE FROM audit_log WHERE seq = :s", s=h.audit_seq)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == h.audit_seq


def test_edited_score_row_no_longer_matches_its_log_entry(store: Store, rubric) -> None:
    _fill(store)
    h = store.human_scores(kind="second")[0]
    _raw(store, "UPDATE human_scores SET score = 0 WHERE id = :i", i=h.id)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == h.audit_seq and "human_scores" in res.problem
