"""Rubrics: register a version (immutable once used), read one back."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from rubrics.schema import Rubric, parse_rubric
from scoring.errors import NotFound, RubricImmutable
from scoring.store import tables as t
from scoring.store.audit import canonical_json
from scoring.store.clock import aware as _aware
from scoring.store.clock import iso as _iso
from scoring.store.clock import now as _now
from scoring.store.engine import StoreBase, Tx
from scoring.store.records import (  # noqa: F401
    RubricRecord,
    _rubric_rec,
)


def register_rubric_in(tx: Tx, rubric: Rubric) -> RubricRecord:
    """Store a rubric version inside an open write transaction (so a command that registers it and then fails
    leaves nothing behind). Idempotent for the same content; a different body under the same id+version raises
    :class:`RubricImmutable` (publish a new version instead)."""
    fp = rubric.fingerprint()
    row = tx.conn.execute(
        sa.select(t.rubrics).where(t.rubrics.c.rubric_id == rubric.id, t.rubrics.c.version == rubric.version)
    ).first()
    if row is not None:
        if row.fingerprint != fp:
            raise RubricImmutable(
                f"rubric {rubric.key} is already registered with fingerprint {row.fingerprint}; this file has "
                f"fingerprint {fp}. A used rubric version is immutable: bump `version` to change it"
            )
        return _rubric_rec(row)
    now = _now()
    tx.conn.execute(
        t.rubrics.insert().values(
            rubric_id=rubric.id, version=rubric.version, title=rubric.title[:300], fingerprint=fp,
            body=canonical_json(rubric.model_dump(mode="json")), registered_at=now,
        )
    )
    tx.append("rubric_registered", {"rubric": rubric.key, "fingerprint": fp, "at": _iso(now)})
    return RubricRecord(rubric.id, rubric.version, rubric.title, fp, _aware(now))  # type: ignore[arg-type]


class RubricsStore(StoreBase):
    def register_rubric(self, rubric: Rubric) -> RubricRecord:
        """Store a rubric version in its own transaction (see :func:`register_rubric_in`)."""
        with self._write() as tx:
            rec = register_rubric_in(tx, rubric)
        self._rubric_cache[(rubric.id, rubric.version)] = rubric
        return rec

    def rubric(self, rubric_id: str, version: int | None = None, *, conn: Any = None) -> Rubric:
        """A registered rubric (the newest version when ``version`` is None). ``conn``: read inside that open
        transaction, which may have registered it (:func:`register_rubric_in`); what it reads is not cached,
        as the transaction may still roll back."""
        if version is not None and (rubric_id, version) in self._rubric_cache:
            return self._rubric_cache[(rubric_id, version)]
        q = sa.select(t.rubrics).where(t.rubrics.c.rubric_id == rubric_id)
        q = q.where(t.rubrics.c.version == version) if version is not None else q.order_by(t.rubrics.c.version.desc())
        if conn is not None:
            row = conn.execute(q.limit(1)).first()
        else:
            with self._read() as read:
                row = read.execute(q.limit(1)).first()
        if row is None:
            what = f"{rubric_id}@{version}" if version is not None else rubric_id
            raise NotFound(f"rubric {what} is not registered in the store")
        rub = parse_rubric(json.loads(row.body), f"store:{row.rubric_id}@{row.version}")
        if conn is None:
            self._rubric_cache[(row.rubric_id, row.version)] = rub
        return rub

    def rubrics(self) -> list[RubricRecord]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.rubrics).order_by(t.rubrics.c.rubric_id, t.rubrics.c.version)).all()
        return [_rubric_rec(r) for r in rows]

