"""What `scoring audit verify` prints when it fails: where the problem is, what it logged, and what still holds.

A compliance officer quotes this line in a decision file. It must name the entry and the score it logged
(event, submission, criterion), and must not overstate what was verified: after a checkpoint mismatch no
entry of the signed range is proven; after a table check fails the log itself is intact.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from rubrics.schema import parse_rubric
from scoring.cli import app
from scoring.store import Store
from scoring.store.audit import entry_hash

runner = CliRunner()
RUBRIC = {"id": "obs", "version": 1, "title": "Observation", "evidence": ["text"],
          "criteria": [{"id": "questioning", "title": "Questioning", "scale": {"min": 0, "max": 3}}]}


def _store(tmp_path: Path) -> tuple[str, list[str]]:
    """A store of three scored submissions with one signed checkpoint; returns its URL and the verify command."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    with Store(db) as st:
        st.register_rubric(parse_rubric(RUBRIC))
        for i in range(3):
            sub = st.add_submission("obs", 1, f"s{i}", {"text": "t"})
            st.record_machine_score(sub.id, "questioning", 1, model_version="m-1", route="auto")
            st.record_human_score(sub.id, "questioning", 2, assessor="ann", kind="audit")
    assert runner.invoke(app, ["audit", "keygen", "--out", str(tmp_path / "keys")]).exit_code == 0
    res = runner.invoke(app, ["audit", "checkpoint", "--db", db, "--key", str(tmp_path / "keys" / "audit-ed25519.pem"),
                              "--out", str(tmp_path / "cp"), "--init"])
    assert res.exit_code == 0, res.output
    return db, ["audit", "verify", "--db", db, "--checkpoints", str(tmp_path / "cp"),
                "--public-key", str(tmp_path / "keys" / "audit-ed25519.pub.pem")]


def _sql(db: str, *sql: str, **params: str) -> None:
    with Store(db) as st, st.engine.connect().execution_options(store_write=True) as c, c.begin():
        for q in sql:
            c.execute(sa.text(q), params)


def test_an_edited_entry_is_named_with_the_score_it_now_reads(tmp_path: Path) -> None:
    db, verify = _store(tmp_path)
    _sql(db, "UPDATE audit_log SET payload = replace(payload, :a, :b) WHERE seq = 3", a='"score":2', b='"score":0')
    res = runner.invoke(app, verify)
    assert res.exit_code == 1
    assert "audit log BROKEN at entry 3: entry 3 content does not match its hash" in res.output
    assert ("edited; it now reads human_score (submission s0, criterion questioning, assessor ann, score 0) "
            "(entries 1..2 verified)") in res.output


def test_reordered_entries_are_named(tmp_path: Path) -> None:
    db, verify = _store(tmp_path)
    _sql(db, "UPDATE audit_log SET seq = -1 WHERE seq = 3", "UPDATE audit_log SET seq = 3 WHERE seq = 4",
         "UPDATE audit_log SET seq = 4 WHERE seq = -1")
    res = runner.invoke(app, verify)
    assert res.exit_code == 1
    assert "at entry 3: entry 3, machine_score (submission s1, criterion questioning, score 1, rubric obs@1" in res.output
    assert "does not follow entry 2" in res.output and "entries were moved, inserted or removed here" in res.output


def test_a_rewrite_under_a_checkpoint_claims_no_entry_verified(tmp_path: Path) -> None:
    db, verify = _store(tmp_path)
    _sql(db, "UPDATE audit_log SET payload = replace(payload, :a, :b) WHERE seq = 5",
         "UPDATE human_scores SET score = 0 WHERE audit_seq = 5", a='"score":2', b='"score":0')
    with Store(db) as st, st.engine.connect().execution_options(store_write=True) as c, c.begin():
        prev = c.execute(sa.text("SELECT entry_hash FROM audit_log WHERE seq = 4")).scalar_one()
        for seq, event, payload in c.execute(sa.text("SELECT seq, event, payload FROM audit_log WHERE seq >= 5 "
                                                     "ORDER BY seq")).all():
            h = entry_hash(seq, event, payload, prev, st.canonical_form())
            c.execute(sa.text("UPDATE audit_log SET prev_hash = :p, entry_hash = :h WHERE seq = :s"),
                      {"p": prev, "h": h, "s": seq})
            prev = h
    res = runner.invoke(app, verify)
    assert res.exit_code == 1
    assert "audit log BROKEN (first bad checkpoint: checkpoint-000000000007-" in res.output
    assert "an entry in 1..7 was rewritten" in res.output and "(no earlier checkpoint proves any entry)" in res.output
    assert "verified before it" not in res.output


