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
from pathlib import Path

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
