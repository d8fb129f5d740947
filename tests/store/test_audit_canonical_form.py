"""Which canonical JSON an audit entry is hashed with, and why nobody gets to choose it after the fact.

A store created now hashes every entry as SHA-256 over RFC 8785 (JCS) text, so an auditor recomputes
it with any RFC 8785 library. A store whose log was started before keeps the form its entries and
checkpoints were made with (``python-json``: ``json.dumps`` with sorted keys and no spaces). The form is
fixed per store and named in every signed checkpoint: an entry rewritten under the other form fails,
and so does switching the store's recorded form.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
import rfc8785
import sqlalchemy as sa
from audit_edits import sql

from scoring.errors import AuditChainBroken
from scoring.store import Store
from scoring.store.checkpoints import keygen, load_private_key, load_public_key
from scoring.store.engine import make_engine, upgrade_schema
from scoring.usecases import audit_trust

GENESIS = "0" * 64  # entry 1's prev in a log started before stores recorded a form
RFC8785_GENESIS = hashlib.sha256(b"rubric-scoring/audit canonical-form rfc8785").hexdigest()
# what a store logs: ints, floats Python and RFC 8785 spell differently, text outside the BMP (whose key
# order differs between the two forms), None, booleans, nesting
ASSORTED = {"int": 7, "neg": -3, "zero": 0.0, "tiny": 1e-05, "third": 1 / 3, "big": 1e15, "half": 0.5,
            "none": None, "yes": True, "text": "évidence \u2028 \U0001f600 \"q\" \\ \n",
            "keys": {"\U0001f600": 1, "\ufb01": 2, "z": 3}, "list": [1, 2.5, [None, {"a": 0.0}]]}


def old_form_text(seq: int, event: str, payload: Any, prev: str) -> str:
    """How entries were hashed before stores recorded a form (the ``python-json`` form), written out here
    independently of the store's code."""
    return json.dumps({"seq": seq, "event": event, "payload": payload, "prev": prev}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _rows(store: Store) -> list[Any]:
    with store.engine.connect() as c:
        return c.execute(sa.text("SELECT seq, event, payload, prev_hash, entry_hash FROM audit_log ORDER BY seq")).all()


def _log(store: Store, payload: dict[str, Any], event: str = "note") -> int:
    with store.write() as tx:
        return tx.append(event, payload)


def _fill(store: Store) -> None:
    """Scores whose probabilities Python and RFC 8785 spell differently, as the service logs them."""
    for i in range(3):
        sub = store.add_submission("obs", 1, f"s{i}", {"text": "évidence"})
        store.record_machine_score(sub.id, "questioning", 3, model_version="m-1", route="auto",
                                   probabilities={"0": 0.0, "1": 1e-05, "2": 0.25, "3": 0.74999})


def _upgrade(url: str, revision: str) -> None:
    """Bring a database to one schema revision, as an older release of the service left it."""
    engine = make_engine(url)
    upgrade_schema(engine, revision)
    engine.dispose()


@pytest.fixture
def old_store(store_url: str) -> Any:
    """A store whose log was started by a release that hashed with Python's json.dumps: two entries written
    at the schema before stores recorded a form, then opened (and migrated) by this release."""
    _upgrade(store_url, "0005_audit_tiles")
    engine = make_engine(store_url)
    prev = GENESIS
    with engine.connect().execution_options(store_write=True) as c, c.begin():
        for seq, payload in ((1, {"p": {"0": 0.0, "1": 1e-05}, "who": "zoë"}), (2, {"k": {"\U0001f600": 1, "\ufb01": 2}})):
            text = old_form_text(seq, "note", payload, prev)
            h = hashlib.sha256(text.encode()).hexdigest()
            body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            c.execute(sa.text("INSERT INTO audit_log (seq, event, payload, prev_hash, entry_hash) "
                              "VALUES (:s, 'note', :p, :prev, :h)"), {"s": seq, "p": body, "prev": prev, "h": h})
            prev = h
    engine.dispose()
    s = Store(store_url)
    try:
        yield s
    finally:
        s.close()


# ------------------------------------------------------------------------------------------ new stores

def test_a_new_store_hashes_each_entry_as_sha256_of_its_rfc8785_text(store: Store, rubric) -> None:  # type: ignore[no-untyped-def]
    _fill(store)
    _log(store, ASSORTED)
    assert store.canonical_form().name == "rfc8785"
    rows = _rows(store)
    prev = hashlib.sha256(b"rubric-scoring/audit canonical-form rfc8785").hexdigest()  # the chain names its form
    for seq, event, payload, prev_hash, stored in rows:
        body = {"seq": seq, "event": event, "payload": json.loads(payload), "prev": prev_hash}
        assert prev_hash == prev
        assert stored == hashlib.sha256(rfc8785.dumps(body)).hexdigest()
        assert payload.encode() == rfc8785.dumps(json.loads(payload))  # the payload is kept as its JCS text
        prev = stored
    res = store.verify_audit()
    assert res.ok and res.canonical_form == "rfc8785" and res.entries_checked == len(rows)


def test_the_same_values_hash_the_same_on_every_backend(store: Store) -> None:
    """The hash depends on the logged values only: these digests are what RFC 8785 gives, on SQLite and
    PostgreSQL alike (the backend stores the text; it never re-spells a number)."""
    seq = _log(store, ASSORTED)
    expected_text = rfc8785.dumps({"seq": 1, "event": "note", "payload": ASSORTED, "prev": RFC8785_GENESIS})
    assert b'"tiny":0.00001' in expected_text and b'"zero":0' in expected_text and b'"big":1000000000000000' in expected_text
    (row,) = _rows(store)
    assert seq == 1 and row.entry_hash == hashlib.sha256(expected_text).hexdigest()
    assert store.audit_entry(1).payload == ASSORTED
    assert store.verify_audit().ok


def test_a_logged_policy_fingerprint_is_sha256_of_its_rfc8785_text(store: Store) -> None:
    from scoring.policy import RoutingPolicy
    from scoring.store.policy_log import record_policy

    policy = RoutingPolicy(policy_version="p-1", model_version="m-1", double_rate=0.5, audit_rate=1e-05)
    seq = record_policy(store, policy, by="ops", rubric_id="obs")
    assert seq is not None
    logged = store.audit_entry(seq).payload["fingerprint"]
    assert logged == hashlib.sha256(rfc8785.dumps(policy.model_dump(mode="json"))).hexdigest()
    assert record_policy(store, policy, by="ops", rubric_id="obs") is None  # the same policy: nothing new


def test_an_old_store_recognises_the_policy_it_already_logged(old_store: Store) -> None:
    from scoring.policy import RoutingPolicy
    from scoring.store.policy_log import record_policy

    policy = RoutingPolicy(policy_version="p-1", model_version="m-1", double_rate=0.5, audit_rate=1e-05)
    seq = record_policy(old_store, policy, by="ops", rubric_id="obs")
    assert seq is not None
    body = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert old_store.audit_entry(seq).payload["fingerprint"] == hashlib.sha256(body.encode()).hexdigest()
    assert record_policy(old_store, policy, by="ops", rubric_id="obs") is None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_number_is_refused_and_nothing_is_logged(store: Store, bad: float) -> None:
    with pytest.raises(ValueError):
        _log(store, {"p": {"0": bad}})
    assert _rows(store) == [] and store.verify_audit().ok


def test_a_whole_float_beyond_2_53_round_trips(store: Store) -> None:
    """RFC 8785 writes 1e20 as twenty digits; reading it back as the float it was keeps proofs checkable."""
    _log(store, {"x": 1e20})
    (row,) = _rows(store)
    assert row.payload == '{"x":100000000000000000000}'
    assert store.verify_audit().ok
    assert store.inclusion_proof(1).entry.payload == {"x": 1e20}


def test_an_entry_rewritten_in_the_old_form_is_caught(store: Store, rubric) -> None:  # type: ignore[no-untyped-def]
    """The attacker re-spells a new store's entry the old way and hashes it the old way: the store's form
    is RFC 8785, so the entry no longer matches its hash."""
    _fill(store)
    seq, event, payload, prev_hash, _ = [r for r in _rows(store) if r.event == "machine_score"][0]
    content = json.loads(payload)
    old_body = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    old_hash = hashlib.sha256(old_form_text(seq, event, content, prev_hash).encode()).hexdigest()
    assert old_body != payload and '"1":1e-05' in old_body
    sql(store, "UPDATE audit_log SET payload = :p, entry_hash = :h WHERE seq = :s", p=old_body, h=old_hash, s=seq)
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == seq + 1 and "does not follow" in res.problem
    with pytest.raises(AuditChainBroken, match="does not match its hash"):  # nor will it be proven
        store.inclusion_proof(seq)


# ------------------------------------------------------------------------------------------ old stores

def test_a_store_started_before_keeps_its_form_and_still_verifies(old_store: Store, make_rubric) -> None:  # type: ignore[no-untyped-def]
    assert old_store.canonical_form().name == "python-json"
    old_store.register_rubric(make_rubric())
    _fill(old_store)  # this release keeps appending in the store's own form
    rows = _rows(old_store)
    for seq, event, payload, prev_hash, stored in rows:
        assert stored == hashlib.sha256(old_form_text(seq, event, json.loads(payload), prev_hash).encode()).hexdigest()
    assert any('"1":1e-05' in r.payload for r in rows[2:])
    res = old_store.verify_audit()
    assert res.ok and res.canonical_form == "python-json" and res.entries_checked == len(rows)


def test_an_old_store_entry_rewritten_in_rfc8785_is_caught(old_store: Store) -> None:
    seq, event, payload, prev_hash, _ = _rows(old_store)[0]
    content = json.loads(payload)
    new_body = rfc8785.dumps(content).decode()
    new_hash = hashlib.sha256(rfc8785.dumps({"seq": seq, "event": event, "payload": content,
                                             "prev": prev_hash})).hexdigest()
    sql(old_store, "UPDATE audit_log SET payload = :p, entry_hash = :h WHERE seq = :s", p=new_body, h=new_hash, s=seq)
    res = old_store.verify_audit()
    assert not res.ok and res.first_bad_seq == 2 and "does not follow" in res.problem
    with pytest.raises(AuditChainBroken, match="does not match its hash"):
        old_store.inclusion_proof(1)


def test_an_empty_store_upgraded_from_before_starts_on_rfc8785(store_url: str) -> None:
    _upgrade(store_url, "0005_audit_tiles")
    with Store(store_url) as s:
        assert s.canonical_form().name == "rfc8785"


# ------------------------------------------------------------------------- switching the recorded form

def test_switching_the_recorded_form_breaks_the_chain_at_entry_1(store: Store, rubric) -> None:  # type: ignore[no-untyped-def]
    _fill(store)
    sql(store, "UPDATE store_settings SET value = 'python-json' WHERE key = 'canonical_form'")
    res = store.verify_audit()
    assert not res.ok and res.canonical_form == "python-json" and res.first_bad_seq == 1
    assert "but a log hashed with canonical form python-json starts from 000000000000" in res.problem
    assert res.problem.endswith(": entry 1 was edited, or the store's canonical_form setting was changed, outside "
                                "the service")


def test_an_edited_link_of_entry_1_names_the_edit_as_well_as_the_setting(store: Store, rubric) -> None:  # type: ignore[no-untyped-def]
    """The setting is untouched here: the message cannot tell the two apart, so it names both."""
    _fill(store)
    sql(store, "UPDATE audit_log SET prev_hash = '" + "1" * 64 + "' WHERE seq = 1")
    res = store.verify_audit()
    assert not res.ok and res.first_bad_seq == 1 and res.canonical_form == "rfc8785"
    assert "links to previous hash 111111111111..., but a log hashed with canonical form rfc8785" in res.problem
    assert "entry 1 was edited, or the store's canonical_form setting was changed" in res.problem


def test_rehashing_the_whole_log_in_the_other_form_is_caught_by_a_checkpoint(store: Store, rubric,  # type: ignore[no-untyped-def]
                                                                             tmp_path: Path) -> None:
    """What it takes to switch a store's form: rewrite every entry and hash; the signed checkpoint names rfc8785."""
    _fill(store)
    priv, pub = keygen(tmp_path / "keys")
    audit_trust.checkpoint(store, tmp_path / "cp", load_private_key(priv), init=True)
    prev = GENESIS
    for seq, event, payload, _, _ in _rows(store):
        content = json.loads(payload)
        h = hashlib.sha256(old_form_text(seq, event, content, prev).encode()).hexdigest()
        sql(store, "UPDATE audit_log SET payload = :p, prev_hash = :prev, entry_hash = :h WHERE seq = :s",
             p=json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False), prev=prev, h=h, s=seq)
        prev = h
    sql(store, "UPDATE store_settings SET value = 'python-json' WHERE key = 'canonical_form'")
    assert store.verify_audit().ok  # the chain alone cannot tell a full rewrite ...
    res = audit_trust.verify(store, tmp_path / "cp", load_public_key(pub))
    assert not res.ok and res.kind == "checkpoint"  # ... the checkpoint signed an rfc8785 log
    assert "hashed with canonical form rfc8785, but the store now says its log uses python-json" in res.problem


def test_a_checkpoint_names_a_new_stores_form(store: Store, rubric, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    priv, _ = keygen(tmp_path / "keys")
    cp = audit_trust.checkpoint(store, tmp_path / "cp", load_private_key(priv), init=True)
    assert cp.path is not None and "\ncanonical-form rfc8785\n" in cp.path.read_text()


def test_a_checkpoint_names_an_old_stores_form(old_store: Store, tmp_path: Path) -> None:
    priv, _ = keygen(tmp_path / "keys")
    cp = audit_trust.checkpoint(old_store, tmp_path / "cp", load_private_key(priv), init=True)
    assert cp.path is not None and "\ncanonical-form python-json\n" in cp.path.read_text()


def test_a_store_without_a_recorded_form_does_not_verify(store: Store, rubric) -> None:  # type: ignore[no-untyped-def]
    sql(store, "DELETE FROM store_settings")
    res = store.verify_audit()
    assert not res.ok and "records no canonical form" in res.problem
