"""`scoring audit verify` compares every field a score or decision entry logged with the row it logged.

An insider who edits a row with raw SQL, without touching the log, must be named: not only for the score
itself but for every field that decides something downstream. The route decides whether the machine's
score stands; the blind flag decides whether an audit feeds the drift monitor; the model and policy
versions are what an appeal traces a credential decision back to. A copied row (one score counted twice)
and a row that borrows another kind of entry are caught too.
"""

from __future__ import annotations

import json

import pytest
from audit_edits import sql

from scoring.store import Store
from scoring.store.decisions import decision_in
from scoring.store.verify import _loads


def _one_of_each(store: Store) -> int:
    sub = store.add_submission("obs", 1, "s0", {"text": "evidence"})
    store.record_machine_score(sub.id, "questioning", 2, model_version="m-1", policy_version="p-1", route="human",
                               probabilities={"0": 0.1, "1": 0.2, "2": 0.3, "3": 0.4}, prediction_set=[1, 2, 3],
                               reason="confidence 0.300 < 0.620")
    store.record_human_score(sub.id, "questioning", 1, assessor="ann", kind="audit", blind=True)
    with store.write() as tx:
        decision_in(tx, sub.id, "obs", 1, "not_yet", "final", {"questioning": 1, "feedback": 0}, p_earned=0.12,
                    model_version="m-1", policy_version="p-1", reason="every criterion resolved")
    assert store.verify_audit().ok
    return sub.id


EDITS = [
    pytest.param("UPDATE machine_scores SET route = 'auto'", "machine_scores", "route='auto'", "'human'",
                 id="route-human-to-auto"),
    pytest.param("UPDATE machine_scores SET model_version = 'm-2'", "machine_scores", "model_version='m-2'", "'m-1'",
                 id="machine-model-version"),
    pytest.param("UPDATE machine_scores SET policy_version = 'p-lax'", "machine_scores", "policy_version='p-lax'",
                 "'p-1'", id="machine-policy-version"),
    pytest.param("UPDATE human_scores SET blind = false", "human_scores", "blind=False", "True", id="audit-not-blind"),
    pytest.param("UPDATE decisions SET model_version = 'm-2'", "decisions", "model_version='m-2'", "'m-1'",
                 id="decision-model-version"),
    pytest.param("UPDATE decisions SET p_earned = 0.95", "decisions", "p_earned=0.95", "0.12",
                 id="decision-probability"),
    # JSON columns: compared as values, read from their text
    pytest.param("UPDATE machine_scores SET prediction_set = '[1, 2]'", "machine_scores", "prediction_set=[1, 2]",
                 "[1, 2, 3]", id="machine-prediction-set"),
    pytest.param("""UPDATE machine_scores SET probabilities = '{"0": 0.4, "1": 0.3, "2": 0.2, "3": 0.1}'""",
                 "machine_scores", "probabilities={'0': 0.4, '1': 0.3, '2': 0.2, '3': 0.1}",
                 "{'0': 0.1, '1': 0.2, '2': 0.3, '3': 0.4}", id="machine-probabilities"),
    pytest.param("""UPDATE decisions SET levels = '{"feedback": 0, "questioning": 2}'""", "decisions",
                 "levels={'feedback': 0, 'questioning': 2}", "{'feedback': 0, 'questioning': 1}",
                 id="decision-levels"),
]


@pytest.mark.parametrize(("edit", "table", "has", "logged"), EDITS)
def test_an_edited_field_of_a_logged_row_is_named(store: Store, rubric, edit: str, table: str, has: str,
                                                  logged: str) -> None:
    _one_of_each(store)
    sql(store, edit)
    res = store.verify_audit()
    assert not res.ok
    assert res.problem.startswith(f"{table} row 1 (submission s0")  # the issuer's id, not the store's
    assert f"has {has} but audit entry {res.first_bad_seq} logged {logged}: the row was edited" in res.problem


