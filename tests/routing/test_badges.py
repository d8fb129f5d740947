"""Open Badges 3.0 credentials: what they carry, that an independent implementation verifies them, and that
tampering, expiry or a wrong key fails; issued only for an earned decision, and recorded."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rubrics import load_rubric
from rubrics.schema import BUNDLED_DIR
from scoring import badges
from scoring.badges import CredentialError, Issuer
from scoring.cli import app

RUBRIC = load_rubric(BUNDLED_DIR / "checking-for-understanding.yaml")
EARNED = {"questioning": 2, "adjusting": 2, "self_assessment": 1}
ISSUER = Issuer("https://credentials.example.org/district-7", "District 7")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object, Path]:
    d = tmp_path_factory.mktemp("keys")
    priv, pub = badges.keygen(d)
    assert oct(priv.stat().st_mode & 0o777) == "0o600"
    return badges.load_key(priv, private=True), badges.load_key(pub, private=False), pub


def test_the_credential_carries_the_rubric_levels_achieved_and_no_evidence_or_name(keys) -> None:  # type: ignore[no-untyped-def]
    vc = badges.build_credential(RUBRIC, EARNED, "ann@school.org", ISSUER)
    ach = vc["credentialSubject"]["achievement"]
    assert vc["type"] == ["VerifiableCredential", "OpenBadgeCredential"] and ach["achievementType"] == "MicroCredential"
    assert [rd["name"] for rd in ach["resultDescription"]] == [c.title for c in RUBRIC.criteria]
    assert all(rd["resultType"] == "RubricCriterionLevel" and len(rd["rubricCriterionLevel"]) == 3
               for rd in ach["resultDescription"])
    achieved = {r["resultDescription"].rsplit("/", 1)[-1]: int(r["achievedLevel"].rsplit("/", 1)[-1])
                for r in vc["credentialSubject"]["result"]}
    assert achieved == EARNED and "Earned when" in ach["criteria"]["narrative"]
    text = json.dumps(vc)
    assert "ann@school.org" not in text  # the educator appears only as a salted hash
    ident = vc["credentialSubject"]["identifier"][0]
    assert ident["identityHash"] == badges.identity_hash("ann@school.org", ident["salt"])
    with pytest.raises(CredentialError, match="do not earn"):
        badges.build_credential(RUBRIC, {"questioning": 2, "adjusting": 2, "self_assessment": 0}, "x", ISSUER)


def test_an_independent_open_badges_3_implementation_verifies_our_credentials(keys) -> None:  # type: ignore[no-untyped-def]
    from openbadgeslib.ob3.verifier import OB3Verifier

    priv, _pub, pub_path = keys
    token = badges.sign(badges.build_credential(RUBRIC, EARNED, "ann@school.org", ISSUER), priv)
    cred = OB3Verifier(pub_path.read_bytes()).verify(token)
    assert cred.achievement.name == RUBRIC.title and cred.issuer.id == ISSUER.id and len(cred.results) == 3


def test_tampering_expiry_and_a_wrong_key_fail_verification(keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    priv, pub, _ = keys
    token = badges.sign(badges.build_credential(RUBRIC, EARNED, "ann@school.org", ISSUER, valid_years=1), priv)
    assert badges.verify(token, pub)["name"] == RUBRIC.title
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["credentialSubject"]["result"][2]["achievedLevel"] = claims["credentialSubject"]["result"][2]["achievedLevel"][:-1] + "2"
    forged = ".".join([head, base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode(), sig])
    with pytest.raises(CredentialError, match="the signature does not match: the credential was changed after it "
                                               "was signed, or it was signed with another key"):
        badges.verify(forged, pub)
    with pytest.raises(CredentialError, match="expired"):
        badges.verify(token, pub, now=datetime.now(UTC) + timedelta(days=800))
    other_priv, other_pub = badges.keygen(tmp_path / "other")
    with pytest.raises(CredentialError, match="signature"):
        badges.verify(token, badges.load_key(other_pub, private=False))
    with pytest.raises(CredentialError, match="public key"):
        badges.load_key(other_pub, private=True)


def test_issue_verify_and_feedback_from_the_command_line(tmp_path: Path) -> None:
    """A store with one earned and one 'not yet' submission: issue signs only the earned one; verify passes;
    feedback explains the other; issuing is in the audit log."""
    from scoring.store import Store
    from scoring.store.decisions import decision_in

    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 's.db'}"
    with Store(db) as st:
        st.register_rubric(RUBRIC)
        a, b = st.add_submissions(RUBRIC.id, RUBRIC.version, [("good-1", {"reflection": "..."}, {"educator_email": "a@x.org"}),
                                                            ("weak-1", {"reflection": "I lectured."}, {})])
        with st.write() as tx:
            decision_in(tx, a.id, RUBRIC.id, RUBRIC.version, "earned", "final", EARNED)
            decision_in(tx, b.id, RUBRIC.id, RUBRIC.version, "not_yet", "final",
                        {"questioning": 0, "adjusting": 1, "self_assessment": 2})
    res = runner.invoke(app, ["credentials", "keygen", str(tmp_path / "k")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["credentials", "issue", "--key", str(tmp_path / "k" / "issuer-ed25519.pem"),
                              "--issuer-id", ISSUER.id, "--issuer-name", ISSUER.name, "--out", str(tmp_path / "c"),
                              "--rubric", RUBRIC.id, "--submission", "weak-1", "--db", db])
    assert res.exit_code == 1 and "1 credential(s) signed" in res.output, res.output  # weak-1 was asked for
    assert "has not earned" in " ".join(res.output.split())
    res = runner.invoke(app, ["credentials", "verify", str(tmp_path / "c" / "good-1.jwt"),
                              "--key", str(tmp_path / "k" / "issuer-ed25519.pub.pem")])
    assert res.exit_code == 0 and "ok " in res.output, res.output
    res = runner.invoke(app, ["credentials", "feedback", "nobody-9", "--out", str(tmp_path / "f"), "--db", db])
    assert res.exit_code == 2 and "no submission 'nobody-9' in the store" in res.output
    res = runner.invoke(app, ["credentials", "feedback", "weak-1", "--out", str(tmp_path / "f"), "--db", db])
    assert res.exit_code == 0, res.output
    fb = json.loads((tmp_path / "f" / "feedback-weak-1.json").read_text())  # named by the issuer's id
    q = next(c for c in fb["criteria"] if c["criterion"] == "questioning")
    assert q["reached"]["label"] == "Not yet" and q["needed"]["label"] == "Developing"
    assert "Developing" in (tmp_path / "f" / "feedback-weak-1.html").read_text()
    with Store(db) as st:
        assert [e.payload["submission_id"] for e in st.audit_entries() if e.event == "credential_issued"] == [a.id]
        assert st.verify_audit().ok


def _store_with_earned(db: str, external_ids: list[str]) -> list[int]:
    from scoring.store import Store
    from scoring.store.decisions import decision_in

    with Store(db) as st:
        st.register_rubric(RUBRIC)
        subs = st.add_submissions(RUBRIC.id, RUBRIC.version, [(x, {"reflection": "..."}, {}) for x in external_ids])
        with st.write() as tx:
            for s in subs:
                decision_in(tx, s.id, RUBRIC.id, RUBRIC.version, "earned", "final", EARNED)
        return [s.id for s in subs]


def _issue(db: str, tmp_path: Path, *extra: str) -> object:
    keydir = tmp_path / "k"
    if not keydir.exists():
        badges.keygen(keydir)
    return CliRunner().invoke(app, ["credentials", "issue", "--key", str(keydir / "issuer-ed25519.pem"),
                                    "--issuer-id", ISSUER.id, "--issuer-name", ISSUER.name,
                                    "--out", str(tmp_path / "c"), "--rubric", RUBRIC.id, "--db", db, *extra])


def test_issuing_the_backlog_again_signs_only_what_is_new(tmp_path: Path) -> None:
    """An issuer re-runs `issue --rubric` as assessors finish more of the backlog: credentials already in the
    folder for the same decision are kept as they are (the educator may hold them), not signed a second time
    and overwritten; only new earned submissions are signed. `--reissue` signs again on purpose."""
    from scoring.store import Store
    from scoring.store.decisions import decision_in

    db = f"sqlite:///{tmp_path / 's.db'}"
    _store_with_earned(db, ["good-1", "good-2"])
    res = _issue(db, tmp_path)
    assert res.exit_code == 0 and "2 credential(s) signed" in res.output, res.output  # type: ignore[attr-defined]
    first = (tmp_path / "c" / "good-1.jwt").read_text()
    with Store(db) as st:  # one more submission earns it
        (new,) = st.add_submissions(RUBRIC.id, RUBRIC.version, [("good-3", {"reflection": "..."}, {})])
        with st.write() as tx:
            decision_in(tx, new.id, RUBRIC.id, RUBRIC.version, "earned", "final", EARNED)
    res = _issue(db, tmp_path)
    out = " ".join(res.output.split())  # type: ignore[attr-defined]
    assert res.exit_code == 0 and "1 credential(s) signed" in out and "2 already in" in out, out  # type: ignore[attr-defined]
    assert (tmp_path / "c" / "good-1.jwt").read_text() == first  # the credential the educator holds
    with Store(db) as st:
        issued = [e.payload["submission_id"] for e in st.audit_entries(event="credential_issued")]
    assert len(issued) == len(set(issued)) == 3  # each submission signed once
    res = _issue(db, tmp_path, "--reissue")
    assert res.exit_code == 0 and "3 credential(s) signed" in res.output, res.output  # type: ignore[attr-defined]
    assert (tmp_path / "c" / "good-1.jwt").read_text() != first


def test_a_credential_recorded_but_never_written_is_signed_again(tmp_path: Path) -> None:
    """A run killed after the audit log recorded a credential and before its file was written: the file is
    missing, so the next run signs it again instead of skipping it (nothing is lost)."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    _store_with_earned(db, ["good-1"])
    assert _issue(db, tmp_path).exit_code == 0  # type: ignore[attr-defined]
    (tmp_path / "c" / "good-1.jwt").unlink()
    (tmp_path / "c" / "good-1.json").unlink()
    res = _issue(db, tmp_path)
    assert res.exit_code == 0 and "1 credential(s) signed" in res.output, res.output  # type: ignore[attr-defined]
    assert (tmp_path / "c" / "good-1.jwt").exists()


