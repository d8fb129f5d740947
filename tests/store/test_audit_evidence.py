"""Every score and decision entry pins the evidence it is about, and verification checks the pin.

The attacker has write access to the database and leaves the log alone: they change what a teacher
submitted after it was scored (or swap two submissions' evidence), so that a decision defended later rests
on text that was not what was scored. Each score row still matches its entry; only the pin (the
submission's external id and content hash in the entry) tells.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from audit_edits import rewrite_entry, sql

from scoring.store import Store
from scoring.store import verify as verify_mod
from scoring.store.decisions import decision_in
from scoring.store.submissions import content_hash

PINNED_EVENTS = ("machine_score", "human_score", "adjudication", "credential_decision")


def _score(store: Store, ext: str, text: str) -> int:
    """A submission with a machine score, a human score, an adjudication and a decision; returns its id."""
    sub = store.add_submission("obs", 1, ext, {"text": text}, {"grade": 7})
    m = store.record_machine_score(sub.id, "questioning", 2, model_version="m-1")
    h = store.record_human_score(sub.id, "questioning", 0, assessor="ann")
    store.record_adjudication(sub.id, "questioning", 1, adjudicator="lead", human_score_ids=[h.id],
                              machine_score_id=m.id)
    with store.write() as tx:
        decision_in(tx, sub.id, "obs", 1, "not_yet", "final", {"questioning": 1})
    return sub.id


def _first_pin(store: Store, submission_id: int) -> int:
    """The first entry that pinned a submission's evidence (its machine score)."""
    return min(e.seq for e in store.audit_entries() if e.payload.get("submission_id") == submission_id)


def _set_evidence(store: Store, submission_id: int, evidence: dict[str, Any]) -> None:
    sql(store, "UPDATE submissions SET evidence = :e WHERE id = :i", e=json.dumps(evidence), i=submission_id)


def test_every_score_and_decision_entry_pins_the_submissions_evidence(store: Store, rubric) -> None:
    sid = _score(store, "T-042", "I asked them why twice.")
    sub = store.submission(sid)
    pinned = [e for e in store.audit_entries() if e.event in PINNED_EVENTS]
    assert sorted(e.event for e in pinned) == sorted(PINNED_EVENTS)
    for e in pinned:
        assert e.payload["submission_id"] == sid
        assert e.payload["external_id"] == "T-042"
        assert e.payload["content_hash"] == sub.content_hash == content_hash(sub.evidence, sub.metadata)
    assert store.verify_audit().ok


def test_evidence_edited_after_it_was_scored_is_named_by_its_external_id(store: Store, rubric) -> None:
    _score(store, "T-041", "Untouched.")
    sid = _score(store, "T-042", "I asked them why twice.")
    _set_evidence(store, sid, {"text": "I asked them why twice and they explained it back to me."})
    res = store.verify_audit()
    seq = _first_pin(store, sid)
    assert not res.ok and res.kind == "tables" and res.first_bad_seq == seq
    assert res.problem.startswith(f"the evidence of submission T-042 (rubric obs@1, store id {sid}) was changed "
                                  f"after entry {seq} scored it: its evidence and metadata now hash to ")
    assert "(its content_hash column still reads the pinned hash)" in res.problem


def test_edited_metadata_is_caught_too(store: Store, rubric) -> None:
    sid = _score(store, "T-042", "I asked them why twice.")
    sql(store, "UPDATE submissions SET meta = :m WHERE id = :i", m=json.dumps({"grade": 12}), i=sid)
    res = store.verify_audit()
    assert not res.ok and "the evidence of submission T-042" in res.problem


def test_evidence_edited_with_its_hash_column_recomputed_is_caught(store: Store, rubric) -> None:
    sid = _score(store, "T-042", "I asked them why twice.")
    forged = {"text": "Something else."}
    _set_evidence(store, sid, forged)
    sql(store, "UPDATE submissions SET content_hash = :h WHERE id = :i", h=content_hash(forged, {"grade": 7}), i=sid)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == _first_pin(store, sid)
    assert "the evidence of submission T-042" in res.problem and "content_hash column was rewritten too" in res.problem


def test_two_submissions_with_their_evidence_swapped_are_caught(store: Store, rubric) -> None:
    a = _score(store, "T-041", "The first teacher's transcript.")
    b = _score(store, "T-042", "The second teacher's transcript.")
    sql(store, "UPDATE submissions SET evidence = :e, content_hash = :h WHERE id = :i",
         e=json.dumps({"text": "The second teacher's transcript."}), h=store.submission(b).content_hash, i=a)
    sql(store, "UPDATE submissions SET evidence = :e, content_hash = :h WHERE id = :i",
         e=json.dumps({"text": "The first teacher's transcript."}), h=store.submission(a).content_hash, i=b)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == _first_pin(store, a)  # the earliest entry whose pin broke
    assert res.problem.startswith("the evidence of submission T-041")
    assert "edited, or swapped with another submission's" in res.problem


def test_evidence_that_is_no_longer_json_is_named_not_a_crash(store: Store, rubric) -> None:
    if store.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL's json type refuses invalid JSON at write time")
    sid = _score(store, "T-042", "I asked them why twice.")
    sql(store, "UPDATE submissions SET evidence = '{not json' WHERE id = :i", i=sid)
    res = store.verify_audit()
    assert not res.ok and "its evidence and metadata are no longer valid JSON" in res.problem


