"""Revoking Open Badges credentials, as an issuer and a verifier do it, on SQLite and PostgreSQL.

The story: three educators earned the credential and were issued it. A blind audit overturns one
criterion of one of them, so the standing decision becomes "not yet" while the educator still holds a
signed credential. The issuer revokes what no longer rests on the record (`revoke --stale`), publishes the
status list, and a verifier holding only the issuer's public key and that published file sees the revoked
credential as REVOKED and the others as valid. The record shows who revoked which credential, when and why,
and still verifies. After a later adjudication earns it again, a new credential is issued; the old one stays
revoked.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from rubrics import load_rubric
from rubrics.schema import BUNDLED_DIR
from scoring import badges
from scoring.cli import app
from scoring.store import Store
from scoring.store import tables as t
from scoring.store.decisions import decision_in

RUBRIC = load_rubric(BUNDLED_DIR / "checking-for-understanding.yaml")
EARNED = {"questioning": 2, "adjusting": 2, "self_assessment": 1}
NOT_YET = {"questioning": 0, "adjusting": 2, "self_assessment": 1}
ISSUER_ID = "https://credentials.example.org/district-7"
runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, " ".join(res.output.split())


def _decide(db: str, external_id: str, levels: dict[str, int], outcome: str) -> None:
    with Store(db) as st:
        (sub,) = st.submissions_named(external_id, RUBRIC.id)
        with st.write() as tx:
            decision_in(tx, sub.id, RUBRIC.id, RUBRIC.version, outcome, "final", levels)


@pytest.fixture
def issued(store_url: str, tmp_path: Path) -> dict[str, Path]:
    """Three earned submissions with signed credentials in tmp_path/c; the issuer's keys in tmp_path/k."""
    with Store(store_url) as st:
        st.register_rubric(RUBRIC)
        subs = st.add_submissions(RUBRIC.id, RUBRIC.version, [(x, {"reflection": "..."}, {})
                                                               for x in ("ana", "ben", "cai")])
        with st.write() as tx:
            for s in subs:
                decision_in(tx, s.id, RUBRIC.id, RUBRIC.version, "earned", "final", EARNED)
    badges.keygen(tmp_path / "k")
    code, out = _run("credentials", "issue", "--key", str(tmp_path / "k" / "issuer-ed25519.pem"), "--issuer-id",
                     ISSUER_ID, "--issuer-name", "District 7", "--rubric", RUBRIC.id, "--out", str(tmp_path / "c"),
                     "--db", store_url)
    assert code == 0 and "3 credential(s) signed" in out, out
    assert f"status list {ISSUER_ID}/status/1 (3 credential(s), 0 revoked)" in out, out
    return {"priv": tmp_path / "k" / "issuer-ed25519.pem", "pub": tmp_path / "k" / "issuer-ed25519.pub.pem",
            "creds": tmp_path / "c", "pub_dir": tmp_path / "published"}


def _status_of(jwt_file: Path) -> dict[str, str]:
    return json.loads(jwt_file.with_suffix(".json").read_text())["credentialStatus"]


