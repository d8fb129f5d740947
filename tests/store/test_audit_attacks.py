"""Attacks on the audit log by someone with write access to the database, and how each is caught.

Each test plays one attack the hash chain alone let through (the chain verified after it): the
signed checkpoints kept outside the database, or the suspension cross-check, must now name it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from audit_edits import sql

from scoring.errors import AuditChainBroken
from scoring.store import Store
from scoring.store import tables as t
from scoring.store.audit import canonical_json, entry_hash
from scoring.store.checkpoints import CheckpointError, keygen, load_private_key, load_public_key
from scoring.store.decisions import decision_in
from scoring.usecases import audit_trust


@pytest.fixture
def audit_key(tmp_path: Path):  # type: ignore[no-untyped-def]
    priv, pub = keygen(tmp_path / "keys")
    return load_private_key(priv), load_public_key(pub)


def _fill(store: Store, n: int = 4, ext: str = "s") -> list[int]:
    """n submissions with a machine score and a human score each; returns the submission ids."""
    ids = []
    for i in range(n):
        sub = store.add_submission("obs", 1, f"{ext}{i}", {"text": f"text {i}"})
        store.record_machine_score(sub.id, "questioning", i % 4, model_version="m-1")
        store.record_human_score(sub.id, "questioning", (i + 1) % 4, assessor="ann")
        ids.append(sub.id)
    return ids


def _rehash_from(store: Store, first: int) -> None:
    """What an attacker does after editing: recompute every hash from ``first`` on, so the chain verifies."""
    form = store.canonical_form()
    with store.engine.connect().execution_options(store_write=True) as c, c.begin():
        rows = c.execute(sa.text("SELECT seq, event, payload FROM audit_log WHERE seq >= :s ORDER BY seq"),
                         {"s": first}).all()
        prev = c.execute(sa.text("SELECT entry_hash FROM audit_log WHERE seq = :s"), {"s": first - 1}).scalar() \
            or form.genesis
        for seq, event, payload in rows:
            h = entry_hash(seq, event, payload, prev, form)
            c.execute(sa.text("UPDATE audit_log SET prev_hash = :p, entry_hash = :h WHERE seq = :s"),
                      {"p": prev, "h": h, "s": seq})
            prev = h


def _checkpoint(store: Store, folder: Path, key) -> str:  # type: ignore[no-untyped-def]
    res = audit_trust.checkpoint(store, folder, key[0], init=not folder.is_dir())
    assert res.path is not None
    return res.path.name


def test_a_clean_log_extends_every_checkpoint(store: Store, rubric, tmp_path: Path, audit_key) -> None:
    _fill(store, 2)
    first = _checkpoint(store, tmp_path / "cp", audit_key)
    _fill(store, 2, ext="t")
    second = _checkpoint(store, tmp_path / "cp", audit_key)
    res = audit_trust.verify(store, tmp_path / "cp", audit_key[1])
    assert res.ok and res.checkpoints == [first, second] and res.checkpoints_checked == 2


def test_edit_and_rehash_everything_after_it_is_caught_by_the_checkpoint(store: Store, rubric, tmp_path: Path,
                                                                          audit_key) -> None:
    _fill(store)
    cp = _checkpoint(store, tmp_path / "cp", audit_key)
    m = store.machine_scores()[1]
    entry = store.audit_entry(m.audit_seq)
    # rewrite the score in the row and in its entry, then recompute every later hash
    sql(store, "UPDATE machine_scores SET score = 3 WHERE id = :i", i=m.id)
    sql(store, "UPDATE audit_log SET payload = :p WHERE seq = :s", p=canonical_json(dict(entry.payload, score=3)),
         s=m.audit_seq)
    _rehash_from(store, m.audit_seq)
    assert store.verify_audit().ok  # the chain and the rows are consistent again: the chain alone is fooled
    res = audit_trust.verify(store, tmp_path / "cp", audit_key[1])
    assert not res.ok and res.first_bad_checkpoint == cp and "rewritten" in res.problem


def test_deleting_an_entry_and_renumbering_is_caught(store: Store, rubric, tmp_path: Path, audit_key) -> None:
    _fill(store)
    cp = _checkpoint(store, tmp_path / "cp", audit_key)
    h = store.human_scores()[0]
    last = store.audit_size()
    sql(store, "DELETE FROM human_scores WHERE id = :i", i=h.id)
    sql(store, "DELETE FROM audit_log WHERE seq = :s", s=h.audit_seq)
    for seq in range(h.audit_seq + 1, last + 1):  # close the gap: later entries and their rows move down one
        for table in ("audit_log",):
            sql(store, f"UPDATE {table} SET seq = :n WHERE seq = :s", n=seq - 1, s=seq)
        for table in ("machine_scores", "human_scores", "suspensions"):
            sql(store, f"UPDATE {table} SET audit_seq = :n WHERE audit_seq = :s", n=seq - 1, s=seq)
    _rehash_from(store, h.audit_seq)
    assert store.verify_audit().ok  # the renumbered chain verifies on its own
    res = audit_trust.verify(store, tmp_path / "cp", audit_key[1])
    assert not res.ok and res.first_bad_checkpoint == cp


def test_cutting_the_tail_with_its_score_rows_is_caught(store: Store, rubric, tmp_path: Path, audit_key) -> None:
    _fill(store)
    cp = _checkpoint(store, tmp_path / "cp", audit_key)
    size = store.audit_size()
    h = store.human_scores()[-1]
    sql(store, "DELETE FROM human_scores WHERE id = :i", i=h.id)
    sql(store, "DELETE FROM audit_log WHERE seq >= :s", s=h.audit_seq)
    assert store.verify_audit().ok  # nothing points past the end any more
    res = audit_trust.verify(store, tmp_path / "cp", audit_key[1])
    assert not res.ok and res.first_bad_checkpoint == cp
    assert f"log of {size} entries but the log now has {size - 1}" in res.problem and "truncated" in res.problem


def test_deleting_a_human_score_row_is_caught_without_any_checkpoint(store: Store, rubric) -> None:
    _fill(store, 3)
    h = store.human_scores()[1]
    assert store.verify_audit().ok
    sql(store, "DELETE FROM human_scores WHERE id = :i", i=h.id)  # the entry stays: nothing points at it
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == h.audit_seq
    name = store.submission(h.submission_id).external_id  # named as in the issuer's file
    assert res.problem == (f"audit entry {h.audit_seq} (human_score) logged a human score (submission "
                           f"{name}, criterion questioning, assessor ann) but the human_scores table has "
                           "no row for it: the row was deleted")


def test_deleting_a_decision_row_is_caught_without_any_checkpoint(store: Store, rubric) -> None:
    ids = _fill(store, 2)
    with store.write() as tx:
        for sub in ids:
            decision_in(tx, sub, "obs", 1, "earned", "final", {"questioning": 2})
    d = store.decisions()[0]
    assert store.verify_audit().ok
    sql(store, "DELETE FROM decisions WHERE id = :i", i=d.id)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == d.audit_seq
    assert f"audit entry {d.audit_seq} (credential_decision)" in res.problem
    assert "(submission s0)" in res.problem and "decisions table has no row" in res.problem


def test_the_earliest_deleted_row_is_reported(store: Store, rubric) -> None:
    _fill(store, 3)
    m, h = store.machine_scores()[2], store.human_scores()[0]
    sql(store, "DELETE FROM machine_scores WHERE id = :i", i=m.id)
    sql(store, "DELETE FROM human_scores WHERE id = :i", i=h.id)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == min(m.audit_seq, h.audit_seq) == h.audit_seq


def test_deleting_a_suspension_row_is_caught_without_any_checkpoint(store: Store, rubric) -> None:
    _fill(store, 1)
    store.suspend_automation("obs", "feedback", "drift: audit QWK fell")
    assert store.is_suspended("obs", "feedback") and store.verify_audit().ok
    sql(store, "DELETE FROM suspensions")
    assert not store.is_suspended("obs", "feedback")  # automation silently back on
    res = store.verify_audit()
    seq = [e.seq for e in store.audit_entries(event="automation_suspended")][0]
    assert not res.ok and res.first_bad_seq == seq
    assert "obs/feedback" in res.problem and "deleted" in res.problem


def test_lifting_a_suspension_outside_the_service_is_caught(store: Store, rubric) -> None:
    s = store.suspend_automation("obs", "feedback", "drift")
    sql(store, "UPDATE suspensions SET lifted_at = suspended_at, lifted_by = 'mallory' WHERE id = :i", i=s.id)
    res = store.verify_audit()
    assert not res.ok and "lifted outside the service" in res.problem
    store2_lift = store.suspend_automation("obs", "questioning", "drift")  # a logged lift stays fine
    store.lift_suspension("obs", store2_lift.criterion, by="admin")
    sql(store, "UPDATE suspensions SET lifted_at = NULL, lifted_by = NULL WHERE id = :i", i=s.id)
    assert store.verify_audit().ok


def test_a_checkpoint_signed_over_a_forked_log_is_caught(store: Store, rubric, tmp_path: Path, audit_key) -> None:
    _fill(store, 2)
    fork = Store(f"sqlite:///{tmp_path / 'fork.db'}")  # a copy of the log so far, then another history
    try:
        entries = list(store.audit_entries())
        with fork.write() as tx:  # the log so far and the rows it logged
            tx.conn.execute(sa.text("INSERT INTO audit_log (seq, event, payload, prev_hash, entry_hash) "
                                    "VALUES (:seq, :event, :payload, :prev_hash, :entry_hash)"),
                            [{"seq": e.seq, "event": e.event, "payload": canonical_json(e.payload),
                              "prev_hash": e.prev_hash, "entry_hash": e.entry_hash} for e in entries])
            for table in (t.rubrics, t.submissions, t.machine_scores, t.human_scores):
                with store.engine.connect() as src:
                    rows = [dict(r._mapping) for r in src.execute(sa.select(table))]
                tx.conn.execute(table.insert(), rows)
        with fork.write() as tx:  # then another history: a forged score, with its row so the fork verifies
            sub = store.human_scores()[0].submission_id
            seq = tx.append("human_score", {"submission_id": sub, "criterion": "questioning", "score": 0,
                                            "assessor": "eve", "kind": "first"})
            tx.conn.execute(t.human_scores.insert().values(
                submission_id=sub, criterion="questioning", score=0, assessor="eve", rationale="", blind=False,
                kind="first", created_at=datetime(2026, 1, 1), audit_seq=seq))
        assert fork.verify_audit().ok
        cp = _checkpoint(fork, tmp_path / "cp", audit_key)
    finally:
        fork.close()
    _fill(store, 2, ext="t")  # the real log grows past the fork's size
    res = audit_trust.verify(store, tmp_path / "cp", audit_key[1])
    assert not res.ok and res.first_bad_checkpoint == cp and res.first_bad_seq == 1
    with pytest.raises(AuditChainBroken, match="does not verify"):  # and no new checkpoint is signed over it
        audit_trust.checkpoint(store, tmp_path / "cp", audit_key[0])


def test_an_edited_or_foreign_checkpoint_file_fails(store: Store, rubric, tmp_path: Path, audit_key) -> None:
    _fill(store, 1)
    name = _checkpoint(store, tmp_path / "cp", audit_key)
    f = tmp_path / "cp" / name
    text = f.read_text()
    lines = text.split("\n")
    f.write_text("\n".join([lines[0], str(int(lines[1]) - 1), *lines[2:]]))  # claim a shorter log
    res = audit_trust.verify(store, tmp_path / "cp", audit_key[1])
    assert not res.ok and res.first_bad_checkpoint == name and "edited after signing" in res.problem
    other = keygen(tmp_path / "other")
    f.write_text(text)
    res = audit_trust.verify(store, tmp_path / "cp", load_public_key(other[1]))
    assert not res.ok and "not signed by the audit key" in res.problem


def test_inclusion_proof_checks_with_the_public_key_alone(store: Store, rubric, tmp_path: Path, audit_key) -> None:
    _fill(store, 3)
    _checkpoint(store, tmp_path / "cp", audit_key)
    seq = store.human_scores()[1].audit_seq
    proof = audit_trust.prove(store, seq, tmp_path / "cp", audit_key[1])
    cp = audit_trust.check_proof(json.loads(json.dumps(proof)), audit_key[1])
    assert cp.size == store.audit_size() and proof["entry"]["event"] == "human_score"
    forged = json.loads(json.dumps(proof))
    forged["entry"]["payload"]["score"] = 0
    with pytest.raises(CheckpointError, match="edited"):
        audit_trust.check_proof(forged, audit_key[1])
    forged = json.loads(json.dumps(proof))
    forged["path"][0] = "00" * 32
    with pytest.raises(CheckpointError, match="not in that log"):
        audit_trust.check_proof(forged, audit_key[1])


def _tiles(store: Store) -> dict[int, str]:
    with store.engine.connect() as c:
        return {r.tile: r.hash for r in c.execute(sa.select(t.audit_tiles))}


def test_a_proof_over_a_rewritten_log_caches_no_tiles(store: Store, tmp_path: Path, audit_key) -> None:
    with store.write() as tx:  # more than one complete 1024-leaf tile
        for i in range(1100):
            tx.append("note", {"i": i})
    _checkpoint(store, tmp_path / "cp", audit_key)
    good = _tiles(store)
    assert set(good) == {0}
    sql(store, "DELETE FROM audit_tiles")  # a cold cache (it is derived data)
    sql(store, "UPDATE audit_log SET payload = :p WHERE seq = 5", p=canonical_json({"i": 999}))
    _rehash_from(store, 5)  # the chain verifies; only the signed root knows
    with pytest.raises(AuditChainBroken, match="rewritten"):
        audit_trust.prove(store, 700, tmp_path / "cp", audit_key[1])
    assert _tiles(store) == {}  # the rewritten log's tile was not cached for later proofs
    sql(store, "UPDATE audit_log SET payload = :p WHERE seq = 5", p=canonical_json({"i": 4}))
    _rehash_from(store, 5)
    proof = audit_trust.prove(store, 700, tmp_path / "cp", audit_key[1])  # the true log: proved, and cached
    audit_trust.check_proof(proof, audit_key[1])
    assert _tiles(store) == good


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p: p.pop("entry"), "missing field entry (expected entry, path, leaf_index, checkpoint)"),
    (lambda p: p.pop("leaf_index"), "missing field leaf_index (expected entry, path, leaf_index, checkpoint)"),
    (lambda p: p.update(path=[p["path"][0], "zz" * 32]), "path[1] is not hex (expected 64 hex digits"),
    (lambda p: p.update(path=["abc"]), "path[0] is not hex"),
    (lambda p: p["entry"].pop("prev_hash"), "entry is missing prev_hash (expected seq, event, payload"),
    (lambda p: p.update(leaf_index="three"), 'leaf_index must be a whole number from 0, found "three"'),
], ids=["no-entry", "no-leaf-index", "path-not-hex", "path-too-short", "entry-without-prev-hash", "index-as-text"])
def test_a_damaged_proof_file_names_the_field(store: Store, rubric, tmp_path: Path, audit_key, damage,  # type: ignore[no-untyped-def]
                                              message: str) -> None:
    _fill(store, 3)
    _checkpoint(store, tmp_path / "cp", audit_key)
    proof = json.loads(json.dumps(audit_trust.prove(store, store.audit_size(), tmp_path / "cp", audit_key[1])))
    damage(proof)
    with pytest.raises(CheckpointError) as err:
        audit_trust.check_proof(proof, audit_key[1])
    assert message in str(err.value) and "problem:" not in str(err.value) and "fromhex" not in str(err.value)


def test_checkpoint_refuses_a_missing_folder_unless_it_is_the_first(store: Store, rubric, tmp_path: Path,
                                                                     audit_key) -> None:
    _fill(store, 2)
    with pytest.raises(CheckpointError, match="does not exist.*pass --init if this is the log's first checkpoint"):
        audit_trust.checkpoint(store, tmp_path / "cp", audit_key[0])
    assert not (tmp_path / "cp").exists()
    first = audit_trust.checkpoint(store, tmp_path / "cp", audit_key[0], init=True)
    assert first.path is not None and first.path.parent == tmp_path / "cp"
    h = store.human_scores()[0]  # rewrite history, then sign into a mistyped folder: refused, nothing signed
    sql(store, "UPDATE audit_log SET payload = :p WHERE seq = :s",
         p=canonical_json(dict(store.audit_entry(h.audit_seq).payload, score=0)), s=h.audit_seq)
    sql(store, "UPDATE human_scores SET score = 0 WHERE id = :i", i=h.id)
    _rehash_from(store, h.audit_seq)
    with pytest.raises(CheckpointError, match="does not exist"):
        audit_trust.checkpoint(store, tmp_path / "cpp", audit_key[0])
    assert not (tmp_path / "cpp").exists()


@pytest.mark.parametrize("edit, words", [
    ("UPDATE suspensions SET reason = 'routine maintenance' WHERE id = :i", "holds a reason other than entry"),
    ("UPDATE suspensions SET details = '{\"qwk\": 0.9}' WHERE id = :i", "holds a details other than entry"),
])
def test_rewriting_why_automation_was_suspended_is_caught(store: Store, rubric, edit: str, words: str) -> None:
    """The reason and the gate's results are what a reviewer reads to see why automation stopped: an edit that
    makes a drift suspension look routine is named."""
    s = store.suspend_automation("obs", "feedback", "drift: audit QWK fell", details={"qwk": 0.41, "n": 100})
    assert store.verify_audit().ok
    sql(store, edit, i=s.id)
    res = store.verify_audit()
    (logged,) = store.audit_entries(event="automation_suspended")
    assert not res.ok and words in res.problem and res.first_bad_seq == logged.seq


def test_renaming_who_lifted_a_suspension_is_caught(store: Store, rubric) -> None:
    s = store.suspend_automation("obs", "feedback", "drift")
    store.lift_suspension("obs", "feedback", by="admin")
    assert store.verify_audit().ok
    sql(store, "UPDATE suspensions SET lifted_by = 'lead-cho' WHERE id = :i", i=s.id)
    res = store.verify_audit()
    assert not res.ok and "says 'lead-cho' lifted it but entry" in res.problem and "logged 'admin'" in res.problem
