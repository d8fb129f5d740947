"""`scoring audit verify` names whatever a raw SQL edit leaves in the log or a table, and never crashes on it.

Verification is what an external auditor runs on a store someone may have tampered with directly in SQL. The
attacker here has write access to the database and no checkpoint in the way (entries after the newest one,
or a store verified without ``--checkpoints``): they rewrite an entry's payload into JSON the service never
logs (a number, a string, null, an array), into text that is not JSON at all, or into JSON the database's
own JSON functions refuse, and recompute every hash from it so the chain verifies; or they put into a score
table's cell what its column's type would not take on PostgreSQL. Each must come back NOT VERIFIED with a
sentence that names the row or entry and what is wrong with it, never a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from audit_edits import rewrite_entry, sql

from scoring.store import Store
from scoring.store import tables as t
from scoring.store.decisions import decision_in

CID = "urn:uuid:c1"


def _one_of_each(store: Store) -> dict[str, int]:
    """Submission T-042 with a machine score, a human score, an adjudication, a decision and an issued and
    revoked credential, and one suspension; returns the seq of each kind of entry."""
    sub = store.add_submission("obs", 1, "T-042", {"text": "I asked them why twice."})
    m = store.record_machine_score(sub.id, "questioning", 2, model_version="m-1", policy_version="p-1",
                                   route="human", probabilities={"0": 0.1, "1": 0.2, "2": 0.3, "3": 0.4},
                                   prediction_set=[1, 2, 3], reason="confidence 0.300 < 0.620")
    h = store.record_human_score(sub.id, "questioning", 1, assessor="ann", kind="audit", blind=True)
    store.record_adjudication(sub.id, "questioning", 1, adjudicator="lead", human_score_ids=[h.id],
                              machine_score_id=m.id)
    with store.write() as tx:
        decision_in(tx, sub.id, "obs", 1, "not_yet", "final", {"questioning": 1, "feedback": 0}, p_earned=0.12,
                    model_version="m-1", policy_version="p-1", reason="every criterion resolved")
        issued = tx.append("credential_issued", {"submission_id": sub.id, "credential_id": CID, "decision_id": 1,
                                                 "issuer_id": "https://example.org", "status_list": 1,
                                                 "status_index": 7})
        tx.conn.execute(t.credential_status.insert().values(
            credential_id=CID, submission_id=sub.id, decision_id=1, issuer_id="https://example.org", list_number=1,
            status_index=7, issued_seq=issued, revoked_seq=None))
        revoked = tx.append("credential_revoked", {"credential_id": CID, "by": "kim", "reason": "issued in error"})
        tx.conn.execute(t.credential_status.update().values(revoked_seq=revoked))
    store.suspend_automation("obs", "feedback", "drift: audit QWK fell")
    assert store.verify_audit().ok
    return {e.event: e.seq for e in reversed(list(store.audit_entries()))}


def _payload(store: Store, seq: int, **changes: Any) -> str:
    """Entry ``seq``'s payload with some fields changed, as JSON text (not canonical: any spelling will do)."""
    return json.dumps(dict(store.audit_entry(seq).payload, **changes))


def _rewritten_entry(res: Any, seq: int) -> None:
    """The verdict on a rewritten entry: the entry is the problem, and the log before it still holds."""
    assert not res.ok and res.first_bad_seq == seq and res.kind == "chain" and res.intact_through == seq - 1, res


# ------------------------------------------------------------------ entries that logged a row


@pytest.mark.parametrize(("payload", "fault"), [
    ("5", "is a number (5), not a JSON object"),
    ('"score"', 'is a string ("score"), not a JSON object'),
    ("null", "is null, not a JSON object"),
    ("true", "is a boolean (true), not a JSON object"),
    ("[]", "is an array ([]), not a JSON object"),
])
def test_a_score_row_whose_entry_was_rewritten_into_json_that_is_not_an_object_is_named(
        store: Store, rubric, payload: str, fault: str) -> None:
    """The entry is what is wrong (kind "chain": the entries before it still hold). The submission is named by
    its store id: the entry no longer records the issuer's, as entries from before pins never did."""
    seq = _one_of_each(store)["machine_score"]
    rewrite_entry(store, seq, payload)
    res = store.verify_audit()
    _rewritten_entry(res, seq)
    assert res.problem == (f"machine_scores row 1 (submission 1, criterion questioning) points at audit entry {seq}, "
                           f"whose payload {fault}: the service logs every machine_score as a JSON object of its "
                           "fields, so the entry was rewritten outside the service and its hash recomputed to match")