def test_a_json_cell_spelled_differently_is_not_an_edit(store: Store, rubric) -> None:
    """A JSON column is compared by value: key order and spacing are not the row's content."""
    _one_of_each(store)
    sql(store, "UPDATE machine_scores SET probabilities = :p, prediction_set = :s",
         p='{ "3":0.4,"2":0.3,"1":0.2,"0":0.1 }', s=" [1,2,3] ")
    sql(store, "UPDATE decisions SET levels = :v", v='{"questioning":1,  "feedback":0}')
    assert store.verify_audit().ok


def test_a_json_cell_edited_into_a_bare_number_is_named(store: Store, rubric) -> None:
    """SQLite lets a JSON column hold a plain number; it is read as that number and named, not a crash."""
    if store.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL's json type takes no plain integer")
    _one_of_each(store)
    sql(store, "UPDATE machine_scores SET prediction_set = 3")
    res = store.verify_audit()
    assert not res.ok
    assert "has prediction_set=3 but audit entry" in res.problem and "logged [1, 2, 3]: the row was edited" in res.problem


@pytest.mark.parametrize("text", ['{"a":[1,2.5,null,true],"b":{"c":"\\u00e9"}}', ' {"a":1}', '{"a":1}\n', "\ufeff{}",
                                  '{"a":1}x', "", "1 2", "NaN", "[1,", b'{"a":1}', '"\\ud800"', "1e400", "-0", 7])
def test_the_row_checks_json_reader_is_json_loads(text: object) -> None:
    """The row check's faster reader returns what ``json.loads`` returns, and raises what it raises."""
    try:
        expected: object = json.loads(text)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)) as got:
            _loads(text)
        assert str(got.value) == str(exc)
    else:
        assert repr(_loads(text)) == repr(expected)


def test_a_copied_score_row_is_named(store: Store, rubric) -> None:
    _one_of_each(store)
    h = store.human_scores()[0]
    sql(store, "INSERT INTO human_scores (submission_id, criterion, score, assessor, rationale, blind, kind, "
                "created_at, audit_seq) SELECT submission_id, criterion, score, assessor, rationale, blind, kind, "
                "created_at, audit_seq FROM human_scores WHERE id = :i", i=h.id)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == h.audit_seq
    assert f"both claim audit entry {h.audit_seq}, which logged one human_score" in res.problem


def test_a_row_borrowing_another_kind_of_entry_is_named(store: Store, rubric) -> None:
    sub = _one_of_each(store)
    m, h = store.machine_scores()[0], store.human_scores()[0]
    # a machine score forged from the human score's entry: submission, criterion and score all agree
    sql(store, "INSERT INTO machine_scores (submission_id, criterion, score, rubric_id, rubric_version, created_at, "
                "audit_seq, route) VALUES (:s, 'questioning', 1, 'obs', 1, '2026-01-01', :q, 'auto')",
         s=sub, q=h.audit_seq)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == h.audit_seq, res.problem
    assert f"points at audit entry {h.audit_seq}, which logged a human_score, not a machine_score" in res.problem
    assert m.audit_seq != h.audit_seq


def test_a_rubric_edited_in_the_database_is_named(store: Store, rubric) -> None:
    """The rubric decides the scale and the award rule: editing its stored body changes every later decision."""
    _one_of_each(store)
    fp = rubric.fingerprint()
    sql(store, "UPDATE rubrics SET body = replace(body, '\"Questioning\"', '\"Asks questions\"')")
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == 1
    assert res.problem.startswith(f"rubric obs@1 was registered in audit entry 1 with fingerprint {fp}, but its "
                                  "stored body now has fingerprint ")
    assert "the rubric was edited in the database" in res.problem


def test_a_rubric_added_outside_the_service_is_named(store: Store, rubric) -> None:
    sql(store, "INSERT INTO rubrics (rubric_id, version, title, fingerprint, body, registered_at) "
                "SELECT rubric_id, 2, title, fingerprint, body, registered_at FROM rubrics")
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq is None
    assert res.problem == ("rubric obs@2 is in the rubrics table but no rubric_registered entry logs it: it was "
                           "added outside the service")
