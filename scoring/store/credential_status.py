"""Status list slots of issued credentials: which index of which list each credential holds, and whether it
was revoked.

Why in the store: an index must never be handed out twice, or revoking one credential would revoke another
educator's too. A slot is allocated inside the write transaction that logs the issuance (writes are
serialised), drawn at random among the list's free indexes (herd privacy: the index says nothing about the
order of issuance), and never freed. The table is derived from the log: ``credential_issued`` logs the slot
and ``credential_revoked`` the revocation, and :func:`check_status_rows` (run by ``scoring audit verify``)
reports a row that disagrees, so clearing a revocation in the database is caught.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from scoring.store import tables as t
from scoring.store.engine import StoreBase, Tx

ISSUED, REVOKED = "credential_issued", "credential_revoked"


@dataclass(frozen=True)
class StatusSlot:
    credential_id: str
    submission_id: int
    decision_id: int
    issuer_id: str
    list_number: int
    status_index: int
    issued_seq: int
    revoked_seq: int | None

    @property
    def revoked(self) -> bool:
        return self.revoked_seq is not None


def _slot(r: Any) -> StatusSlot:
    return StatusSlot(r.credential_id, r.submission_id, r.decision_id, r.issuer_id, r.list_number, r.status_index,
                      r.issued_seq, r.revoked_seq)


def allocate_slot(tx: Tx, issuer_id: str, list_bits: int) -> tuple[int, int]:
    """A free (list number, index) of ``issuer_id``'s lists: the first list with room, a random free index.

    Must run in the transaction that then records the slot (:func:`record_slot`), which holds the store's
    write lock, so no other writer can take the same index meanwhile."""
    c = t.credential_status.c
    counts: dict[int, int] = dict(tx.conn.execute(sa.select(c.list_number, sa.func.count()).where(c.issuer_id == issuer_id)
                                  .group_by(c.list_number)).all())
    number = next(n for n in range(1, len(counts) + 2) if counts.get(n, 0) < list_bits)
    used = set(tx.conn.execute(sa.select(c.status_index).where(c.issuer_id == issuer_id,
                                                               c.list_number == number)).scalars())
    while True:
        index = secrets.randbelow(list_bits)
        if index not in used:
            return number, index


def record_slot(tx: Tx, slot: StatusSlot) -> None:
    tx.conn.execute(t.credential_status.insert().values(
        credential_id=slot.credential_id, submission_id=slot.submission_id, decision_id=slot.decision_id,
        issuer_id=slot.issuer_id, list_number=slot.list_number, status_index=slot.status_index,
        issued_seq=slot.issued_seq, revoked_seq=None))


def mark_revoked(tx: Tx, credential_id: str, seq: int) -> None:
    c = t.credential_status.c
    tx.conn.execute(t.credential_status.update().where(c.credential_id == credential_id, c.revoked_seq.is_(None))
                    .values(revoked_seq=seq))


class CredentialStatusStore(StoreBase):
    def status_slots(self, *, issuer_id: str | None = None, submission_id: int | None = None) -> list[StatusSlot]:
        """Slots in issuance order, filtered."""
        c = t.credential_status.c
        q = sa.select(t.credential_status).order_by(c.id)
        if issuer_id is not None:
            q = q.where(c.issuer_id == issuer_id)
        if submission_id is not None:
            q = q.where(c.submission_id == submission_id)
        with self._read() as conn:
            return [_slot(r) for r in conn.execute(q)]

    def status_slot(self, credential_id: str) -> StatusSlot | None:
        c = t.credential_status.c
        with self._read() as conn:
            r = conn.execute(sa.select(t.credential_status).where(c.credential_id == credential_id)).first()
        return _slot(r) if r is not None else None


def check_status_rows(conn: sa.Connection) -> tuple[int | None, str] | None:
    """Every slot row must match the entries that logged it, and every logged slot and revocation its row.

    Why: verifiers read revocations from the published list, which is built from this table; a row deleted
    (its index could be handed out again) or a revocation cleared would otherwise pass unnoticed."""
    a = t.audit_log.c
    logged: dict[int, tuple[str, dict[str, Any]]] = {
        r.seq: (r.event, json.loads(r.payload))
        for r in conn.execute(sa.select(a.seq, a.event, a.payload).where(a.event.in_((ISSUED, REVOKED))))}
    rows = {r.credential_id: _slot(r) for r in conn.execute(sa.select(t.credential_status))}
    for s in rows.values():
        ev, p = logged.get(s.issued_seq, ("", {}))
        slot = (p.get("credential_id"), p.get("issuer_id"), p.get("status_list"), p.get("status_index"))
        if ev != ISSUED or slot != (s.credential_id, s.issuer_id, s.list_number, s.status_index):
            return s.issued_seq, (f"credential_status row of {s.credential_id} (list {s.list_number}, index "
                                  f"{s.status_index}) does not match audit entry {s.issued_seq}, which logged "
                                  f"{ev or 'nothing'} {slot}: the row was added or edited outside the service")
        if s.revoked_seq is not None:
            ev, p = logged.get(s.revoked_seq, ("", {}))
            if ev != REVOKED or p.get("credential_id") != s.credential_id:
                return s.revoked_seq, (f"credential_status row of {s.credential_id} shows a revocation that audit "
                                       f"entry {s.revoked_seq} does not log: edited outside the service")
    for seq, (ev, p) in sorted(logged.items()):
        if p.get("status_index") is None:
            continue  # a credential issued before status lists, or its revocation: no row to match
        row = rows.get(str(p.get("credential_id")))
        if row is None:
            return seq, (f"audit entry {seq} ({ev}) logged credential {p.get('credential_id')} at index "
                         f"{p.get('status_index')} but the credential_status table has no row for it: the row was "
                         "deleted (its index could be given to another credential)")
        if ev == REVOKED and row.revoked_seq != seq:
            return seq, (f"audit entry {seq} logged revoking {row.credential_id}, but its credential_status row is "
                         "not revoked: the revocation was cleared outside the service, and the published list "
                         "would show the credential as valid")
    return None