@pytest.mark.parametrize(("event", "name"), [
    ("machine_score", "machine_scores row 1 (submission 1, criterion questioning)"),
    ("human_score", "human_scores row 1 (submission 1, criterion questioning)"),
    ("adjudication", "adjudications row 1 (submission 1, criterion questioning)"),
    ("credential_decision", "decisions row 1 (submission 1)"),
])
def test_every_score_table_names_an_entry_rewritten_into_an_array_of_its_field_names(
        store: Store, rubric, event: str, name: str) -> None:
    """``"score" in ["score", "outcome"]`` is true of an array too: the row check must not index it."""
    seq = _one_of_each(store)[event]
    rewrite_entry(store, seq, '["score", "outcome"]')
    res = store.verify_audit()
    _rewritten_entry(res, seq)
    assert res.problem.startswith(f"{name} points at audit entry {seq}, whose payload is an array "
                                  f'(["score", "outcome"]), not a JSON object: the service logs every {event} as')


def test_a_score_row_whose_entry_is_not_json_at_all_is_named(store: Store, rubric) -> None:
    """Hashed over the spliced text, a payload that is not JSON passes the chain: the row check names it."""
    seq = _one_of_each(store)["human_score"]
    rewrite_entry(store, seq, '1,"score":0', spliced=True)
    res = store.verify_audit()
    _rewritten_entry(res, seq)
    assert res.problem.startswith(f"human_scores row 1 (submission 1, criterion questioning) points at audit entry "
                                  f'{seq}, whose payload is not valid JSON (it reads 1,"score":0): the service logs')


def test_a_deleted_row_whose_entry_was_rewritten_too_is_named(store: Store, rubric) -> None:
    seq = _one_of_each(store)["human_score"]
    sql(store, "DELETE FROM human_scores")
    rewrite_entry(store, seq, "[]")
    res = store.verify_audit()
    _rewritten_entry(res, seq)
    assert res.problem == (f"audit entry {seq} (human_score) logged a human score but the human_scores table has no "
                           "row for it: the row was deleted; and its payload is an array ([]), not a JSON object: "
                           "the entry was rewritten outside the service too")


# ------------------------------------------------------------------ entries the database cannot read


def test_a_nul_escape_in_a_score_entry_is_named_on_postgresql(store: Store, rubric) -> None:
    """PostgreSQL text cannot hold NUL, so the service cannot log one there: every string a score or decision
    entry logs is also written to a text column, and the write is refused whole. Its JSON functions refuse
    the escape, so the entry can only have been rewritten. (SQLite keeps NUL in text: there the service
    logs the escape for a name that holds one, and the pin check reads it.)"""
    seq = _one_of_each(store)["credential_decision"]
    rewrite_entry(store, seq, _payload(store, seq, note="a\u0000b"))
    res = store.verify_audit()
    if store.engine.dialect.name != "postgresql":
        assert res.ok, res.problem
        return
    _rewritten_entry(res, seq)
    assert res.problem == (
        f"audit entry {seq}, credential_decision (submission T-042, outcome not_yet, rubric obs@1), has a payload "
        "PostgreSQL cannot read: it contains the escape \\u0000 (a NUL character), which no PostgreSQL text column "
        "can hold, so the service never logged it in this store: the entry was rewritten outside the service and "
        "its hash recomputed to match")


def test_nan_in_score_entries_is_named_at_the_earliest(store: Store, rubric) -> None:
    """NaN is not JSON (the service refuses to log it); Python reads it, the databases' JSON functions do not.
    Of two such entries, the earlier is named."""
    seqs = _one_of_each(store)
    for event in ("credential_decision", "adjudication"):
        body = _payload(store, seqs[event], note=float("nan"))
        assert "NaN" in body
        rewrite_entry(store, seqs[event], body, spliced=True)
    res = store.verify_audit()
    seq = seqs["adjudication"]
    _rewritten_entry(res, seq)
    db = "PostgreSQL" if store.engine.dialect.name == "postgresql" else "SQLite"
    assert res.problem == (f"audit entry {seq}, adjudication (submission T-042, criterion questioning, adjudicator "
                           f"lead, score 1), has a payload {db} cannot read: it contains NaN or Infinity, which are "
                           "not JSON numbers, so the service never logged it: the entry was rewritten outside the "
                           "service and its hash recomputed to match")


