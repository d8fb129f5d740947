"""Revoking a credential through the API, and the signed status list the API serves to verifiers."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from api_support import audit_policy, expect_problem, reflection

ISSUER = "https://example.org/d7"


def _earned(api: Any, ext: str, i: int) -> int:
    from scoring.store.decisions import decision_in

    s = api.submit(ext, reflection(i)).json()
    with api.store.write() as tx:  # people have scored it: earned
        decision_in(tx, s["submission_id"], s["rubric_id"], s["rubric_version"], "earned", "final",
                    {"questioning": 2, "adjusting": 2, "self_assessment": 2})
    return int(s["submission_id"])


def _bit(token: str, index: int) -> bool:
    """A verifier's own reading of the list (spec 3.2): JWS payload -> encodedList -> multibase 'u' ->
    base64url -> GZIP -> bit ``index`` counted from the left-most bit of the first byte."""
    payload = token.split(".")[1]
    vc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    enc = vc["credentialSubject"]["encodedList"]
    assert enc[0] == "u"
    raw = gzip.decompress(base64.urlsafe_b64decode(enc[1:] + "=" * (-len(enc[1:]) % 4)))
    assert len(raw) >= 16 * 1024
    return bool(raw[index // 8] & (0x80 >> (index % 8)))


def test_an_issuer_revokes_through_the_api_and_the_served_status_list_shows_it(api_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from scoring import badges, status_list
    from scoring.cli import app

    priv, pub = badges.keygen(tmp_path / "keys")
    api = api_factory(policy=audit_policy(), credential_key=priv, credential_issuer_id=ISSUER)
    a = _earned(api, "r-1", 1)
    r = api.client.post(f"/submissions/{a}/credential", headers=api.h("issuer"))
    assert r.status_code == 201, r.text
    vc = r.json()["credential"]
    url, index = vc["credentialStatus"]["statusListCredential"], int(vc["credentialStatus"]["statusListIndex"])
    assert url == f"{ISSUER}/status/1"  # the path this server serves, under the issuer id

    before = api.client.get("/status/1")  # no key: verifiers fetch it
    assert before.status_code == 200 and before.headers["content-type"].startswith("application/vc+jwt")
    assert _bit(before.text, index) is False

    r = api.client.post(f"/submissions/{a}/credential/revoke", headers=api.h("issuer"),
                        json={"reason": "blind audit overturned questioning"})
    assert r.status_code == 200, r.text
    [got] = r.json()["revoked"]
    assert (got["credential_id"], got["already_revoked"], got["by"]) == (vc["id"], False, "issuer")
    assert (got["status_list_credential"], got["status_list_index"]) == (url, index)

    served = api.client.get("/status/1")
    assert _bit(served.text, index) is True  # an independent decoder sees the bit set
    listed = status_list.read_list(served.text, badges.load_key(pub, private=False))
    assert listed.url == url and listed.issuer_id == ISSUER
    assert status_list.check(vc, [listed]).state == "revoked"
    runner = CliRunner()

    entries = [e for e in api.store.audit_entries() if e.event == "credential_revoked"]
    assert len(entries) == 1 and entries[0].seq == got["entry"]
    assert entries[0].payload["by"] == "issuer" and entries[0].payload["reason"] == "blind audit overturned questioning"
    assert api.store.verify_audit().ok
    db = api.app.state.ctx.settings.resolved_database_url()
    ver = runner.invoke(app, ["audit", "verify", "--db", db])
    assert ver.exit_code == 0, ver.output

    again = api.client.post(f"/submissions/{a}/credential/revoke", headers=api.h("admin"), json={"reason": "twice"})
    [same] = again.json()["revoked"]  # a retry records nothing new and names the earlier revocation
    assert (same["already_revoked"], same["entry"], same["by"]) == (True, got["entry"], "issuer")
    assert len([e for e in api.store.audit_entries() if e.event == "credential_revoked"]) == 1


def test_revoke_refuses_other_roles_unknown_and_unissued_submissions_and_an_empty_reason_naming_the_issuers_id(api_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from scoring import badges

    priv, _ = badges.keygen(tmp_path / "keys")
    api = api_factory(policy=audit_policy(), credential_key=priv, credential_issuer_id=ISSUER)
    a, b = _earned(api, "r-2", 2), _earned(api, "r-3", 3)
    assert api.client.post(f"/submissions/{a}/credential", headers=api.h("issuer")).status_code == 201
    why = {"reason": "wrong"}
    expect_problem(api.client.post(f"/submissions/{a}/credential/revoke", headers=api.h("alice"), json=why),
                   403, "forbidden")
    expect_problem(api.client.post(f"/submissions/{a}/credential/revoke", headers=api.h("researcher"), json=why),
                   403, "forbidden")
    # another issuer's submission answers exactly as an unknown id does
    other = expect_problem(api.client.post(f"/submissions/{a}/credential/revoke", headers=api.h("issuer2"), json=why),
                           404, "not_found")
    unknown = expect_problem(api.client.post("/submissions/999/credential/revoke", headers=api.h("issuer2"), json=why),
                             404, "not_found")
    assert other["detail"].replace(str(a), "N") == unknown["detail"].replace("999", "N")
    none = expect_problem(api.client.post(f"/submissions/{b}/credential/revoke", headers=api.h("issuer"), json=why),
                          409, "no_credential")
    assert none["detail"] == (f"submission 'r-3' (store id {b}) has no issued credential (its decision is "
                              "'earned'): nothing to revoke"), "named as the issuer and the CLI name it"
    expect_problem(api.client.post(f"/submissions/{a}/credential/revoke", headers=api.h("issuer"),
                                   json={"reason": "  "}), 422, "invalid_request")
    nope = expect_problem(api.client.post(f"/submissions/{a}/credential/revoke", headers=api.h("issuer"),
                                          json={"reason": "x", "credential_id": "urn:uuid:nope"}), 404, "not_found")
    assert nope["detail"] == f"credential 'urn:uuid:nope' is not a credential of submission 'r-2' (store id {a})"
    assert not [e for e in api.store.audit_entries() if e.event == "credential_revoked"]


def test_the_status_list_route_is_public_404s_unknown_lists_and_503s_without_an_issuer_key(api_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from scoring import badges

    bare = api_factory()
    expect_problem(bare.client.get("/status/1"), 503, "credentials_unconfigured")
    priv, pub = badges.keygen(tmp_path / "keys")
    api = api_factory(credential_key=priv, credential_issuer_id=ISSUER + "/")
    first = api.client.get("/status/1")  # published before anything is issued
    assert first.status_code == 200 and _bit(first.text, 0) is False
    vc = badges.verify_jws(first.text, badges.load_key(pub, private=False))
    assert vc["id"] == f"{ISSUER}/status/1" and "BitstringStatusListCredential" in vc["type"]
    expect_problem(api.client.get("/status/2"), 404, "not_found")