def test_ids_that_differ_only_in_characters_a_file_name_cannot_hold_get_two_files(tmp_path: Path) -> None:
    """'cohort 1/ana' and 'cohort 1_ana' would both be cohort_1_ana.jwt: one credential would overwrite the
    other. An id that is not a safe file name keeps a short hash of itself in the name."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    _store_with_earned(db, ["cohort 1/ana", "cohort_1_ana"])
    res = _issue(db, tmp_path)
    assert res.exit_code == 0 and "2 credential(s) signed" in res.output, res.output  # type: ignore[attr-defined]
    assert len(list((tmp_path / "c").glob("*.jwt"))) == 2
    assert (tmp_path / "c" / "cohort_1_ana.jwt").exists()  # a safe id keeps its own name


def test_a_status_index_that_is_not_plain_digits_is_reported_not_a_traceback() -> None:
    """'²' and '١' pass str.isdigit() (and '١' even int()); a statusListIndex is ASCII digits 0-9, so a
    verifier is told the credential's status is unknown instead of crashing or reading another index."""
    from scoring import status_list

    for raw in ("²", "١٢", "-1", "", "1e3"):
        vc = {"issuer": {"id": ISSUER.id}, "credentialStatus": {
            "type": "BitstringStatusListEntry", "statusPurpose": "revocation", "statusListIndex": raw,
            "statusListCredential": f"{ISSUER.id}/status/1"}}
        st = status_list.check(vc, [])
        assert st.state == "unknown" and f"statusListIndex {raw!r} is not a whole number" in st.text, st