def test_a_pin_that_names_no_submission_is_named(store: Store, rubric) -> None:
    """The row check skips a field an older release did not log; a pin without its store id is no such entry:
    pins came with the external id and content hash, always beside the store id."""
    seq = _one_of_each(store)["credential_decision"]
    p = store.audit_entry(seq).payload
    rewrite_entry(store, seq, json.dumps({k: v for k, v in p.items() if k != "submission_id"}))
    res = store.verify_audit()
    _rewritten_entry(res, seq)
    assert res.problem == (f"audit entry {seq}, credential_decision (submission T-042, outcome not_yet, rubric obs@1), "
                           f"pinned evidence {p['content_hash'][:16]} without naming its submission: the service logs "
                           "a pin's store id, external id and content hash together, so the entry was rewritten "
                           "outside the service and its hash recomputed to match")


# ------------------------------------------------------------------ entries whose payload verification reads


@pytest.mark.parametrize("event", ["automation_suspended", "rubric_registered", "credential_issued",
                                   "credential_revoked"])
def test_an_entry_the_table_checks_read_rewritten_into_an_array_is_named(store: Store, rubric, event: str) -> None:
    seq = _one_of_each(store)[event]
    rewrite_entry(store, seq, "[]")
    res = store.verify_audit()
    _rewritten_entry(res, seq)
    if event.startswith("credential"):
        assert res.problem == (f"credential_status row of {CID} (list 1, index 7) points at audit entry {seq}, "
                               f"whose payload is an array ([]), not a JSON object: the service logs every {event} "
                               "as a JSON object of its fields, so the entry was rewritten outside the service and "
                               "its hash recomputed to match")
    else:
        assert res.problem == (f"entry {seq} ({event}) payload is an array ([]), not a JSON object: the service logs "
                               "every entry as a JSON object, so it was rewritten outside the service and its hash "
                               "recomputed to match")


def test_a_suspension_entry_that_is_not_json_is_named(store: Store, rubric) -> None:
    seq = _one_of_each(store)["automation_suspended"]
    rewrite_entry(store, seq, "{}}", spliced=True)
    res = store.verify_audit()
    _rewritten_entry(res, seq)
    assert res.problem.startswith(f"entry {seq} (automation_suspended) payload is not valid JSON (it reads {{}}}}): ")


def test_a_credential_entry_whose_row_was_deleted_and_payload_rewritten_is_named(store: Store, rubric) -> None:
    seq = _one_of_each(store)["credential_issued"]
    sql(store, "DELETE FROM credential_status")
    rewrite_entry(store, seq, "7")
    res = store.verify_audit()
    _rewritten_entry(res, seq)
    assert res.problem.startswith(f"audit entry {seq} (credential_issued) payload is a number (7), not a JSON object")


# ------------------------------------------------------------------ JSON nested too deeply to read

DEEP = "[" * 5000 + "]" * 5000


def test_an_entry_edited_into_json_nested_too_deeply_to_read_is_named(store: Store, rubric) -> None:
    seq = _one_of_each(store)["human_score"]
    sql(store, "UPDATE audit_log SET payload = :p WHERE seq = :s", p=DEEP, s=seq)  # hashes left as they were
    res = store.verify_audit()
    _rewritten_entry(res, seq)
    assert res.problem == f"entry {seq} (human_score) payload is nested too deeply to read: edited"


def test_evidence_edited_into_json_nested_too_deeply_to_read_is_named(store: Store, rubric) -> None:
    seq = _one_of_each(store)["machine_score"]
    sql(store, "UPDATE submissions SET evidence = :p", p=DEEP)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == seq
    assert "the evidence of submission T-042" in res.problem and "no longer valid JSON" in res.problem


def test_a_rubric_body_edited_into_json_nested_too_deeply_to_read_is_named(store: Store, rubric) -> None:
    _one_of_each(store)
    sql(store, "UPDATE rubrics SET body = :p", p=DEEP)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == 1
    assert "rubric obs@1 was registered in audit entry 1" in res.problem and "fingerprint not valid JSON" in res.problem


