"""An assessor who leaves mid-lease: revoking their key gives the queue items they held back to the queue in
the same transaction (logged on the `key_revoked` entry as `released_items`), so another assessor can claim
them at once instead of waiting for the leases to run out; `scoring keys revoke` says how many. SQLite and
PostgreSQL."""

from __future__ import annotations

from typer.testing import CliRunner

from scoring.cli import app
from scoring.store import Store, keys, queue


def test_revoking_an_assessor_returns_the_items_they_held_to_the_queue_at_once(store: Store, rubric) -> None:
    for ext in ("s1", "s2", "s3"):
        queue.enqueue(store, store.add_submission("obs", 1, ext, {"text": f"evidence {ext}"}).id,
                      {"questioning": "human"})
    keys.create_key(store, "root", "admin")
    keys.create_key(store, "ana", "assessor")
    held = [queue.claim(store, "ana", 900), queue.claim(store, "ana", 900)]
    assert all(it is not None for it in held)
    assert queue.claim(store, "ben", 900) is not None  # the third item
    assert queue.claim(store, "ben", 900) is None  # ana's two are still leased to her

    keys.revoke_key(store, "ana", by="root")

    assert queue.held_by(store, "ana") == []
    taken = [queue.claim(store, "ben", 900), queue.claim(store, "ben", 900)]
    assert sorted(it.id for it in taken if it is not None) == sorted(it.id for it in held if it is not None)
    entry = [e for e in store.audit_entries() if e.event == "key_revoked"][-1]
    payload = entry.payload
    assert payload["name"] == "ana" and payload["released_items"] == sorted(it.id for it in held if it is not None)
    assert store.verify_audit().ok


def test_keys_revoke_says_how_many_items_went_back(store_url: str, store: Store, rubric) -> None:
    queue.enqueue(store, store.add_submission("obs", 1, "s1", {"text": "evidence"}).id, {"questioning": "human"})
    keys.create_key(store, "ana", "assessor")
    assert queue.claim(store, "ana", 900) is not None
    r = CliRunner().invoke(app, ["keys", "revoke", "ana", "--db", store_url])
    assert r.exit_code == 0, r.output
    assert "revoked ana (assessor); the 1 queue item(s) they held are open again" in r.output