def test_a_changed_hash_column_alone_is_named(store: Store, rubric) -> None:
    sid = _score(store, "T-042", "I asked them why twice.")
    sql(store, "UPDATE submissions SET content_hash = :h WHERE id = :i", h="0" * 64, i=sid)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == _first_pin(store, sid)
    assert "submission T-042 (rubric obs@1" in res.problem and "its content_hash column was changed" in res.problem


def test_a_renamed_submission_is_named(store: Store, rubric) -> None:
    sid = _score(store, "T-042", "I asked them why twice.")
    sql(store, "UPDATE submissions SET external_id = 'T-099' WHERE id = :i", i=sid)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == _first_pin(store, sid)
    assert "submission T-042 (rubric obs@1" in res.problem and "is now named 'T-099'" in res.problem


def test_the_earliest_pinning_entry_is_reported_across_batches(store: Store, rubric,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_mod, "BATCH", 2)  # pins and submissions read in many small batches
    monkeypatch.setattr(verify_mod, "PIN_CHUNK", 1)
    ids = [_score(store, f"T-{i:03d}", f"transcript {i}") for i in range(5)]
    _set_evidence(store, ids[3], {"text": "edited later"})
    _set_evidence(store, ids[1], {"text": "edited"})
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == _first_pin(store, ids[1])
    assert "the evidence of submission T-001" in res.problem


def test_a_submission_no_entry_scored_is_not_pinned_so_its_edit_passes(store: Store, rubric) -> None:
    _score(store, "T-041", "Scored.")
    waiting = store.add_submission("obs", 1, "T-042", {"text": "Not scored yet."})
    _set_evidence(store, waiting.id, {"text": "Edited before anyone scored it."})
    # no entry names it, so there is nothing to check it against; it is pinned by its first score
    assert store.verify_audit().ok


def _strip_pins(store: Store) -> None:
    """Rewrite the log as a release before pins wrote it: no external_id or content_hash in any payload."""
    form = store.canonical_form()
    with store.engine.connect().execution_options(store_write=True) as c, c.begin():
        prev = form.genesis
        for seq, event, payload in c.execute(sa.text("SELECT seq, event, payload FROM audit_log ORDER BY seq")).all():
            p = form.loads(payload)
            if event in PINNED_EVENTS:
                p = {k: v for k, v in p.items() if k not in ("external_id", "content_hash")}
            body = form.dumps(p)
            h = form.entry_hash(seq, event, body, prev)
            c.execute(sa.text("UPDATE audit_log SET payload = :b, prev_hash = :p, entry_hash = :h WHERE seq = :s"),
                      {"b": body, "p": prev, "h": h, "s": seq})
            prev = h


def test_a_pin_is_read_from_its_entry_however_the_payload_is_spelled(store: Store, rubric) -> None:
    """The pin is the payload's content, not its spelling: spaces and key order do not hide it."""
    sid = _score(store, "T-042", "I asked them why twice.")
    first = _first_pin(store, sid)
    p = store.audit_entry(first).payload
    rewrite_entry(store, first, "{ " + " , ".join(f"{json.dumps(k)} : {json.dumps(v)}" for k, v in reversed(p.items())) + " }")
    assert store.audit_entry(first).payload == p
    assert store.verify_audit().ok
    _set_evidence(store, sid, {"text": "Edited."})
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == first and "the evidence of submission T-042" in res.problem


@pytest.mark.parametrize("payload", ["[1, 2]", "[]"])
def test_a_score_entry_whose_payload_is_an_array_pins_nothing(store: Store, rubric, payload: str) -> None:
    """A payload that is not an object has no pin fields: it pins nothing, and the pin check does not crash on
    it. Verification names such an entry before it gets there: the service logs every score as an object, so
    a row pointing at an array points at an entry rewritten outside the service (test_audit_malformed.py)."""
    sid = _score(store, "T-042", "I asked them why twice.")
    first = _first_pin(store, sid)
    rewrite_entry(store, first, payload)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == first and "not a JSON object" in res.problem
    with store.engine.connect() as conn:
        assert verify_mod._check_evidence(conn) is None  # the other entries still pin the evidence
    _set_evidence(store, sid, {"text": "Edited."})
    with store.engine.connect() as conn:
        found = verify_mod._check_evidence(conn)
    assert found is not None and "the evidence of submission T-042" in found[1]


def test_a_pin_whose_store_id_is_spelled_as_a_whole_float_is_read(store: Store, rubric) -> None:
    """RFC 8785 writes 1.0 as 1, so ``"submission_id": 1.0`` is the same content with the same hash: a spelling,
    which the pin check reads as the store id on both databases (PostgreSQL's integer cast refuses "1.0")."""
    sid = _score(store, "T-042", "I asked them why twice.")
    first = _first_pin(store, sid)
    p = store.audit_entry(first).payload
    rewrite_entry(store, first, json.dumps(dict(p, submission_id=float(sid))))
    assert store.verify_audit().ok
    _set_evidence(store, sid, {"text": "Edited."})
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == first and "the evidence of submission T-042" in res.problem


def test_entries_from_before_pins_are_skipped_not_false_alarms(store: Store, rubric) -> None:
    old = _score(store, "T-041", "Scored by an older release.")
    _strip_pins(store)
    assert store.verify_audit().ok
    new = _score(store, "T-042", "Scored by this release.")
    assert store.verify_audit().ok  # a log of both kinds verifies
    _set_evidence(store, old, {"text": "Edited."})
    assert store.verify_audit().ok  # the old entries pinned nothing, so this edit is not visible
    _set_evidence(store, new, {"text": "Edited."})
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == _first_pin(store, new)