@pytest.mark.parametrize("first_meta,who", [
    ({"educator_email": "ana@district7.org"}, "ana@district7.org"),  # named on the first attempt only
    ({}, "checking-for-understanding:t-100"),  # named by no field: the first attempt's id, not the resubmission's
])
def test_an_award_after_not_yet_is_made_out_to_the_educator_of_the_first_attempt(
        keys, tmp_path: Path, first_meta: dict[str, str], who: str) -> None:  # type: ignore[no-untyped-def]
    from scoring.store import Store
    from scoring.store.decisions import decision_in
    from scoring.usecases import credentials

    priv = keys[0]
    with Store(f"sqlite:///{tmp_path / 'r.db'}") as st:
        st.register_rubric(RUBRIC)
        first = st.add_submission(RUBRIC.id, RUBRIC.version, "t-100", {"reflection": "first try"}, first_meta)
        again = st.add_submission(RUBRIC.id, RUBRIC.version, "t-100-r2", {"reflection": "better"}, {"revises": "t-100"})
        with st.write() as tx:
            decision_in(tx, first.id, RUBRIC.id, RUBRIC.version, "not_yet", "final", {**EARNED, "adjusting": 0})
            decision_in(tx, again.id, RUBRIC.id, RUBRIC.version, "earned", "final", EARNED)
        _, vc = credentials.issue(st, again.id, priv, ISSUER)
    ident = vc["credentialSubject"]["identifier"][0]
    assert ident["identityHash"] == badges.identity_hash(who, ident["salt"])


def test_one_educator_holds_one_credential_across_a_resubmission_chain(keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A blind audit turned the first attempt's "not yet" into an award after the resubmission earned too:
    the second is not signed while the first's credential stands, and is once that one is revoked."""
    from scoring.store import Store
    from scoring.store.decisions import decision_in
    from scoring.usecases import credentials, revocation

    priv = keys[0]
    with Store(f"sqlite:///{tmp_path / 'c.db'}") as st:
        st.register_rubric(RUBRIC)
        first = st.add_submission(RUBRIC.id, RUBRIC.version, "t-200", {"reflection": "first try"})
        with st.write() as tx:
            decision_in(tx, first.id, RUBRIC.id, RUBRIC.version, "not_yet", "final", {**EARNED, "adjusting": 0})
        again = st.add_submission(RUBRIC.id, RUBRIC.version, "t-200-r2", {"reflection": "better"}, {"revises": "t-200"})
        with st.write() as tx:
            decision_in(tx, again.id, RUBRIC.id, RUBRIC.version, "earned", "final", EARNED)
            decision_in(tx, first.id, RUBRIC.id, RUBRIC.version, "earned", "final", EARNED)  # the audit overturned it
        credentials.issue(st, first.id, priv, ISSUER)
        with pytest.raises(credentials.HeldByAnotherAttempt, match="from attempt 't-200' of the same resubmission"):
            credentials.issue(st, again.id, priv, ISSUER)
        revocation.revoke(st, revocation.issued(st, first.id), reason="the later attempt stands", by="registrar",
                          kid=priv.thumbprint())
        credentials.issue(st, again.id, priv, ISSUER)
