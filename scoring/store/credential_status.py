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
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from scoring.status_list import issuer_key
from scoring.store import tables as t
from scoring.store.audit import Finding, payload_fault, rewritten
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


PROBES = 64  # random draws checked before the list is counted (only a nearly full list needs more)


def allocate_slot(tx: Tx, issuer_id: str, list_bits: int) -> tuple[int, int]:
    """A free (list number, index) of ``issuer_id``'s lists: the issuer's newest list while it has room, a
    random free index in it. Ids that differ only by trailing slashes are one issuer (one published list).

    Cost: a few indexed look-ups (the newest list number, then one per random draw), whatever the number
    issued; only a list so full that :data:`PROBES` draws all hit taken indexes is counted and read.
    Must run in the transaction that then records the slot (:func:`record_slot`), which holds the store's
    write lock, so no other writer can take the same index meanwhile."""
    c = t.credential_status.c
    mine = c.issuer_id == issuer_key(issuer_id)  # stored normalised (credentials.issue_replacing)
    number = tx.conn.execute(sa.select(sa.func.max(c.list_number)).where(mine)).scalar() or 1

    def taken(n: int, i: int) -> bool:
        return tx.conn.execute(sa.select(c.id).where(mine, c.list_number == n, c.status_index == i)
                               .limit(1)).first() is not None

    for _ in range(PROBES):
        index = secrets.randbelow(list_bits)
        if not taken(number, index):
            return number, index
    used = set(tx.conn.execute(sa.select(c.status_index).where(mine, c.list_number == number)).scalars())
    free = list_bits - len(used)
    if free <= 0:  # full: the next list, empty
        return number + 1, secrets.randbelow(list_bits)
    k = secrets.randbelow(free)  # the k-th free index, uniformly
    for index in range(list_bits):
        if index not in used:
            if k == 0:
                return number, index
            k -= 1
    raise AssertionError("unreachable: a free index was counted")


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
    def status_slots(self, *, issuer_id: str | None = None, list_number: int | None = None) -> list[StatusSlot]:
        """Slots in issuance order, filtered (one list's: what a verifier's fetch of that list reads)."""
        c = t.credential_status.c
        q = sa.select(t.credential_status).order_by(c.id)
        if issuer_id is not None:  # the issuer however its id was typed (stored without trailing slashes)
            q = q.where(c.issuer_id == issuer_key(issuer_id))
        if list_number is not None:
            q = q.where(c.list_number == list_number)
        with self._read() as conn:
            return [_slot(r) for r in conn.execute(q)]

def slots_of(conn: sa.Connection, submission_id: int) -> list[StatusSlot]:
    """The slots of one submission's credentials, in issuance order, read on ``conn`` (indexed)."""
    c = t.credential_status.c
    return [_slot(r) for r in conn.execute(sa.select(t.credential_status).where(c.submission_id == submission_id)
                                           .order_by(c.id))]


def revoked_by(conn: sa.Connection, slotted: Collection[str], legacy: Collection[str] = ()
               ) -> dict[str, tuple[int, dict[str, Any]]]:
    """credential id -> (seq, payload) of the first entry that revoked it, read on ``conn``.

    Why on a connection: called inside the write transaction that then decides to revoke or to sign, so
    what it decides on is what is committed (a revocation by an overlapping run is seen). ``slotted`` ids
    are looked up by their rows; ``legacy`` ones (issued before status lists, no row) in the logged
    revocations."""
    c, a = t.credential_status.c, t.audit_log.c
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    ids = sorted(set(slotted))
    for k in range(0, len(ids), 500):
        q = (sa.select(c.credential_id, a.seq, a.payload).join(t.audit_log, a.seq == c.revoked_seq)
             .where(c.credential_id.in_(ids[k:k + 500])))
        out.update({r.credential_id: (r.seq, json.loads(r.payload)) for r in conn.execute(q)})
    if legacy:
        want = set(legacy)
        for r in conn.execute(sa.select(a.seq, a.payload).where(a.event == REVOKED).order_by(a.seq)):
            p = json.loads(r.payload)
            cid = str(p.get("credential_id"))
            if cid in want and cid not in out:
                out[cid] = (r.seq, p)
    return out


