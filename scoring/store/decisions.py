"""Credential decisions: appended with their audit entry, like scores; the latest one per submission stands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from scoring.store import tables as t
from scoring.store.clock import aware as _aware
from scoring.store.clock import iso as _iso
from scoring.store.clock import now as _now
from scoring.store.engine import StoreBase, Tx
from scoring.store.engine import pk as _pk
from scoring.store.submissions import evidence_pin_of

BASES = ("machine", "final")


@dataclass(frozen=True)
class DecisionRecord:
    id: int
    submission_id: int
    rubric_id: str
    rubric_version: int
    outcome: str
    basis: str
    p_earned: float | None
    levels: dict[str, int]
    reason: str
    model_version: str | None
    policy_version: str | None
    created_at: datetime
    audit_seq: int


def _rec(r: Any) -> DecisionRecord:
    return DecisionRecord(r.id, r.submission_id, r.rubric_id, r.rubric_version, r.outcome, r.basis, r.p_earned,
                          dict(r.levels), r.reason, r.model_version, r.policy_version,
                          _aware(r.created_at), r.audit_seq)  # type: ignore[arg-type]


def decision_in(tx: Tx, submission_id: int, rubric_id: str, rubric_version: int, outcome: str, basis: str,
                levels: dict[str, int], *, p_earned: float | None = None, reason: str = "",
                model_version: str | None = None, policy_version: str | None = None,
                pin: dict[str, str] | None = None) -> int:
    """Append a decision and its audit entry inside an open write transaction; returns its id.

    The entry pins the submission's external id and content hash, so verification can tell when the evidence
    a decision rests on was changed afterwards: ``pin`` (``evidence_pin`` of the submission row a caller read
    in this transaction, as intake has), else read here."""
    if outcome not in ("earned", "not_yet", "needs_human"):
        raise ValueError(f"decision outcome must be earned, not_yet or needs_human, found {outcome!r}")
    if basis not in BASES:
        raise ValueError(f"decision basis must be one of {list(BASES)}, found {basis!r}")
    now = _now()
    lv = {str(k): int(v) for k, v in levels.items()}
    pe = None if p_earned is None else round(float(p_earned), 6)
    seq = tx.append("credential_decision", {
        "submission_id": submission_id, "rubric": f"{rubric_id}@{rubric_version}", "outcome": outcome,
        "basis": basis, "p_earned": pe, "levels": lv, "reason": reason, "model_version": model_version,
        "policy_version": policy_version, "at": _iso(now), **(pin if pin is not None else evidence_pin_of(tx.conn, submission_id))})
    res = tx.conn.execute(t.decisions.insert().values(
        submission_id=submission_id, rubric_id=rubric_id, rubric_version=rubric_version, outcome=outcome, basis=basis,
        p_earned=pe, levels=lv, reason=reason[:4000], model_version=model_version, policy_version=policy_version,
        created_at=now, audit_seq=seq))
    return _pk(res)


class DecisionsStore(StoreBase):
    def decisions(self, *, submission_id: int | None = None, rubric_id: str | None = None,
                  basis: str | None = None) -> list[DecisionRecord]:
        """Decisions in recording order, filtered."""
        c = t.decisions.c
        q = sa.select(t.decisions).order_by(c.id)
        for col, val in ((c.submission_id, submission_id), (c.rubric_id, rubric_id), (c.basis, basis)):
            if val is not None:
                q = q.where(col == val)
        with self._read() as conn:
            return [_rec(r) for r in conn.execute(q)]

    def latest_decision(self, submission_id: int) -> DecisionRecord | None:
        got = self.decisions(submission_id=submission_id)
        return got[-1] if got else None

    def latest_decisions(self) -> dict[int, DecisionRecord]:
        """submission id -> its standing (latest) decision, for every decided submission, in one query."""
        c = t.decisions.c
        last = sa.select(sa.func.max(c.id)).group_by(c.submission_id).scalar_subquery()
        with self._read() as conn:
            return {r.submission_id: _rec(r) for r in conn.execute(sa.select(t.decisions).where(c.id.in_(last)))}