def _independent_bit(list_jwt: str, index: int) -> int:
    """The status bit read the way the specification says, with nothing of the service's code: the JWS
    payload (base64url JSON), encodedList = 'u' + base64url(no padding) of GZIP(bitstring), index 0 = the
    left-most bit of the first byte."""
    payload = list_jwt.strip().split(".")[1]
    vc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert vc["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    subj = vc["credentialSubject"]
    assert subj["type"] == "BitstringStatusList" and subj["statusPurpose"] == "revocation"
    enc = subj["encodedList"]
    assert enc[0] == "u" and "=" not in enc
    bits = gzip.decompress(base64.urlsafe_b64decode(enc[1:] + "=" * (-len(enc[1:]) % 4)))
    assert len(bits) >= 16 * 1024  # at least 16KB: herd privacy
    return (bits[index // 8] >> (7 - index % 8)) & 1


def test_every_new_credential_carries_a_distinct_logged_status_entry(store_url: str, issued: dict[str, Path]) -> None:
    entries = {f.stem: _status_of(f) for f in issued["creds"].glob("*.jwt")}
    assert set(entries) == {"ana", "ben", "cai"}
    for s in entries.values():
        assert s["type"] == "BitstringStatusListEntry" and s["statusPurpose"] == "revocation"
        assert s["statusListCredential"] == f"{ISSUER_ID}/status/1" and s["statusListIndex"].isdigit()
    assert len({s["statusListIndex"] for s in entries.values()}) == 3
    with Store(store_url) as st:
        logged = {e.payload["status_index"] for e in st.audit_entries(event="credential_issued")}
    assert logged == {int(s["statusListIndex"]) for s in entries.values()}


def test_an_overturned_award_is_revoked_and_a_verifier_sees_it(store_url: str, issued: dict[str, Path]) -> None:
    _decide(store_url, "ben", NOT_YET, "not_yet")  # a blind audit overturned ben's questioning score
    code, out = _run("audit", "trace", "ben", "--db", store_url)
    assert code == 0 and "WARNING: credential" in out, out

    code, out = _run("credentials", "revoke", "--stale", "--reason", "blind audit: questioning not met",
                     "--by", "registrar-kim", "--key", str(issued["priv"]), "--out", str(issued["pub_dir"]),
                     "--db", store_url)
    assert code == 0, out
    ben_status = _status_of(issued["creds"] / "ben.jwt")
    ben_id = json.loads((issued["creds"] / "ben.json").read_text())["id"]
    assert f"revoked {ben_id} (submission ben" in out and "1 credential(s) revoked by registrar-kim" in out, out
    assert "ana" not in out and "cai" not in out  # exactly the stale one
    assert f"status list {ISSUER_ID}/status/1 (3 credential(s), 1 revoked)" in out, out

    published = issued["pub_dir"] / "status" / "1.jwt"
    assert _independent_bit(published.read_text(), int(ben_status["statusListIndex"])) == 1
    for other in ("ana", "cai"):
        assert _independent_bit(published.read_text(), int(_status_of(issued["creds"] / f"{other}.jwt")
                                                            ["statusListIndex"])) == 0

    verify = ("credentials", "verify", "--key", str(issued["pub"]), "--status-list", str(published))
    code, out = _run(*verify, str(issued["creds"] / "ben.jwt"))
    assert code == 1 and out.startswith(f"REVOKED {issued['creds'] / 'ben.jwt'}"), out
    code, out = _run(*verify, str(issued["creds"] / "ana.jwt"))
    assert code == 0 and "not revoked: index" in out, out
    code, out = _run("credentials", "verify", "--key", str(issued["pub"]), str(issued["creds"] / "ben.jwt"))
    assert code == 0 and "status not checked (no --status-list given" in out, out

    with Store(store_url) as st:
        (e,) = st.audit_entries(event="credential_revoked")
        assert st.verify_audit().ok
    assert (e.payload["credential_id"], e.payload["by"], e.payload["reason"]) == (
        ben_id, "registrar-kim", "blind audit: questioning not met")
    assert e.payload["status_index"] == int(ben_status["statusListIndex"]) and e.payload["at"]
    code, out = _run("audit", "verify", "--db", store_url)
    assert code == 0, out
    code, out = _run("audit", "trace", "ben", "--db", store_url)
    assert code == 0 and "WARNING" not in out and "revoked by registrar-kim: blind audit" in out, out

    code, out = _run("credentials", "revoke", "--stale", "--reason", "again", "--by", "registrar-kim",
                     "--key", str(issued["priv"]), "--db", store_url)
    assert code == 0 and "nothing revoked" in out, out


def test_a_revised_decision_is_issued_anew_and_the_old_credential_stays_revoked(
        store_url: str, issued: dict[str, Path], tmp_path: Path) -> None:
    _decide(store_url, "ben", NOT_YET, "not_yet")
    old = (issued["creds"] / "ben.jwt").read_text()
    old_index = int(_status_of(issued["creds"] / "ben.jwt")["statusListIndex"])
    code, out = _run("credentials", "revoke", "--submission", "ben", "--reason", "overturned", "--by", "kim",
                     "--key", str(issued["priv"]), "--db", store_url)
    assert code == 0 and "1 credential(s) revoked" in out and "publish the change" in out, out
    _decide(store_url, "ben", EARNED, "earned")  # an adjudication restores the award
    code, out = _run("credentials", "issue", "--key", str(issued["priv"]), "--issuer-id", ISSUER_ID,
                     "--issuer-name", "District 7", "--submission", "ben", "--out", str(issued["creds"]),
                     "--db", store_url)
    assert code == 0 and "1 credential(s) signed" in out and "(4 credential(s), 1 revoked)" in out, out
    new_index = int(_status_of(issued["creds"] / "ben.jwt")["statusListIndex"])
    assert new_index != old_index  # an index is never handed out again
    (tmp_path / "old.jwt").write_text(old)
    code, out = _run("credentials", "verify", "--key", str(issued["pub"]), "--status-list",
                     str(issued["creds"] / "status" / "1.jwt"), str(tmp_path / "old.jwt"), str(issued["creds"] / "ben.jwt"))
    assert code == 1 and "REVOKED" in out and out.count("not revoked") == 1, out


def test_bad_input_is_refused_in_words(store_url: str, issued: dict[str, Path], tmp_path: Path) -> None:
    with Store(store_url) as st:
        st.add_submissions(RUBRIC.id, RUBRIC.version, [("dee", {"reflection": "..."}, {})])
    revoke = ("credentials", "revoke", "--reason", "r", "--by", "kim", "--key", str(issued["priv"]), "--db", store_url)
    code, out = _run(*revoke, "--submission", "dee")
    assert code == 2 and "submission 'dee' has no issued credential (no decision yet): nothing to revoke" in out, out
    code, out = _run(*revoke, "--submission", "nobody")
    assert code == 2 and "no submission 'nobody' in the store" in out, out
    code, out = _run(*revoke)
    assert code == 2 and "--submission ID (repeatable) or --stale" in out, out
    with Store(store_url) as st:
        assert list(st.audit_entries(event="credential_revoked")) == []  # nothing recorded by a refusal

    badges.keygen(tmp_path / "other")  # a status list signed by someone else's key
    code, out = _run("credentials", "status-list", "--key", str(tmp_path / "other" / "issuer-ed25519.pem"),
                     "--issuer-id", ISSUER_ID, "--out", str(tmp_path / "forged"), "--db", store_url)
    assert code == 0, out
    code, out = _run("credentials", "verify", "--key", str(issued["pub"]), "--status-list",
                     str(tmp_path / "forged" / "status" / "1.jwt"), str(issued["creds"] / "ana.jwt"))
    assert code == 2 and "does not verify with this issuer key" in out and "signed by another key" in out, out

    legacy = badges.build_credential(RUBRIC, EARNED, "old@school.org", badges.Issuer(ISSUER_ID, "District 7"))
    (tmp_path / "legacy.jwt").write_text(badges.sign(legacy, badges.load_key(issued["priv"], private=True)))
    code, out = _run("credentials", "verify", "--key", str(issued["pub"]), "--status-list",
                     str(issued["creds"] / "status" / "1.jwt"), str(tmp_path / "legacy.jwt"))
    assert code == 0 and "issued without a status entry" in out, out


def test_clearing_a_revocation_in_the_database_fails_audit_verify(store_url: str, issued: dict[str, Path]) -> None:
    code, out = _run("credentials", "revoke", "--submission", "ana", "--reason", "issued in error", "--by", "kim",
                     "--key", str(issued["priv"]), "--db", store_url)
    assert code == 0, out
    with Store(store_url) as st:
        with st.engine.begin() as conn:
            conn.execute(sa.update(t.credential_status).values(revoked_seq=None))
        res = st.verify_audit()
    assert not res.ok and "the revocation was cleared outside the service" in (res.problem or "")


def _sub_id(db: str, external_id: str) -> int:
    with Store(db) as st:
        (sub,) = st.submissions_named(external_id, RUBRIC.id)
        return int(sub.id)


def _issue(db: str, keys: dict[str, Path], *args: str, issuer_id: str = ISSUER_ID) -> tuple[int, str]:
    return _run("credentials", "issue", "--key", str(keys["priv"]), "--issuer-id", issuer_id, "--issuer-name",
                "District 7", "--out", str(keys["creds"]), "--db", db, *args)


def test_two_overlapping_revocations_log_one_and_the_store_still_verifies(
        store_url: str, issued: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two registrars revoke ana's credential at the same moment. The second run, which had found nothing
    revoked before it began writing, learns inside its own write transaction that the first got there: it
    logs nothing and says who revoked it and when; the log holds one revocation and verifies."""
    from scoring.usecases import revocation

    ana = _sub_id(store_url, "ana")
    real_write = Store.write
    raced = []

    @contextmanager
    def write_after_another_run(self: Store) -> Iterator[Any]:
        if not raced:  # the other run commits between this run's reading and its writing
            raced.append(1)
            with Store(store_url) as other:
                revocation.revoke(other, revocation.of_submission(other, ana), reason="issued in error", by="lee",
                                  kid="k")
        with real_write(self) as tx:
            yield tx

    monkeypatch.setattr(Store, "write", write_after_another_run)
    code, out = _run("credentials", "revoke", "--submission", "ana", "--reason", "wrong educator", "--by", "kim",
                     "--key", str(issued["priv"]), "--db", store_url)
    assert code == 0 and raced, out
    assert "(submission ana) already revoked by lee on 20" in out and "issued in error; nothing new recorded" in out
    assert "0 credential(s) revoked by kim" in out, out
    monkeypatch.undo()
    with Store(store_url) as st:
        assert [e.payload["by"] for e in st.audit_entries(event="credential_revoked")] == ["lee"]
    code, out = _run("audit", "verify", "--db", store_url)
    assert code == 0, out


def test_a_revocation_logged_twice_by_an_older_release_still_verifies(store_url: str, issued: dict[str, Path]) -> None:
    """Stores that older releases let two overlapping runs revoke twice hold a second entry for a credential
    whose row keeps the first: the credential is revoked either way, so audit verify accepts it."""
    code, out = _run("credentials", "revoke", "--submission", "ana", "--reason", "issued in error", "--by", "kim",
                     "--key", str(issued["priv"]), "--db", store_url)
    assert code == 0, out
    with Store(store_url) as st:
        (first,) = st.audit_entries(event="credential_revoked")
        with st.write() as tx:
            tx.append("credential_revoked", {**first.payload, "by": "lee"})
        assert st.verify_audit().ok


def test_a_revoked_credential_is_not_signed_again_by_the_next_issue(store_url: str, issued: dict[str, Path]) -> None:
    """ana's credential was issued in error and revoked; her decision still says "earned". The next bulk
    issue does not quietly sign her a fresh valid credential: the revocation is final and the run says so.
    Signing again takes --despite-revocation with a reason, which the issuance logs."""
    code, out = _run("credentials", "revoke", "--submission", "ana", "--reason", "issued in error", "--by", "kim",
                     "--key", str(issued["priv"]), "--db", store_url)
    assert code == 0, out
    code, out = _issue(store_url, issued, "--rubric", RUBRIC.id)
    assert code == 0 and "0 credential(s) signed" in out, out
    assert "not signed: submission 'ana': its credential of this decision" in out, out
    assert "was revoked by kim on 20" in out and "(issued in error; entry" in out and "--despite-revocation" in out
    assert "1 not signed again: revoked for the same decision" in out and "2 already in" in out, out
    code, out = _issue(store_url, issued, "--reissue", "--submission", "ana")
    assert code == 0 and "0 credential(s) signed" in out, out  # --reissue does not undo a revocation either
    with Store(store_url) as st:
        assert len(list(st.audit_entries(event="credential_issued"))) == 3

    code, out = _issue(store_url, issued, "--submission", "ana", "--despite-revocation", "recipient corrected")
    assert code == 0 and "1 credential(s) signed" in out, out
    with Store(store_url) as st:
        last = list(st.audit_entries(event="credential_issued"))[-1]
        assert last.payload["despite_revocation"]["reason"] == "recipient corrected"
        assert st.verify_audit().ok


def test_a_new_credential_revokes_the_one_it_replaces(store_url: str, issued: dict[str, Path], tmp_path: Path) -> None:
    """A revised decision that still earns it (ben) and --reissue (cai) each sign a new credential; the one it
    replaces is revoked in the same transaction ("replaced by <new id>"), so a verifier accepts only one."""
    old_ben = (issued["creds"] / "ben.jwt").read_text()
    old_cai = (issued["creds"] / "cai.jwt").read_text()
    old_ids = {x: json.loads((issued["creds"] / f"{x}.json").read_text())["id"] for x in ("ben", "cai")}
    _decide(store_url, "ben", EARNED, "earned")  # an adjudication confirms the award: a new decision
    code, out = _issue(store_url, issued, "--rubric", RUBRIC.id)
    new_ben = json.loads((issued["creds"] / "ben.json").read_text())["id"]
    assert code == 0 and "1 credential(s) signed" in out, out
    assert f"revoked {old_ids['ben']} (ben, entry" in out and f"replaced by {new_ben}" in out, out
    code, out = _issue(store_url, issued, "--reissue", "--submission", "cai")
    new_cai = json.loads((issued["creds"] / "cai.json").read_text())["id"]
    assert code == 0 and f"revoked {old_ids['cai']} (cai, entry" in out and f"replaced by {new_cai}" in out, out
    assert f"status list {ISSUER_ID}/status/1 (5 credential(s), 2 revoked)" in out, out

    (tmp_path / "old-ben.jwt").write_text(old_ben)
    (tmp_path / "old-cai.jwt").write_text(old_cai)
    verify = ("credentials", "verify", "--key", str(issued["pub"]), "--status-list",
              str(issued["creds"] / "status" / "1.jwt"))
    code, out = _run(*verify, str(tmp_path / "old-ben.jwt"), str(tmp_path / "old-cai.jwt"))
    assert code == 1 and out.count("REVOKED") == 2, out
    code, out = _run(*verify, str(issued["creds"] / "ben.jwt"), str(issued["creds"] / "cai.jwt"))
    assert code == 0 and out.count("not revoked") == 2, out
    code, out = _run("audit", "trace", "ben", "--db", store_url)
    assert code == 0 and f"revoked by cli: replaced by {new_ben}" in out and "WARNING" not in out, out
    with Store(store_url) as st:
        assert st.verify_audit().ok


def _force_draws(monkeypatch: pytest.MonkeyPatch, draws: list[int]) -> None:
    """The random index draws, in order (then the last one again)."""
    import scoring.store.credential_status as cs

    seq = iter(draws)
    monkeypatch.setattr(cs.secrets, "randbelow", lambda n: next(seq, draws[-1]))


def test_issuer_ids_differing_by_a_trailing_slash_are_one_issuer_with_one_list(
        store_url: str, issued: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Both spellings publish to ISSUER_ID/status/1, so they are one pool of indexes and one list: a credential
    issued under 'ISSUER_ID/' never takes an index 'ISSUER_ID' gave out, and its revocation shows in the list
    whichever spelling signs it."""
    taken = int(_status_of(issued["creds"] / "ana.jwt")["statusListIndex"])
    free = next(i for i in range(1000) if i not in {int(_status_of(issued["creds"] / f"{x}.jwt")["statusListIndex"])
                                                    for x in ("ana", "ben", "cai")})
    with Store(store_url) as st:
        (dee,) = st.add_submissions(RUBRIC.id, RUBRIC.version, [("dee", {"reflection": "..."}, {})])
        with st.write() as tx:
            decision_in(tx, dee.id, RUBRIC.id, RUBRIC.version, "earned", "final", EARNED)
    _force_draws(monkeypatch, [taken, free])  # the first draw hits ana's index
    code, out = _issue(store_url, issued, "--submission", "dee", issuer_id=ISSUER_ID + "/")
    assert code == 0 and "1 credential(s) signed" in out, out
    dee_status = _status_of(issued["creds"] / "dee.jwt")
    assert dee_status["statusListCredential"] == f"{ISSUER_ID}/status/1"
    assert int(dee_status["statusListIndex"]) == free  # not ana's
    code, out = _run("credentials", "revoke", "--submission", "dee", "--reason", "r", "--by", "kim", "--key",
                     str(issued["priv"]), "--db", store_url)
    assert code == 0, out
    for spelling in (ISSUER_ID, ISSUER_ID + "/"):
        code, out = _run("credentials", "status-list", "--key", str(issued["priv"]), "--issuer-id", spelling,
                         "--out", str(issued["pub_dir"]), "--db", store_url)
        assert code == 0 and f"{ISSUER_ID}/status/1 (4 credential(s), 1 revoked)" in out, out
        published = (issued["pub_dir"] / "status" / "1.jwt").read_text()
        assert _independent_bit(published, free) == 1 and _independent_bit(published, taken) == 0
    code, out = _run("credentials", "verify", "--key", str(issued["pub"]), "--status-list",
                     str(issued["pub_dir"] / "status" / "1.jwt"), str(issued["creds"] / "dee.jwt"))
    assert code == 1 and "REVOKED" in out, out
    with Store(store_url) as st:
        assert st.verify_audit().ok


def _seed_slots(st: Store, n: int, start: int = 0, list_number: int = 1) -> None:
    """n credentials of ISSUER_ID (with their issuance entries, unchained: for the row checks alone)."""
    with st.write() as tx:
        sid = tx.conn.execute(sa.select(t.submissions.c.id).limit(1)).scalar_one()
        top = tx.conn.execute(sa.select(sa.func.max(t.audit_log.c.seq))).scalar_one()
        entries, rows = [], []
        for k in range(start, start + n):
            cid, seq = f"urn:uuid:seed-{k}", top + 1 + k - start
            p = {"submission_id": sid, "credential_id": cid, "decision_id": 1, "kid": "k" * 43, "actor": "cli",
                 "at": "2026-01-01T00:00:00Z", "issuer_id": ISSUER_ID, "status_list": list_number,
                 "status_index": k, "status_list_credential": f"{ISSUER_ID}/status/{list_number}"}
            entries.append({"seq": seq, "event": "credential_issued", "payload": json.dumps(p), "prev_hash": "0" * 64,
                            "entry_hash": "0" * 64})
            rows.append({"credential_id": cid, "submission_id": sid, "decision_id": 1, "issuer_id": ISSUER_ID,
                         "list_number": list_number, "status_index": k, "issued_seq": seq, "revoked_seq": None})
        tx.conn.execute(t.audit_log.insert(), entries)
        tx.conn.execute(t.credential_status.insert(), rows)


def _rows_read(conn: sa.Connection) -> Callable[[], int]:
    """A counter of the work the database does on ``conn`` from now: rows and index entries read
    (PostgreSQL), or virtual machine steps / 10 (SQLite)."""
    if conn.dialect.name == "postgresql":
        q = sa.text("SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(oid)), 0) FROM pg_class WHERE oid = "
                    "'credential_status'::regclass OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = "
                    "'credential_status'::regclass)")
        base = int(conn.execute(q).scalar_one())
        return lambda: int(conn.execute(q).scalar_one()) - base
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    conn.connection.driver_connection.set_progress_handler(tick, 10)  # type: ignore[union-attr]
    return lambda: steps[0]


def test_allocating_a_slot_costs_the_same_however_many_credentials_the_list_holds(
        store_url: str, issued: dict[str, Path]) -> None:
    """Bulk issuing stays linear: a slot is found with a few indexed look-ups, not by reading the list's
    used indexes (up to 131,072) once per credential."""
    from scoring.store.credential_status import allocate_slot

    with Store(store_url) as st:
        _seed_slots(st, 20_000, start=1000, list_number=2)
        with st.write() as tx:
            work = _rows_read(tx.conn)
            number, index = allocate_slot(tx, ISSUER_ID, 131072)
            assert work() < 2_000, work()  # reading the used indexes alone is 20,000 rows
        assert number == 2 and index not in {s.status_index for s in st.status_slots() if s.list_number == 2}


def test_finding_stale_credentials_reads_the_decisions_in_one_query(store_url: str, issued: dict[str, Path]) -> None:
    from scoring.usecases import revocation

    _decide(store_url, "ben", NOT_YET, "not_yet")
    with Store(store_url) as st:
        statements: list[str] = []
        sa.event.listen(st.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        got = revocation.stale(st)
        assert [c.submission_id for c in got] == [_sub_id(store_url, "ben")]
        assert sum("decisions" in s for s in statements) == 1, statements


def test_checking_the_status_rows_holds_a_batch_in_memory_not_the_log(store_url: str, issued: dict[str, Path]) -> None:
    """audit verify's memory does not grow with the number of credentials: the status rows are checked in
    streamed batches, like the score rows."""
    import tracemalloc

    from scoring.store.credential_status import check_status_rows

    def peak() -> int:
        with Store(store_url) as st, st.engine.connect() as conn:
            tracemalloc.start()
            try:
                assert check_status_rows(conn) is None
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    with Store(store_url) as st:
        _seed_slots(st, 3_000, start=1000, list_number=2)
    small = peak()
    with Store(store_url) as st:
        _seed_slots(st, 12_000, start=4000, list_number=2)
    assert peak() < 2 * small, (small, peak())


def test_every_issue_run_refreshes_the_status_list_it_publishes(store_url: str, issued: dict[str, Path]) -> None:
    """ben's credential is revoked without --out (or through the API): the list in the folder `issue` writes
    is now stale. The next `issue` signs nothing new, and still rewrites the list, so a verifier reading the
    published folder sees ben REVOKED rather than valid."""
    code, out = _run("credentials", "revoke", "--submission", "ben", "--reason", "issued in error", "--by", "kim",
                     "--key", str(issued["priv"]), "--db", store_url)
    assert code == 0, out
    code, out = _issue(store_url, issued, "--rubric", RUBRIC.id)
    assert code == 0 and "0 credential(s) signed" in out, out
    assert f"status list {ISSUER_ID}/status/1 (3 credential(s), 1 revoked)" in out, out
    code, out = _run("credentials", "verify", str(issued["creds"] / "ben.jwt"), "--key", str(issued["pub"]),
                     "--status-list", str(issued["creds"] / "status" / "1.jwt"))
    assert code == 1 and "REVOKED" in out, out