def check_status_rows(conn: sa.Connection, batch: int = 2_000) -> tuple[int | None, str] | Finding | None:
    """Every slot row must match the entries that logged it, and every logged slot and revocation its row.

    Why: verifiers read revocations from the published list, which is built from this table; a row deleted
    (its index could be handed out again) or a revocation cleared would otherwise pass unnoticed.
    Streamed in batches of ``batch`` rows (memory independent of the number of credentials): the rows
    joined with their entries, then only the entries no row points at."""
    a, c = t.audit_log.c, t.credential_status.c
    issued, revoked = t.audit_log.alias("issued"), t.audit_log.alias("revoked")
    q = (sa.select(t.credential_status, issued.c.event.label("i_event"), issued.c.payload.label("i_payload"),
                   revoked.c.event.label("r_event"), revoked.c.payload.label("r_payload"))
         .select_from(t.credential_status.outerjoin(issued, issued.c.seq == c.issued_seq)
                      .outerjoin(revoked, revoked.c.seq == c.revoked_seq))
         .order_by(c.issued_seq, c.id))
    for part in _stream(conn, q, batch):
        for r in part:
            s = _slot(r)
            ev, p = r.i_event or "", _logged(r.i_payload)
            if p is None:
                return _rewritten(s, s.issued_seq, ev, r.i_payload)
            slot = (p.get("credential_id"), p.get("issuer_id"), p.get("status_list"), p.get("status_index"))
            if ev != ISSUED or slot != (s.credential_id, s.issuer_id, s.list_number, s.status_index):
                return s.issued_seq, (f"credential_status row of {s.credential_id} (list {s.list_number}, index "
                                      f"{s.status_index}) does not match audit entry {s.issued_seq}, which logged "
                                      f"{ev or 'nothing'} {slot}: the row was added or edited outside the service")
            if s.revoked_seq is not None:
                p = _logged(r.r_payload)
                if p is None:
                    return _rewritten(s, s.revoked_seq, r.r_event, r.r_payload)
                if r.r_event != REVOKED or p.get("credential_id") != s.credential_id:
                    return s.revoked_seq, (f"credential_status row of {s.credential_id} shows a revocation that "
                                           f"audit entry {s.revoked_seq} does not log: edited outside the service")
    # entries that logged a slot or a revocation no row points at: each must be one without a slot (issued
    # before status lists), or a revocation repeated after the row's own (logged by two overlapping runs of
    # releases before revocations were decided inside the write transaction; the credential is revoked)
    for event, pointer in ((ISSUED, c.issued_seq), (REVOKED, c.revoked_seq)):
        orphans = sa.select(a.seq).where(a.event == event).except_(sa.select(pointer).where(pointer.is_not(None)))
        q = sa.select(a.seq, a.payload).where(a.seq.in_(orphans.scalar_subquery())).order_by(a.seq)
        for part in _stream(conn, q, batch):
            for r in part:
                p = _logged(r.payload)
                if p is None:
                    return rewritten(r.seq, f"audit entry {r.seq} ({event}) payload {payload_fault(r.payload)}: the "
                                            f"service logs every {event} as a JSON object of its fields, so the entry "
                                            "was rewritten outside the service and its hash recomputed to match")
                if p.get("status_index") is None:
                    continue  # a credential issued before status lists, or its revocation: no row to match
                problem = _orphan(conn, r.seq, event, p)
                if problem is not None:
                    return problem
    return None


def _logged(text: Any) -> dict[str, Any] | None:
    """An entry's payload as these checks read it: ``{}`` for no entry, None for a payload the service never
    logs (not JSON, or JSON that is not an object: :func:`~scoring.store.audit.payload_fault` says which)."""
    if not text:
        return {}
    try:
        p = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return None
    return p if isinstance(p, dict) else None


def _rewritten(s: StatusSlot, seq: int, event: str, text: Any) -> Finding:
    return rewritten(seq, f"credential_status row of {s.credential_id} (list {s.list_number}, index {s.status_index}) "
                          f"points at audit entry {seq}, whose payload {payload_fault(text) or 'cannot be read'}: the "
                          f"service logs every {event} as a JSON object of its fields, so the entry was rewritten "
                          "outside the service and its hash recomputed to match")


def _orphan(conn: sa.Connection, seq: int, event: str, p: dict[str, Any]) -> tuple[int, str] | None:
    """What is wrong with entry ``seq``, which logged a slot or a revocation that no row points at."""
    c = t.credential_status.c
    cid = str(p.get("credential_id"))
    row = conn.execute(sa.select(t.credential_status).where(c.credential_id == cid)).first()
    if row is None:
        return seq, (f"audit entry {seq} ({event}) logged credential {cid} at index {p.get('status_index')} but "
                     "the credential_status table has no row for it: the row was deleted (its index could be given "
                     "to another credential)")
    if event == ISSUED:
        return seq, (f"audit entry {seq} logged issuing {cid} at index {p.get('status_index')}, but its "
                     f"credential_status row points at entry {row.issued_seq}: the row was edited outside the "
                     "service")
    if row.revoked_seq is None:
        return seq, (f"audit entry {seq} logged revoking {cid}, but its credential_status row is not revoked: the "
                     "revocation was cleared outside the service, and the published list would show the "
                     "credential as valid")
    return None  # revoked by an earlier entry too (two overlapping runs of an older release): it is revoked


def _stream(conn: sa.Connection, q: Any, batch: int) -> Iterator[Sequence[Any]]:
    res = conn.execution_options(stream_results=True, yield_per=batch).execute(q)
    yield from res.partitions(batch)
