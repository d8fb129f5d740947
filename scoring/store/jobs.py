"""Service bookkeeping: idempotency keys, who submitted what, and batch-job progress.

Idempotency (``Idempotency-Key`` header): the first request with a key *reserves* it (a row with no
response yet, unique per owner+key) before doing any work, and stores its response when done. A retry
with the same body gets the stored response; a different body, or a retry while the first is still in
flight, gets :class:`IdempotencyKeyReused` (409). A failed first attempt releases its reservation so the
client's retry can succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from scoring.errors import IdempotencyKeyReused, NotFound
from scoring.store.service_tables import batch_job_results, batch_jobs, idempotency_keys, submission_owners
from scoring.store.store import Store

STALE_RESERVATION_S = 300  # an unanswered reservation older than this was abandoned by a dead process


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _w(store: Store) -> Any:
    return store.engine.connect().execution_options(store_write=True)


# ------------------------------------------------------------------------------------- idempotency


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]


def reserve_idempotency(store: Store, owner: str, key: str, request_hash: str) -> StoredResponse | None:
    """None: the caller owns the key now and must :func:`complete_idempotency` or :func:`release_idempotency`.
    A :class:`StoredResponse`: replay it. Raises :class:`IdempotencyKeyReused` on a body mismatch or in-flight."""
    c = idempotency_keys.c
    with _w(store) as conn, conn.begin():
        row = conn.execute(sa.select(idempotency_keys).where(c.owner == owner, c.key == key)).first()
        if row is None:
            conn.execute(idempotency_keys.insert().values(owner=owner, key=key, request_hash=request_hash,
                                                          created_at=_now()))
            return None
        if row.status_code is None and (_now() - row.created_at).total_seconds() > STALE_RESERVATION_S:
            # the first attempt died mid-request (crash, kill): let the retry take the key over
            conn.execute(idempotency_keys.update().where(c.id == row.id)
                         .values(request_hash=request_hash, created_at=_now()))
            return None
    if row.request_hash != request_hash:
        raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was first used with a request body hashing to "
                                   f"{row.request_hash[:12]}...; this body hashes to {request_hash[:12]}...")
    if row.status_code is None:
        raise IdempotencyKeyReused(f"a request with Idempotency-Key {key!r} is still in progress; retry shortly")
    return StoredResponse(row.status_code, row.response)


def complete_idempotency(store: Store, owner: str, key: str, status_code: int, body: dict[str, Any]) -> None:
    c = idempotency_keys.c
    with _w(store) as conn, conn.begin():
        conn.execute(idempotency_keys.update().where(c.owner == owner, c.key == key)
                     .values(status_code=status_code, response=body))


def release_idempotency(store: Store, owner: str, key: str) -> None:
    c = idempotency_keys.c
    with _w(store) as conn, conn.begin():
        conn.execute(idempotency_keys.delete().where(c.owner == owner, c.key == key, c.status_code.is_(None)))


# -------------------------------------------------------------------------------------- ownership


def set_owner(store: Store, submission_id: int, owner: str) -> None:
    """Remember the first owner of a submission (re-sending it does not change hands)."""
    try:
        with _w(store) as conn, conn.begin():
            have = conn.execute(sa.select(submission_owners.c.owner)
                                .where(submission_owners.c.submission_id == submission_id)).first()
            if have is None:
                conn.execute(submission_owners.insert().values(submission_id=submission_id, owner=owner))
    except sa.exc.IntegrityError:
        pass  # a concurrent request recorded its owner first: the first one stays (callers check owner_of)


def owner_of(store: Store, submission_id: int) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(submission_owners.c.owner)
                            .where(submission_owners.c.submission_id == submission_id)).scalar()


# -------------------------------------------------------------------------------------- batch jobs


@dataclass(frozen=True)
class BatchJob:
    id: int
    owner: str
    rubric_id: str
    rubric_version: int
    status: str  # queued | running | done | failed
    total: int
    done: int
    rejected: int
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class BatchResult:
    position: int
    external_id: str
    submission_id: int | None
    error: str | None


def _job(r: Any) -> BatchJob:
    return BatchJob(r.id, r.owner, r.rubric_id, r.rubric_version, r.status, r.total, r.done, r.rejected, r.error,
                    r.created_at.replace(tzinfo=UTC), r.updated_at.replace(tzinfo=UTC))


def create_job(store: Store, owner: str, rubric_id: str, rubric_version: int, total: int) -> BatchJob:
    now = _now()
    with _w(store) as conn, conn.begin():
        res = conn.execute(batch_jobs.insert().values(owner=owner, rubric_id=rubric_id, rubric_version=rubric_version,
                                                      status="queued", total=total, done=0, rejected=0,
                                                      created_at=now, updated_at=now))
        row = conn.execute(sa.select(batch_jobs).where(batch_jobs.c.id == res.inserted_primary_key[0])).one()
    return _job(row)


def job(store: Store, job_id: int) -> BatchJob:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(batch_jobs).where(batch_jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"batch job {job_id} does not exist")
    return _job(row)


def update_job(store: Store, job_id: int, *, status: str | None = None, results: list[BatchResult] = (),  # type: ignore[assignment]
               error: str | None = None, total: int | None = None) -> None:
    """Append a block's results and advance the counters in one transaction (progress never runs ahead)."""
    with _w(store) as conn, conn.begin():
        if results:
            conn.execute(batch_job_results.insert(), [
                dict(job_id=job_id, position=r.position, external_id=r.external_id[:200],
                     submission_id=r.submission_id, error=r.error) for r in results])
        vals: dict[str, Any] = {"updated_at": _now(),
                                "done": batch_jobs.c.done + sum(1 for r in results if r.error is None),
                                "rejected": batch_jobs.c.rejected + sum(1 for r in results if r.error is not None)}
        if status is not None:
            vals["status"] = status
        if error is not None:
            vals["error"] = error[:4000]
        if total is not None:
            vals["total"] = total
        conn.execute(batch_jobs.update().where(batch_jobs.c.id == job_id).values(**vals))


def job_results(store: Store, job_id: int, *, offset: int = 0, limit: int = 1000) -> list[BatchResult]:
    c = batch_job_results.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(batch_job_results).where(c.job_id == job_id).order_by(c.position)
                            .offset(offset).limit(limit)).all()
    return [BatchResult(r.position, r.external_id, r.submission_id, r.error) for r in rows]
