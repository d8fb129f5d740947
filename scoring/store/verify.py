"""Reading and verifying the audit log against the score rows it logged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from scoring.store import tables as t
from scoring.store.audit import AuditEntry, AuditVerification, verify_chain
from scoring.store.engine import StoreBase


class AuditStore(StoreBase):
    def audit_entries(self, *, since_seq: int = 0, event: str | None = None) -> Iterator[AuditEntry]:
        """Entries in log order, after ``since_seq`` and (``event``) of one kind only."""
        with self._read() as conn:
            q = sa.select(t.audit_log).where(t.audit_log.c.seq > since_seq).order_by(t.audit_log.c.seq)
            if event is not None:
                q = q.where(t.audit_log.c.event == event)
            for r in conn.execute(q):
                yield AuditEntry(r.seq, r.event, json.loads(r.payload), r.prev_hash, r.entry_hash)

    def verify_audit(self) -> AuditVerification:
        """Check the whole hash chain, then that every score row still matches the entry that logged it and
        that no row points past the end of the log (which catches deletion of the last entries)."""
        a = t.audit_log.c
        with self._read() as conn:
            rows = conn.execute(sa.select(a.seq, a.event, a.payload, a.prev_hash, a.entry_hash).order_by(a.seq))
            res = verify_chain(tuple(r) for r in rows)
            if not res.ok:
                return res
            last = res.last_seq or 0
            payloads: dict[int, dict[str, Any]] = {}
            for table, fields in ((t.machine_scores, ("submission_id", "criterion", "score")),
                                  (t.human_scores, ("submission_id", "criterion", "score", "kind", "assessor")),
                                  (t.adjudications, ("submission_id", "criterion", "score")),
                                  (t.decisions, ("submission_id", "outcome", "basis", "levels"))):
                for row in conn.execute(sa.select(table).order_by(table.c.audit_seq)):
                    if row.audit_seq > last:
                        return _bad(res, last + 1, f"{table.name} row {row.id} was logged as entry {row.audit_seq} "
                                                   f"but the log ends at {last}: trailing entries deleted")
                    if row.audit_seq not in payloads:
                        p = conn.execute(sa.select(a.payload).where(a.seq == row.audit_seq)).scalar_one()
                        payloads[row.audit_seq] = json.loads(p)
                    p = payloads.pop(row.audit_seq)
                    for f in fields:
                        if p.get(f) != getattr(row, f):
                            return _bad(res, row.audit_seq,
                                        f"{table.name} row {row.id} has {f}={getattr(row, f)!r} but audit entry "
                                        f"{row.audit_seq} logged {p.get(f)!r}: the score row was edited")
        return res


def _bad(res: AuditVerification, seq: int, problem: str) -> AuditVerification:
    return AuditVerification(False, res.entries_checked, res.last_seq, res.head_hash, seq, problem)

