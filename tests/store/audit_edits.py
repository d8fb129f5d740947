"""What an attacker with write access to the database does, for the audit tests: raw SQL, and an entry
rewritten with every hash recomputed from it so the chain still verifies."""

from __future__ import annotations

import sqlalchemy as sa

from scoring.store import Store


def sql(store: Store, statement: str, **params: object) -> None:
    """Run one statement outside the service (no audit entry, no checks)."""
    with store.engine.connect().execution_options(store_write=True) as c, c.begin():
        c.execute(sa.text(statement), params)


def rewrite_entry(store: Store, seq: int, payload: str, *, spliced: bool = False) -> None:
    """Give entry ``seq`` this payload text and recompute every hash from it, so the chain verifies.

    ``spliced``: each hash is computed over the entry's text spliced into the hashed template, as the
    service's own writer does, without parsing the payload: how a payload that is not JSON at all passes
    the chain."""
    form = store.canonical_form()
    with store.engine.connect().execution_options(store_write=True) as c, c.begin():
        rows = c.execute(sa.text("SELECT seq, event, payload, prev_hash FROM audit_log WHERE seq >= :s ORDER BY seq"),
                         {"s": seq}).all()
        prev = rows[0].prev_hash
        for r in rows:
            body = payload if r.seq == seq else r.payload
            h = (form.spliced_hash(r.seq, form.dumps(r.event), body, prev) if spliced
                 else form.entry_hash(r.seq, r.event, body, prev))
            c.execute(sa.text("UPDATE audit_log SET payload = :b, prev_hash = :p, entry_hash = :h WHERE seq = :s"),
                      {"b": body, "p": prev, "h": h, "s": r.seq})
            prev = h
