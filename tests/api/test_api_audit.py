"""Researchers read the signed checkpoints and inclusion proofs over the API, and check them offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api_support import expect_problem


def test_checkpoints_and_proofs_are_served_read_only_and_check_with_the_public_key(api_factory: Any,
                                                                                    tmp_path: Path) -> None:
    from scoring.store.checkpoints import keygen, load_private_key, load_public_key
    from scoring.usecases import audit_trust

    api = api_factory(audit_checkpoint_dir=tmp_path / "cp")
    assert api.client.get("/audit/checkpoints", headers=api.h("researcher")).json() == []
    api.submit("a-1")
    priv, pub = keygen(tmp_path / "keys")  # the signing key lives outside the server and its database
    written = audit_trust.checkpoint(api.store, tmp_path / "cp", load_private_key(priv), init=True)
    listed = api.client.get("/audit/checkpoints", headers=api.h("researcher")).json()
    assert listed == [{"name": written.latest, "size": written.size}]
    note = api.client.get(f"/audit/checkpoints/{written.latest}", headers=api.h("researcher"))
    assert note.headers["content-type"].startswith("text/plain")
    assert note.text == (tmp_path / "cp" / written.latest).read_text()
    seq = api.store.machine_scores()[0].audit_seq
    proof = api.client.get(f"/audit/proofs/{seq}", headers=api.h("researcher")).json()
    assert audit_trust.check_proof(proof, load_public_key(pub)).size == written.size
    expect_problem(api.client.get(f"/audit/proofs/{written.size + 1}", headers=api.h("researcher")), 404, "not_found")
    expect_problem(api.client.get("/audit/checkpoints/..%2Fapi0.db", headers=api.h("admin")), 404, "not_found")
    expect_problem(api.client.get("/audit/checkpoints", headers=api.h("issuer")), 403, "forbidden")
