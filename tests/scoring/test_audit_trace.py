"""`scoring audit trace SUBMISSION`: a compliance officer follows one credential decision back to its evidence.

From the issuer's id of the submission, the trace lists, in log order, the rubric, model and routing policy
entries the scores name, every machine and human score, the decisions and the credential, each with the
sequence number `scoring audit prove` takes. When an audit overturns an auto-accepted score after a
credential was issued, the decision changes on the record, and the trace says the credential no longer
rests on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from rubrics.schema import parse_rubric
from scoring.cli import app
from scoring.policy import RoutingPolicy
from scoring.store import Store
from scoring.store.decisions import decision_in
from scoring.store.policy_log import record_policy
from scoring.store.submissions import content_hash
from scoring.usecases.decisions import finalize

runner = CliRunner()
RUBRIC = {"id": "obs", "version": 1, "title": "Observation", "evidence": ["text"],
          "criteria": [{"id": "questioning", "title": "Questioning", "scale": {"min": 0, "max": 2}},
                       {"id": "feedback", "title": "Feedback", "scale": {"min": 0, "max": 2}}],
          "award": {"min_level": {"questioning": 2, "feedback": 2}}}


def _in_service(st: Store) -> None:
    """Rubric obs@1, model m-1 and routing policy p-1 registered, as a store holds them before scoring."""
    st.register_rubric(parse_rubric(RUBRIC))
    st.register_model("m-1", "models/m-1", rubric_id="obs")
    record_policy(st, RoutingPolicy(policy_version="p-1", rubric_id="obs", model_version="m-1"), by="ops")


def _earned_and_issued(db: str) -> int:
    """An auto-accepted 'earned' submission whose credential was issued; returns its store id."""
    with Store(db) as st:
        _in_service(st)
        sub = st.add_submission("obs", 1, "portfolio-7", {"text": "t"})
        for c in ("questioning", "feedback"):
            st.record_machine_score(sub.id, c, 2, model_version="m-1", policy_version="p-1", route="auto",
                                    reason="confidence 0.97 >= 0.90")
        with st.write() as tx:
            d = decision_in(tx, sub.id, "obs", 1, "earned", "machine", {"questioning": 2, "feedback": 2},
                            p_earned=0.95, model_version="m-1", policy_version="p-1", reason="auto")
            tx.append("credential_issued", {"submission_id": sub.id, "credential_id": "urn:uuid:c-1",
                                            "decision_id": d, "actor": "issuer-app"})
        return int(sub.id)


def test_the_trace_names_model_policy_scores_decision_and_credential(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    _earned_and_issued(db)
    res = runner.invoke(app, ["audit", "trace", "portfolio-7", "--db", db])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "submission portfolio-7 (store id 1), rubric obs@1: 7 audit entries"
    with Store(db) as st:
        evidence = st.find_submission("obs", "portfolio-7").content_hash
    assert lines[1] == (f"evidence {evidence}: SHA-256 of the stored evidence and metadata, pinned by entries "
                        "4, 5, 6")  # both machine scores and the decision pinned what is stored
    events = [ln.split(":")[0].split(" ", 2)[2] for ln in lines[2:]]
    assert events == ["rubric_registered", "model_registered", "policy_activated", "machine_score",
                      "machine_score", "credential_decision", "credential_issued"]
    assert (f"machine score questioning = 2, route auto (confidence 0.97 >= 0.90); model m-1, policy p-1; "
            f"evidence {evidence[:16]}") in res.output
    assert "credential urn:uuid:c-1 issued by issuer-app on decision 1" in res.output
    assert "WARNING" not in res.output


def test_an_audit_that_overturns_an_issued_award_is_flagged(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    sid = _earned_and_issued(db)
    with Store(db) as st:
        st.record_human_score(sid, "questioning", 1, assessor="auditor-zed", kind="audit", blind=True)
        d = finalize(st, None, sid, actor="auditor-zed")
        assert d is not None and d.outcome == "not_yet" and d.basis == "final"
    res = runner.invoke(app, ["audit", "trace", "portfolio-7", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [e["event"] for e in out["entries"]][-2:] == ["human_score", "credential_decision"]
    assert "audit human score questioning = 1 by auditor-zed (blind)" in out["entries"][-2]["text"]
    assert out["warnings"] == [
        "credential urn:uuid:c-1 (entry 7) was issued on decision 1 (earned, machine, entry 6), but the standing "
        f"decision is not_yet (final, entry {out['entries'][-1]['seq']}): the credential no longer rests on the "
        "record; revoke it (`scoring credentials revoke --stale`), or record why it stands"]


def test_an_unknown_submission_is_refused_in_words(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    _earned_and_issued(db)
    res = runner.invoke(app, ["audit", "trace", "portfolio-9", "--db", db])
    assert res.exit_code == 2 and "no submission 'portfolio-9' in the store" in res.output


def test_evidence_changed_after_it_was_scored_is_flagged(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    sid = _earned_and_issued(db)
    with Store(db) as st:
        pinned = st.submission(sid).content_hash
        with st.engine.connect().execution_options(store_write=True) as c, c.begin():
            c.execute(sa.text("UPDATE submissions SET evidence = :e WHERE id = :i"),
                      {"e": json.dumps({"text": "a better transcript"}), "i": sid})
        now = content_hash({"text": "a better transcript"}, {})
    res = runner.invoke(app, ["audit", "trace", "portfolio-7", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["evidence_hash"] == now
    assert [e["evidence_hash"] for e in out["entries"] if e["event"] in ("machine_score", "credential_decision")] \
        == [pinned] * 3
    assert out["warnings"] == [
        f"entry 4 pinned evidence {pinned[:16]}, but submission portfolio-7's stored evidence and metadata now hash "
        f"to {now[:16]}: the evidence was changed after that entry; this decision does not rest on the evidence as "
        "stored (`scoring audit verify` names the change)"]
    text = runner.invoke(app, ["audit", "trace", "portfolio-7", "--db", db]).output
    assert f"evidence {now}: SHA-256 of the stored evidence and metadata, which no entry pinned (see the warnings)" \
        in text


def test_revoking_the_overturned_credential_ends_the_warning_and_shows_in_the_trace(tmp_path: Path) -> None:
    """The credential here was issued before status lists (no status entry): the revocation is still
    recorded (who, why), said to be invisible to verifiers, and the trace stops warning."""
    from scoring.badges import keygen

    db = f"sqlite:///{tmp_path / 's.db'}"
    sid = _earned_and_issued(db)
    with Store(db) as st:
        st.record_human_score(sid, "questioning", 1, assessor="auditor-zed", kind="audit", blind=True)
        finalize(st, None, sid, actor="auditor-zed")
    priv, _pub = keygen(tmp_path / "k")
    res = runner.invoke(app, ["credentials", "revoke", "--stale", "--reason", "blind audit overturned questioning",
                              "--by", "registrar-kim", "--key", str(priv), "--db", db])
    out = " ".join(res.output.split())
    assert res.exit_code == 0 and "revoked urn:uuid:c-1 (submission portfolio-7" in out, out
    assert "verifiers cannot see this revocation" in out
    res = runner.invoke(app, ["audit", "trace", "portfolio-7", "--db", db, "--json"])
    got = json.loads(res.output)
    assert got["warnings"] == []
    assert got["entries"][-1]["event"] == "credential_revoked"
    assert got["entries"][-1]["text"] == ("credential urn:uuid:c-1 revoked by registrar-kim: blind audit overturned "
                                          "questioning (no status entry: verifiers cannot see it)")


def _many_submissions(db: str, n: int = 25) -> None:
    """Submissions 1..n (ids 10-19 begin with 1), each machine-scored and decided, some issued and released;
    plus an entry about submission 12 that quotes submission 1 in another field."""
    with Store(db) as st:
        _in_service(st)
        for k in range(1, n + 1):
            sub = st.add_submission("obs", 1, f"p-{k}", {"text": f"t{k}"})
            for c in ("questioning", "feedback"):
                st.record_machine_score(sub.id, c, 2, model_version="m-1", policy_version="p-1", route="auto",
                                        reason="confident")
            with st.write() as tx:
                d = decision_in(tx, sub.id, "obs", 1, "earned", "machine", {"questioning": 2, "feedback": 2},
                                p_earned=0.9, model_version="m-1", policy_version="p-1", reason="auto")
                if k % 2:
                    tx.append("credential_issued", {"submission_id": sub.id, "credential_id": f"urn:uuid:c-{k}",
                                                    "decision_id": d, "actor": "issuer-app"})
                tx.append("feedback_released", {"actor": "coach", "submission_id": sub.id})  # the id is last: "1}"
        with st.write() as tx:
            tx.append("feedback_released", {"actor": 'quoting "submission_id":1,', "submission_id": 12})


def test_the_trace_holds_exactly_the_entries_that_name_the_submission(tmp_path: Path) -> None:
    """Whatever the database matches on, the entries are those whose payload's submission_id is the
    submission: not 10..19, whose ids begin with 1, nor an entry that quotes the id in another field."""
    from scoring.usecases.trace import SUBMISSION_EVENTS, trace

    db = f"sqlite:///{tmp_path / 's.db'}"
    _many_submissions(db)
    with Store(db) as st:
        for sid in (1, 2, 12, 25):
            named = [e.seq for e in st.audit_entries() if e.event in SUBMISSION_EVENTS
                     and e.payload.get("submission_id") == sid]
            got = [ln.seq for ln in trace(st, sid).lines if ln.event in SUBMISSION_EVENTS]
            assert got == named and len(named) == (5 if sid % 2 else 4) + (sid == 12), (sid, got, named)
        assert [ln.event for ln in trace(st, 1).lines] == [
            "rubric_registered", "model_registered", "policy_activated", "machine_score", "machine_score",
            "credential_decision", "credential_issued", "feedback_released"]


def test_the_trace_does_not_read_the_entries_of_other_submissions(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """On a log of millions of entries, parsing every score and decision to find one submission's takes
    minutes; the trace parses only the payloads that name the submission (and the few context entries)."""
    from scoring.usecases.trace import trace

    db = f"sqlite:///{tmp_path / 's.db'}"
    _many_submissions(db)
    parsed: list[object] = []
    loads = json.loads

    def counting(text, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = loads(text, *args, **kwargs)
        parsed.append(out)
        return out

    with Store(db) as st:
        monkeypatch.setattr(json, "loads", counting)
        lines = trace(st, 1).lines
        monkeypatch.setattr(json, "loads", loads)
    assert len(lines) == 8
    others = [p for p in parsed if isinstance(p, dict) and p.get("submission_id") not in (None, 1)]
    assert others == []


def test_the_trace_of_a_resubmission_names_every_attempt_with_its_decision(tmp_path: Path) -> None:
    """An appeal or a regulator asks about one attempt; the trace says which attempt it is and where the
    others and their decisions are, both from the earlier attempt and from the later one."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    with Store(db) as st:
        _in_service(st)
        first = st.add_submission("obs", 1, "ana-1", {"text": "first try"})
        second = st.add_submission("obs", 1, "ana-2", {"text": "second try"}, {"revises": "ana-1"})
        with st.write() as tx:
            for sub, outcome in ((first, "not_yet"), (second, "earned")):
                decision_in(tx, sub.id, "obs", 1, outcome, "machine", {"questioning": 2, "feedback": 2},
                            p_earned=0.5, model_version="m-1", policy_version="p-1", reason="auto")
        seqs = {s.id: st.latest_decision(s.id).audit_seq for s in (first, second)}  # type: ignore[union-attr]
    chain = (f"ana-1 (store id 1, not_yet, entry {seqs[1]}{{}}) -> ana-2 (store id 2, earned, entry {seqs[2]}{{}})")
    for ext, k in (("ana-1", 1), ("ana-2", 2)):
        res = runner.invoke(app, ["audit", "trace", ext, "--db", db])
        assert res.exit_code == 0, res.output
        marks = ["; this trace" if k == n else "" for n in (1, 2)]
        assert res.output.splitlines()[2] == f"attempt {k} of 2: " + chain.format(*marks)
        got = json.loads(runner.invoke(app, ["audit", "trace", ext, "--db", db, "--json"]).output)
        assert [(a["submission"], a["decision"], a["this"]) for a in got["attempts"]] == [
            ("ana-1", "not_yet", k == 1), ("ana-2", "earned", k == 2)]
