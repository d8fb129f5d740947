"""Service bookkeeping: idempotency keys, who submitted what, and batch-job progress.

Idempotency (``Idempotency-Key`` header): the first request with a key *reserves* it (a row with no
response yet, unique per owner+key) before doing any work, and stores its response when done. A retry
with the same body gets the stored response; a different body, or a retry while the first is still in
flight, gets :class:`IdempotencyKeyReused` (409). A failed first attempt releases its reservation so the
client's retry can succeed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from scoring.errors import IdempotencyKeyReused, JobFinished, NotFound
from scoring.store.clock import now as _now
from scoring.store.engine import Tx
from scoring.store.engine import pk as _pk
from scoring.store.service_tables import batch_job_results, batch_jobs, idempotency_keys, submission_owners
from scoring.store.store import Store

STALE_RESERVATION_S = 300  # an unanswered reservation older than this was abandoned by a dead process
JOB_LOCK_CLASS = 0x5C0B  # PostgreSQL advisory locks of batch-job runners: (JOB_LOCK_CLASS, job id)
RUN_LOCK = "run.lock"  # SQLite: the runner's lock file in the job's folder


# ------------------------------------------------------------------------------------- idempotency


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]


def reserve_idempotency(store: Store, owner: str, key: str, request_hash: str) -> StoredResponse | None:
    """None: the caller owns the key now and must :func:`complete_idempotency` or :func:`release_idempotency`.
    A :class:`StoredResponse`: replay it. Raises :class:`IdempotencyKeyReused` on a body mismatch or in-flight."""
    c = idempotency_keys.c
    with store.write() as tx:
        conn = tx.conn
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
    with store.write() as tx:
        conn = tx.conn
        conn.execute(idempotency_keys.update().where(c.owner == owner, c.key == key)
                     .values(status_code=status_code, response=body))


def release_idempotency(store: Store, owner: str, key: str) -> None:
    c = idempotency_keys.c
    with store.write() as tx:
        conn = tx.conn
        conn.execute(idempotency_keys.delete().where(c.owner == owner, c.key == key, c.status_code.is_(None)))


# -------------------------------------------------------------------------------------- ownership


def set_owner(store: Store, submission_id: int, owner: str) -> None:
    """Remember the first owner of a submission (re-sending it does not change hands)."""
    with store.write() as tx:
        set_owner_in(tx, submission_id, owner)


def set_owner_in(tx: Tx, submission_id: int, owner: str) -> None:
    """:func:`set_owner` inside an open write transaction (writers are serialised, so check-then-insert holds)."""
    have = tx.conn.execute(sa.select(submission_owners.c.owner)
                           .where(submission_owners.c.submission_id == submission_id)).first()
    if have is None:
        tx.conn.execute(submission_owners.insert().values(submission_id=submission_id, owner=owner))


def owners_of(conn: Any, submission_ids: list[int]) -> dict[int, str]:
    """The recorded owner of each of these submissions (absent: none recorded)."""
    out: dict[int, str] = {}
    c = submission_owners.c
    for i in range(0, len(submission_ids), 500):
        for r in conn.execute(sa.select(c.submission_id, c.owner).where(c.submission_id.in_(submission_ids[i:i + 500]))):
            out[int(r.submission_id)] = r.owner
    return out


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
    status: str  # queued | running | done | failed | cancelled
    total: int
    done: int
    rejected: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    workdir: str | None = None  # where the resumable run keeps its input, outputs and progress file
    cancelled_by: str | None = None
    cancelled_at: datetime | None = None
    resumes: int = 0  # times a starting server found the job running and resumed it


@dataclass(frozen=True)
class BatchResult:
    position: int
    external_id: str
    submission_id: int | None
    error: str | None


ACTIVE = ("queued", "running")  # a job a server runs, resumes after a restart, and may cancel


class JobCancelled(Exception):
    """The job was cancelled while it ran: the block in hand is not recorded (its transaction rolls back)."""


def _job(r: Any) -> BatchJob:
    return BatchJob(r.id, r.owner, r.rubric_id, r.rubric_version, r.status, r.total, r.done, r.rejected, r.error,
                    r.created_at.replace(tzinfo=UTC), r.updated_at.replace(tzinfo=UTC), r.workdir,
                    r.cancelled_by, r.cancelled_at.replace(tzinfo=UTC) if r.cancelled_at else None, int(r.resumes or 0))


def create_job(store: Store, owner: str, rubric_id: str, rubric_version: int, total: int,
               workdir: str | None = None) -> BatchJob:
    now = _now()
    with store.write() as tx:
        conn = tx.conn
        res = conn.execute(batch_jobs.insert().values(owner=owner, rubric_id=rubric_id, rubric_version=rubric_version,
                                                      status="queued", total=total, done=0, rejected=0,
                                                      created_at=now, updated_at=now, workdir=workdir))
        row = conn.execute(sa.select(batch_jobs).where(batch_jobs.c.id == _pk(res))).one()
    return _job(row)


def job(store: Store, job_id: int) -> BatchJob:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(batch_jobs).where(batch_jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"batch job {job_id} does not exist")
    return _job(row)


def list_jobs(store: Store, owner: str | None = None, status: str | None = None, *, offset: int = 0,
              limit: int = 100) -> list[BatchJob]:
    """Jobs newest first; ``owner`` None: everyone's (an admin's view)."""
    c = batch_jobs.c
    q = sa.select(batch_jobs)
    if owner is not None:
        q = q.where(c.owner == owner)
    if status is not None:
        q = q.where(c.status == status)
    with store.engine.connect() as conn:
        rows = conn.execute(q.order_by(c.id.desc()).offset(offset).limit(limit)).all()
    return [_job(r) for r in rows]


def cancel_job(store: Store, job_id: int, by: str) -> BatchJob:
    """Stop a queued or running job. The runner checks before it records each block, so the rows recorded
    before the cancel stay recorded (and listed in the job's results), the block in hand is dropped, and no
    row is recorded after; a starting server never resumes it. :class:`JobFinished` (409) when it had ended."""
    c = batch_jobs.c
    with store.write() as tx:
        row = tx.conn.execute(sa.select(batch_jobs).where(c.id == job_id)).first()
        if row is None:
            raise NotFound(f"batch job {job_id} does not exist")
        if row.status not in ACTIVE:
            how = {"done": "finished", "failed": "failed", "cancelled": "already cancelled"}.get(row.status, row.status)
            raise JobFinished(f"batch job {job_id} has {how} ({row.done} scored, {row.rejected} rejected of "
                              f"{row.total}); only a queued or running job can be cancelled")
        now = _now()
        tx.conn.execute(batch_jobs.update().where(c.id == job_id)
                        .values(status="cancelled", cancelled_by=by, cancelled_at=now, updated_at=now))
    return job(store, job_id)


def start_job(store: Store, job_id: int) -> bool:
    """Mark a job running as its runner starts it; False when it was cancelled meanwhile (do not run it).
    A job found ``running`` was interrupted by a server that stopped: it counts one more resume."""
    c = batch_jobs.c
    with store.write() as tx:
        row = tx.conn.execute(sa.select(c.status).where(c.id == job_id)).first()
        if row is None or row.status not in ACTIVE:
            return False
        vals: dict[str, Any] = {"status": "running", "updated_at": _now()}
        if row.status == "running":
            vals["resumes"] = c.resumes + 1
        tx.conn.execute(batch_jobs.update().where(c.id == job_id).values(**vals))
    return True


@contextmanager
def runner(store: Store, job_id: int, workdir: str | None) -> Iterator[bool]:
    """Hold the job's runner lock while this process runs it: True when it got the lock, False when another
    process runs the job right now (another ``scoring serve`` on this database, on this machine or another).

    Why: every server resumes the queued and running jobs it finds when it starts, and a job found
    ``running`` may be running in another server still. The lock lives as long as the process holding it
    (PostgreSQL: a session advisory lock on a connection held for the run; SQLite, whose servers share one
    machine: an ``flock`` on ``run.lock`` in the job's folder), so a job whose server died is resumed and a
    job another server runs is left alone: not marked failed because its folder is on another machine, and
    not counted as resumed."""
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            key = {"c": JOB_LOCK_CLASS, "j": job_id}
            got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:c, :j)"), key).scalar())
            conn.commit()  # the lock is the session's: no transaction stays open while the job runs
            try:
                yield got
            finally:
                if got:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:c, :j)"), key)
                    conn.commit()
        return
    folder = Path(workdir) if workdir else None
    if folder is None or not folder.is_dir():  # nobody on this machine can run it
        yield True
        return
    import fcntl

    with (folder / RUN_LOCK).open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def end_job(store: Store, job_id: int, status: str, error: str | None = None) -> None:
    """Record how a running job ended (``done`` or ``failed``), unless it was cancelled meanwhile."""
    c = batch_jobs.c
    vals: dict[str, Any] = {"status": status, "updated_at": _now()}
    if error is not None:
        vals["error"] = error[:4000]
    with store.write() as tx:
        tx.conn.execute(batch_jobs.update().where(c.id == job_id, c.status.in_(ACTIVE)).values(**vals))


def update_job(store: Store, job_id: int, *, status: str | None = None, results: Sequence[BatchResult] = (),
               error: str | None = None, total: int | None = None, workdir: str | None = None) -> None:
    """Append a block's results and advance the counters in one transaction (see :func:`update_job_in`)."""
    with store.write() as tx:
        update_job_in(tx, job_id, status=status, results=results, error=error, total=total, workdir=workdir)


def update_job_in(tx: Tx, job_id: int, *, status: str | None = None, results: Sequence[BatchResult] = (),
                  error: str | None = None, total: int | None = None, workdir: str | None = None) -> None:
    """Inside an open write transaction: record the results of positions not yet recorded (a resumed block
    repeats none) and advance the counters by exactly those, so progress never runs ahead or double-counts.
    A job cancelled meanwhile raises :class:`JobCancelled`, rolling back the block this transaction records."""
    conn = tx.conn
    if results and conn.execute(sa.select(batch_jobs.c.status).where(batch_jobs.c.id == job_id)).scalar() == "cancelled":
        raise JobCancelled(f"batch job {job_id} was cancelled")
    fresh: list[BatchResult] = []
    if results:
        c = batch_job_results.c
        positions = [r.position for r in results]
        have = {int(p) for p in conn.execute(sa.select(c.position).where(
            c.job_id == job_id, c.position.in_(positions))).scalars()}
        fresh = [r for r in results if r.position not in have]
    if fresh:
        conn.execute(batch_job_results.insert(), [
            dict(job_id=job_id, position=r.position, external_id=r.external_id[:200],
                 submission_id=r.submission_id, error=r.error) for r in fresh])
    vals: dict[str, Any] = {"updated_at": _now(),
                            "done": batch_jobs.c.done + sum(1 for r in fresh if r.error is None),
                            "rejected": batch_jobs.c.rejected + sum(1 for r in fresh if r.error is not None)}
    if status is not None:
        vals["status"] = status
    if error is not None:
        vals["error"] = error[:4000]
    if total is not None:
        vals["total"] = total
    if workdir is not None:
        vals["workdir"] = workdir
    conn.execute(batch_jobs.update().where(batch_jobs.c.id == job_id).values(**vals))


def unfinished_jobs(store: Store) -> list[BatchJob]:
    """Jobs a server stopped before they finished (queued or running): resumed when the server starts."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(batch_jobs).where(batch_jobs.c.status.in_(ACTIVE))
                            .order_by(batch_jobs.c.id)).all()
    return [_job(r) for r in rows]


def job_results(store: Store, job_id: int, *, offset: int = 0, limit: int = 1000) -> list[BatchResult]:
    c = batch_job_results.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(batch_job_results).where(c.job_id == job_id).order_by(c.position)
                            .offset(offset).limit(limit)).all()
    return [BatchResult(r.position, r.external_id, r.submission_id, r.error) for r in rows]
