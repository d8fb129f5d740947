"""The model registry: candidate, promoted and retired versions per rubric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from scoring.errors import Conflict, NotFound
from scoring.store import tables as t
from scoring.store.clock import iso as _iso
from scoring.store.clock import now as _now
from scoring.store.engine import StoreBase
from scoring.store.records import (  # noqa: F401
    ModelRecord,
    _model_rec,
)
from scoring.store.suspensions import lift_in


class ModelsStore(StoreBase):
    def register_model(
        self, version: str, path: str | Path, *, card: dict[str, Any] | None = None, rubric_id: str | None = None
    ) -> ModelRecord:
        """Register a trained model as a ``candidate``. Re-registering the same version with the same path
        is a no-op; with a different path raises :class:`Conflict`."""
        with self._write() as tx:
            row = tx.conn.execute(sa.select(t.models).where(t.models.c.version == version)).first()
            if row is not None:
                if row.path != str(path) or row.rubric_id != rubric_id:
                    raise Conflict(
                        f"model {version!r} is already registered at {row.path} for rubric {row.rubric_id}; "
                        f"found {path} for rubric {rubric_id}"
                    )
                return _model_rec(row)
            now = _now()
            tx.conn.execute(t.models.insert().values(version=version, rubric_id=rubric_id, path=str(path),
                                                     card=card or {}, status="candidate", registered_at=now))
            tx.append("model_registered", {"version": version, "rubric_id": rubric_id, "path": str(path),
                                           "at": _iso(now)})
            row = tx.conn.execute(sa.select(t.models).where(t.models.c.version == version)).one()
        return _model_rec(row)

    def promote_model(self, version: str, *, actor: str = "system") -> ModelRecord:
        """Make ``version`` the promoted model of its rubric (the previous one becomes ``retired``) and
        lift every active automation suspension of that rubric: a new calibration answers the drift."""
        with self._write() as tx:
            row = tx.conn.execute(sa.select(t.models).where(t.models.c.version == version)).first()
            if row is None:
                raise NotFound(f"model {version!r} is not registered")
            now = _now()
            tx.conn.execute(
                t.models.update()
                .where(t.models.c.rubric_id == row.rubric_id if row.rubric_id is not None
                       else t.models.c.rubric_id.is_(None), t.models.c.status == "promoted")
                .values(status="retired")
            )
            tx.conn.execute(t.models.update().where(t.models.c.version == version)
                            .values(status="promoted", promoted_at=now))
            tx.append("model_promoted", {"version": version, "rubric_id": row.rubric_id, "actor": actor,
                                         "at": _iso(now)})
            if row.rubric_id is not None:
                lift_in(tx, row.rubric_id, None, f"model:{version}", now)
            row = tx.conn.execute(sa.select(t.models).where(t.models.c.version == version)).one()
        return _model_rec(row)

    def model(self, version: str) -> ModelRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(t.models).where(t.models.c.version == version)).first()
        if row is None:
            raise NotFound(f"model {version!r} is not registered")
        return _model_rec(row)

    def promoted_model(self, rubric_id: str | None) -> ModelRecord | None:
        c = t.models.c
        cond = c.rubric_id == rubric_id if rubric_id is not None else c.rubric_id.is_(None)
        with self._read() as conn:
            row = conn.execute(sa.select(t.models).where(cond, c.status == "promoted")).first()
        return _model_rec(row) if row is not None else None

    def models(self) -> list[ModelRecord]:
        with self._read() as conn:
            return [_model_rec(r) for r in conn.execute(sa.select(t.models).order_by(t.models.c.id))]

