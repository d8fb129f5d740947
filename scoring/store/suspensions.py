"""Automation suspensions: a criterion whose automation a gate (or a person) stopped."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from scoring.store import tables as t
from scoring.store.audit import canonical_json
from scoring.store.clock import iso as _iso
from scoring.store.clock import now as _now
from scoring.store.engine import StoreBase, Tx
from scoring.store.records import (  # noqa: F401
    Suspension,
    _susp_rec,
)


class SuspensionsStore(StoreBase):
    def suspend_automation(
        self, rubric_id: str, criterion: str, reason: str, *, details: dict[str, Any] | None = None
    ) -> Suspension:
        """Stop automatic scoring of one criterion (routing consults :meth:`is_suspended`). Idempotent:
        an already active suspension is returned unchanged."""
        with self._write() as tx:
            c = t.suspensions.c
            row = tx.conn.execute(
                sa.select(t.suspensions).where(c.rubric_id == rubric_id, c.criterion == criterion,
                                               c.lifted_at.is_(None))
            ).first()
            if row is not None:
                return _susp_rec(row)
            now = _now()
            det = json.loads(canonical_json(details or {}))
            seq = tx.append("automation_suspended", {"rubric_id": rubric_id, "criterion": criterion,
                                                     "reason": reason, "details": det, "at": _iso(now)})
            tx.conn.execute(t.suspensions.insert().values(rubric_id=rubric_id, criterion=criterion, reason=reason,
                                                          details=det, suspended_at=now, audit_seq=seq))
            row = tx.conn.execute(
                sa.select(t.suspensions).where(c.rubric_id == rubric_id, c.criterion == criterion,
                                               c.lifted_at.is_(None))
            ).one()
        return _susp_rec(row)

    def lift_suspension(self, rubric_id: str, criterion: str | None = None, *, by: str) -> int:
        """Lift active suspensions (one criterion, or all of the rubric's); returns how many were lifted."""
        with self._write() as tx:
            return lift_in(tx, rubric_id, criterion, by, _now())

    def is_suspended(self, rubric_id: str, criterion: str) -> bool:
        """True while automation of this criterion is suspended (by the drift monitor or by hand)."""
        c = t.suspensions.c
        with self._read() as conn:
            return conn.execute(
                sa.select(sa.func.count()).where(c.rubric_id == rubric_id, c.criterion == criterion,
                                                 c.lifted_at.is_(None))
            ).scalar_one() > 0

    def suspensions(self, *, rubric_id: str | None = None, active_only: bool = False) -> list[Suspension]:
        c = t.suspensions.c
        q = sa.select(t.suspensions).order_by(c.id)
        if rubric_id is not None:
            q = q.where(c.rubric_id == rubric_id)
        if active_only:
            q = q.where(c.lifted_at.is_(None))
        with self._read() as conn:
            return [_susp_rec(r) for r in conn.execute(q)]


def lift_in(tx: Tx, rubric_id: str, criterion: str | None, by: str, now: datetime) -> int:
    """Lift active suspensions inside an open write transaction (promotion lifts them with the model)."""
    c = t.suspensions.c
    q = sa.select(t.suspensions).where(c.rubric_id == rubric_id, c.lifted_at.is_(None))
    if criterion is not None:
        q = q.where(c.criterion == criterion)
    rows = tx.conn.execute(q).all()
    for row in rows:
        tx.append("automation_resumed", {"rubric_id": rubric_id, "criterion": row.criterion,
                                         "suspension_id": row.id, "by": by, "at": _iso(now)})
        tx.conn.execute(t.suspensions.update().where(c.id == row.id).values(lifted_at=now, lifted_by=by))
    return len(rows)