def test_an_edited_row_says_the_log_itself_is_intact(tmp_path: Path) -> None:
    db, verify = _store(tmp_path)
    _sql(db, "UPDATE human_scores SET score = 3 WHERE id = 2")
    res = runner.invoke(app, verify)
    assert res.exit_code == 1
    assert "audit log BROKEN at entry 5: human_scores row 2 (submission s1, criterion questioning) has score=3" in res.output
    assert "(the log itself is intact, 7 entries; a table no longer says what it logged)" in res.output


def test_a_database_rolled_back_to_an_older_copy_is_named(tmp_path: Path) -> None:
    db, verify = _store(tmp_path)
    _sql(db, "DELETE FROM human_scores WHERE audit_seq = 7", "DELETE FROM audit_log WHERE seq = 7")
    res = runner.invoke(app, verify)
    assert res.exit_code == 1
    assert "entries 7..7 were removed (truncated, or the database was restored from an older copy)" in res.output


def test_a_folder_without_checkpoints_verifies_nothing(tmp_path: Path) -> None:
    """An empty folder (a wrong path, or checkpoints wiped from the server) must not read "OK": a pass
    against zero checkpoints proves nothing an insider could not forge."""
    db, verify = _store(tmp_path)
    for f in (tmp_path / "cp").iterdir():
        f.unlink()
    res = runner.invoke(app, verify)
    assert res.exit_code == 1
    assert f"audit log NOT VERIFIED: no checkpoint files (checkpoint-*.txt) in {tmp_path / 'cp'}" in res.output


def test_an_ok_line_names_the_entries_no_checkpoint_covers_yet(tmp_path: Path) -> None:
    """A forged entry appended with correct hashes after the newest checkpoint verifies: the OK line must
    say which entries only the chain protects, so nobody reads "extends all checkpoints" as "all proven"."""
    db, verify = _store(tmp_path)
    res = runner.invoke(app, verify)
    assert res.exit_code == 0 and res.output.rstrip().endswith("extends all 1 checkpoints")
    with Store(db) as st:
        st.record_human_score(1, "questioning", 0, assessor="mallory", kind="first")
    res = runner.invoke(app, verify)
    assert res.exit_code == 0
    assert ("extends all 1 checkpoints; entries 8..8 are after the newest checkpoint and protected only by the "
            "chain (sign one with `scoring audit checkpoint`)") in res.output


def test_evidence_changed_after_it_was_scored_is_named_by_the_issuers_id(tmp_path: Path) -> None:
    db, verify = _store(tmp_path)
    _sql(db, "UPDATE submissions SET evidence = :e WHERE external_id = 's1'", e='{"text": "better"}')
    res = runner.invoke(app, verify)
    assert res.exit_code == 1
    assert ("audit log BROKEN at entry 4: the evidence of submission s1 (rubric obs@1, store id 2) was changed "
            "after entry 4 scored it: its evidence and metadata now hash to ") in res.output
    assert "(the log itself is intact, 7 entries; a table no longer says what it logged)" in res.output


def test_a_row_whose_entry_was_rewritten_into_a_number_is_named_not_a_traceback(tmp_path: Path) -> None:
    """An entry after the newest checkpoint, rewritten into a payload the service never logs with its hash
    recomputed: the line names the row, the entry and what is wrong, and says which entries still hold."""
    db, verify = _store(tmp_path)
    with Store(db) as st:
        st.record_human_score(1, "questioning", 0, assessor="mallory", kind="first")  # entry 8, unsigned
        form = st.canonical_form()
    with Store(db) as st, st.engine.connect().execution_options(store_write=True) as c, c.begin():
        prev = c.execute(sa.text("SELECT entry_hash FROM audit_log WHERE seq = 7")).scalar_one()
        c.execute(sa.text("UPDATE audit_log SET payload = '5', entry_hash = :h WHERE seq = 8"),
                  {"h": entry_hash(8, "human_score", "5", prev, form)})
    res = runner.invoke(app, verify)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.exception  # not a traceback
    assert ("audit log BROKEN at entry 8: human_scores row 4 (submission 1, criterion questioning) points at audit "
            "entry 8, whose payload is a number (5), not a JSON object: the service logs every human_score as a JSON "
            "object of its fields, so the entry was rewritten outside the service and its hash recomputed to match "
            "(entries 1..7 verified)") in " ".join(res.output.split())
