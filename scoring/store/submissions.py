"""Submissions: evidence and metadata, unique per rubric and external id, identified by content."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from scoring.errors import DuplicateSubmission, NotFound
from scoring.store import tables as t
from scoring.store.audit import canonical_json
from scoring.store.clock import now as _now
from scoring.store.engine import StoreBase, Tx
from scoring.store.engine import chunks as _chunks
from scoring.store.records import (  # noqa: F401
    SubmissionRecord,
    _sub_rec,
)
from scoring.store.service_tables import submission_chains


def content_hash(evidence: dict[str, Any], metadata: dict[str, Any]) -> str:
    """What makes two submissions "the same": their evidence and metadata, canonically serialised."""
    return hashlib.sha256(canonical_json({"evidence": evidence, "metadata": metadata}).encode()).hexdigest()


def evidence_pin(row: Any) -> dict[str, str]:
    """The payload fields that pin a score or decision entry to the evidence it is about.

    Why: the store id alone lets anyone who can write to the database change the evidence after it was
    scored; the logged content hash (of evidence and metadata, as :func:`content_hash` computes it) lets
    verification tell, and the external id names the submission the way the issuer knows it."""
    return {"external_id": str(row.external_id), "content_hash": str(row.content_hash)}


def evidence_pin_of(conn: sa.Connection, submission_id: int) -> dict[str, str]:
    """:func:`evidence_pin` of a stored submission, read inside the caller's transaction."""
    c = t.submissions.c
    row = conn.execute(sa.select(c.external_id, c.content_hash).where(c.id == submission_id)).first()
    if row is None:
        raise NotFound(f"submission {submission_id} does not exist")
    return evidence_pin(row)


class SubmissionsStore(StoreBase):
    def add_submission(
        self,
        rubric_id: str,
        rubric_version: int,
        external_id: str,
        evidence: dict[str, Any],
        metadata: dict[str, Any] | None = None,
    ) -> SubmissionRecord:
        """Record a submission. Re-sending the same external id with the same content returns the stored
        record; with different content raises :class:`DuplicateSubmission`."""
        return self.add_submissions(rubric_id, rubric_version, [(external_id, evidence, metadata or {})])[0]

    def add_submissions(
        self,
        rubric_id: str,
        rubric_version: int,
        items: Sequence[tuple[str, dict[str, Any], dict[str, Any]]],
    ) -> list[SubmissionRecord]:
        """Bulk form of :meth:`add_submission`: ``(external_id, evidence, metadata)`` tuples, one transaction."""
        with self._write() as tx:
            return add_submissions_in(self, tx, rubric_id, rubric_version, items)

    def submission(self, submission_id: int) -> SubmissionRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(t.submissions).where(t.submissions.c.id == submission_id)).first()
        if row is None:
            raise NotFound(f"submission {submission_id} does not exist")
        return _sub_rec(row)

    def find_submission(self, rubric_id: str, external_id: str) -> SubmissionRecord:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.submissions).where(
                    t.submissions.c.rubric_id == rubric_id, t.submissions.c.external_id == str(external_id)
                )
            ).first()
        if row is None:
            raise NotFound(f"no submission {external_id!r} for rubric {rubric_id}")
        return _sub_rec(row)

    def submissions_named(self, external_id: str, rubric_id: str | None = None) -> list[SubmissionRecord]:
        """Every stored submission with this external id (the id in the user's file), in any rubric unless
        ``rubric_id`` is given: one id may name submissions of two rubrics."""
        c = t.submissions.c
        cond = [c.external_id == str(external_id)] + ([c.rubric_id == rubric_id] if rubric_id else [])
        with self._read() as conn:
            return [_sub_rec(r) for r in conn.execute(sa.select(t.submissions).where(*cond).order_by(c.id))]

    def find_submissions(self, rubric_id: str, external_ids: Sequence[str]) -> dict[str, SubmissionRecord]:
        """The stored submissions among these external ids (absent ones are left out)."""
        out: dict[str, SubmissionRecord] = {}
        with self._read() as conn:
            for chunk in _chunks([str(x) for x in external_ids], 500):
                for row in conn.execute(sa.select(t.submissions).where(
                        t.submissions.c.rubric_id == rubric_id, t.submissions.c.external_id.in_(chunk))):
                    out[row.external_id] = _sub_rec(row)
        return out

    def submissions(self, rubric_id: str | None = None) -> list[SubmissionRecord]:
        q = sa.select(t.submissions).order_by(t.submissions.c.id)
        if rubric_id is not None:
            q = q.where(t.submissions.c.rubric_id == rubric_id)
        with self._read() as conn:
            return [_sub_rec(r) for r in conn.execute(q)]