# ------------------------------------------------------------------ cells PostgreSQL's column types refuse


def _sqlite_only(store: Store) -> None:
    if store.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL's column types refuse this edit")


@pytest.mark.parametrize(("table", "column", "logged"), [
    ("machine_scores", "prediction_set", "[1, 2, 3]"),
    ("machine_scores", "probabilities", "{'0': 0.1, '1': 0.2, '2': 0.3, '3': 0.4}"),
    ("decisions", "levels", "{'feedback': 0, 'questioning': 1}"),
    ("adjudications", "human_score_ids", "[1]"),
])
def test_a_json_cell_edited_into_invalid_json_is_named(store: Store, rubric, table: str, column: str,
                                                       logged: str) -> None:
    _sqlite_only(store)
    _one_of_each(store)
    sql(store, f"UPDATE {table} SET {column} = '{{not json'")
    res = store.verify_audit()
    assert not res.ok and res.kind == "tables"
    assert res.problem.startswith(f"{table} row 1 (submission T-042")
    assert res.problem.endswith(f"has {column}='{{not json' (not valid JSON) but audit entry {res.first_bad_seq} "
                                f"logged {logged}: the row was edited")


def test_a_row_pointing_at_an_entry_number_that_is_not_a_number_is_named(store: Store, rubric) -> None:
    _sqlite_only(store)
    _one_of_each(store)
    sql(store, "UPDATE human_scores SET audit_seq = 'x'")
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq is None and res.kind == "tables"
    assert res.problem == ("human_scores row 1 (submission 1, criterion questioning) points at audit entry 'x', "
                           "which is not an entry number: the row was edited outside the service")


def test_suspension_rows_holding_what_their_columns_would_refuse_are_named(store: Store, rubric) -> None:
    _sqlite_only(store)
    _one_of_each(store)
    sql(store, "UPDATE suspensions SET lifted_at = 'soon'")  # not a time, but not NULL: routing reads it as lifted
    res = store.verify_audit()
    assert not res.ok and "shows a lift by None that no automation_resumed entry logs: lifted outside the service" \
        in res.problem
    sql(store, "UPDATE suspensions SET lifted_at = NULL, details = '{not json'")
    res = store.verify_audit()
    assert not res.ok and res.problem.startswith("suspensions row 1 (obs/feedback) holds details that are not valid "
                                                 "JSON ('{not json'): the row was edited outside the service")
    sql(store, "UPDATE suspensions SET details = '{}'")
    assert store.verify_audit().ok
    sql(store, "INSERT INTO suspensions (rubric_id, criterion, reason, details, suspended_at, audit_seq) VALUES "
                "('obs', 'questioning', 'r', '{}', '2026-01-01', 'x'), ('obs', 'questioning', 'r', '{}', "
                "'2026-01-01', 1)")
    res = store.verify_audit()
    assert not res.ok and res.problem == ("suspensions row 3 (obs/questioning) points at entry 1, which logged no "
                                          "suspension: the row was added outside the service")


def test_an_entry_whose_event_is_not_text_is_named(store: Store, rubric) -> None:
    _sqlite_only(store)
    seq = _one_of_each(store)["human_score"]
    sql(store, "UPDATE audit_log SET event = CAST('human_score' AS BLOB) WHERE seq = :s", s=seq)
    res = store.verify_audit()
    _rewritten_entry(res, seq)
    assert res.problem == f"entry {seq}'s event column holds b'human_score', not text: edited"


def test_of_two_rewritten_entries_in_different_tables_the_earliest_is_named(store: Store, rubric) -> None:
    """The tables are read one after the other (machine scores first); the finding reported is the earliest
    entry any of them names, so the "entries 1..N verified" it comes with never covers an entry another table
    found rewritten: here a late machine score and an earlier human score."""
    seqs = _one_of_each(store)
    sub = store.submissions()[0]
    late = store.record_machine_score(sub.id, "feedback", 1, model_version="m-2", route="human",
                                      probabilities={"0": 0.5, "1": 0.5}).audit_seq
    early = seqs["human_score"]
    assert early < late
    rewrite_entry(store, early, "[]")
    rewrite_entry(store, late, "[]")
    res = store.verify_audit()
    _rewritten_entry(res, early)
