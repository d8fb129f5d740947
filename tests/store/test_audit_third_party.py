"""A third party checks an inclusion proof with its own code, written from docs/audit.md's four steps alone.

The verifier below uses hashlib, base64, json, an RFC 8785 library and an Ed25519 library, nothing from
this project. For a store created now it rebuilds the hashed text from the entry with RFC 8785 alone, so
it must accept a real proof of a machine score whose probabilities are numbers Python spells differently
from RFC 8785 (``0.0``, ``1e-05``). For a store whose log was started before (``canonical-form
python-json``) it checks the exact text the proof carries instead. And ``check-proof`` refuses a proof
whose hashed text was tampered with.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from scoring.store import Store
from scoring.store.checkpoints import CheckpointError, keygen, load_private_key, load_public_key
from scoring.usecases import audit_trust


def third_party_check(proof: dict[str, Any], pub: Ed25519PublicKey) -> bool:
    """docs/audit.md's "Checking a proof with your own code", step by step."""
    # 1. the checkpoint: body, blank line, signature lines; 4-byte key id + 64-byte Ed25519 signature
    body, _, sigs = proof["checkpoint"].partition("\n\n")
    body += "\n"
    origin, size, root_b64 = body.splitlines()[:3]
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()[:4]
    signed = False
    for line in sigs.splitlines():
        if line.startswith("\u2014 "):
            name, b64 = line[2:].rsplit(" ", 1)
            blob = base64.b64decode(b64)
            if name == origin and blob[:4] == key_id:
                pub.verify(blob[4:], body.encode())  # raises if the body was edited
                signed = True
    root = base64.b64decode(root_b64)
    ext = dict(line.split(" ", 1) for line in body.splitlines()[3:])
    # 2. the entry, in the canonical form the signed checkpoint names
    e = proof["entry"]
    body_of_entry = {"seq": e["seq"], "event": e["event"], "payload": e["payload"], "prev": e["prev_hash"]}
    if ext.get("canonical-form") == "rfc8785":  # rebuild the hashed text with any RFC 8785 library
        if hashlib.sha256(rfc8785.dumps(body_of_entry)).hexdigest() != e["entry_hash"]:
            return False
    else:  # python-json (or no line): hashed_text hashes to entry_hash and parses to the entry
        if hashlib.sha256(e["hashed_text"].encode()).hexdigest() != e["entry_hash"]:
            return False
        if json.loads(e["hashed_text"]) != body_of_entry:
            return False
    # 3. the leaf: SHA-256(0x00 || the 32 bytes of entry_hash)
    r = hashlib.sha256(b"\x00" + bytes.fromhex(e["entry_hash"])).digest()
    # 4. RFC 9162 section 2.1.3.2
    fn, sn = proof["leaf_index"], int(size) - 1
    for p in map(bytes.fromhex, proof["path"]):
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    return signed and sn == 0 and r == root and proof["leaf_index"] == e["seq"] - 1


@pytest.fixture(params=["rfc8785", "python-json"])
def proof_of_a_machine_score(request: pytest.FixtureRequest, store_url: str, make_rubric,  # type: ignore[no-untyped-def]
                             tmp_path: Path) -> Iterator[tuple[dict[str, Any], Ed25519PublicKey]]:
    """A proof from a store created now, and from one whose log was started before stores used RFC 8785
    (its form recorded as ``python-json``, as the migration records it for a log that already had entries)."""
    with Store(store_url) as store:
        if request.param == "python-json":
            with store.engine.connect().execution_options(store_write=True) as c, c.begin():
                c.execute(sa.text("UPDATE store_settings SET value = 'python-json' WHERE key = 'canonical_form'"))
        store.register_rubric(make_rubric())
        yield _proof(store, tmp_path)


def _proof(store: Store, tmp_path: Path) -> tuple[dict[str, Any], Ed25519PublicKey]:
    priv, pub = keygen(tmp_path / "keys")
    for i in range(5):
        sub = store.add_submission("obs", 1, f"s{i}", {"text": "évidence"})
        store.record_machine_score(sub.id, "questioning", 3, model_version="m-1", route="auto",
                                   probabilities={"0": 0.0, "1": 1e-05, "2": 0.25, "3": 0.74999})
        store.record_human_score(sub.id, "questioning", 2, assessor="zoë", kind="audit")
    audit_trust.checkpoint(store, tmp_path / "cp", load_private_key(priv), init=True)
    seq = store.machine_scores()[2].audit_seq
    return audit_trust.prove(store, seq, tmp_path / "cp", load_public_key(pub)), load_public_key(pub)


def test_a_third_party_checks_a_proof_from_the_readme_alone(proof_of_a_machine_score) -> None:  # type: ignore[no-untyped-def]
    proof, pub = proof_of_a_machine_score
    form = proof["entry"]["canonical_form"]
    assert f"\ncanonical-form {form}\n" in proof["checkpoint"]  # the signed checkpoint names it
    spelled = '"0":0,"1":0.00001' if form == "rfc8785" else '"0":0.0,"1":1e-05'
    assert spelled in proof["entry"]["hashed_text"]
    assert third_party_check(json.loads(json.dumps(proof)), pub)


def test_a_proof_cannot_claim_the_other_form(proof_of_a_machine_score) -> None:  # type: ignore[no-untyped-def]
    """The form comes from the signed checkpoint: the proof's own canonical_form field is only a label."""
    proof, pub = proof_of_a_machine_score
    proof["entry"]["canonical_form"] = "python-json" if proof["entry"]["canonical_form"] == "rfc8785" else "rfc8785"
    with pytest.raises(CheckpointError, match="the proof says canonical form"):
        audit_trust.check_proof(proof, pub)


def test_check_proof_refuses_a_hashed_text_that_says_something_else(proof_of_a_machine_score) -> None:  # type: ignore[no-untyped-def]
    proof, pub = proof_of_a_machine_score
    proof["entry"]["hashed_text"] = proof["entry"]["hashed_text"].replace('"score":3', '"score":1')
    with pytest.raises(CheckpointError, match="hashed_text does not hash to"):
        audit_trust.check_proof(proof, pub)
    # a python-json proof is checked through hashed_text; an rfc8785 one is rebuilt from the entry instead
    assert third_party_check(proof, pub) is (proof["entry"]["canonical_form"] == "rfc8785")


def test_an_edited_entry_fails_the_third_party_check(proof_of_a_machine_score) -> None:  # type: ignore[no-untyped-def]
    proof, pub = proof_of_a_machine_score
    proof["entry"]["payload"]["score"] = 1
    assert not third_party_check(proof, pub)
    with pytest.raises(CheckpointError, match="does not hash to"):
        audit_trust.check_proof(proof, pub)