def add_submissions_in(
    store: StoreBase, tx: Tx, rubric_id: str, rubric_version: int,
    items: Sequence[tuple[str, dict[str, Any], dict[str, Any]]],
) -> list[SubmissionRecord]:
    """Insert the new ones of ``(external_id, evidence, metadata)`` inside an open write transaction and
    return every item's record; raises :class:`DuplicateSubmission` when an id holds other content."""
    known = tx.conn.execute(sa.select(t.rubrics.c.id).where(  # read in this transaction: it may have registered it
        t.rubrics.c.rubric_id == rubric_id, t.rubrics.c.version == rubric_version)).first()
    if known is None:
        raise NotFound(f"rubric {rubric_id}@{rubric_version} is not registered in the store")
    out: list[SubmissionRecord] = []
    ids = [str(x[0]) for x in items]
    existing: dict[str, Any] = {}
    for chunk in _chunks(ids, 500):
        for row in tx.conn.execute(
            sa.select(t.submissions).where(
                t.submissions.c.rubric_id == rubric_id, t.submissions.c.external_id.in_(chunk)
            )
        ):
            existing[row.external_id] = row
    now = _now()
    new_rows = []
    for ext, evidence, meta in items:
        ext = str(ext)
        h = content_hash(evidence, meta)
        if ext in existing:
            row = existing[ext]
            if row.content_hash != h:
                raise DuplicateSubmission(
                    f"submission {ext!r} for rubric {rubric_id} already exists with different evidence or "
                    "metadata; send it under a new id (or the same content to read its result)"
                )
            continue
        new_rows.append(dict(rubric_id=rubric_id, rubric_version=rubric_version, external_id=ext,
                             evidence=evidence, meta=meta, content_hash=h, created_at=now))
        existing[ext] = SimpleNamespace(content_hash=h)  # reserve within the batch: a repeat must match
    if new_rows:
        tx.conn.execute(t.submissions.insert(), new_rows)
    rows: dict[str, Any] = {}
    for chunk in _chunks(ids, 500):
        for row in tx.conn.execute(
            sa.select(t.submissions).where(
                t.submissions.c.rubric_id == rubric_id, t.submissions.c.external_id.in_(chunk)
            )
        ):
            rows[row.external_id] = row
    out = [_sub_rec(rows[str(x[0])]) for x in items]
    fresh = {r["external_id"] for r in new_rows}
    for rec in out:  # in the order given: a chain recorded in one call links each attempt to the one before
        prev = rec.metadata.get(REVISES) if rec.external_id in fresh else None
        if prev:
            fresh.discard(rec.external_id)
            _link_attempt(tx, rubric_id, rec.id, str(prev))
    return out


REVISES = "revises"  # metadata key: the external id of the earlier attempt a resubmission revises


def _root_in(conn: Any, submission_id: int) -> int | None:
    """The first attempt of a resubmission's chain (None: ``submission_id`` is a first attempt)."""
    root = conn.execute(sa.select(submission_chains.c.root_id)
                        .where(submission_chains.c.submission_id == submission_id)).scalar()
    return int(root) if root is not None else None


def submission_in(conn: Any, submission_id: int) -> SubmissionRecord | None:
    """One submission read on ``conn`` (inside a transaction that must see its own writes)."""
    row = conn.execute(sa.select(t.submissions).where(t.submissions.c.id == submission_id)).first()
    return _sub_rec(row) if row is not None else None


def first_attempt_in(conn: Any, sub: SubmissionRecord) -> SubmissionRecord | None:
    """The first attempt of a resubmission's chain (None: ``sub`` is a first attempt)."""
    root = _root_in(conn, sub.id)
    return submission_in(conn, root) if root is not None else None


def other_attempts_in(conn: Any, submission_id: int) -> list[int]:
    """The store ids of the other attempts of this submission's resubmission chain, first to last (none:
    it is in no chain)."""
    root = _root_in(conn, submission_id) or submission_id
    ch = submission_chains.c
    members = [int(i) for i in conn.execute(sa.select(ch.submission_id).where(ch.root_id == root)
                                            .order_by(ch.submission_id)).scalars()]
    return [i for i in ([root] if members else []) + members if i != submission_id]


def _link_attempt(tx: Tx, rubric_id: str, submission_id: int, prev_external_id: str) -> None:
    """Record the first attempt of a new resubmission's chain (``submission_chains``)."""
    ch = submission_chains
    prev = tx.conn.execute(sa.select(t.submissions.c.id).where(
        t.submissions.c.rubric_id == rubric_id, t.submissions.c.external_id == prev_external_id)).scalar()
    if prev is None or int(prev) == submission_id:
        return
    tx.conn.execute(ch.insert().values(submission_id=submission_id, root_id=_root_in(tx.conn, int(prev)) or int(prev)))
