"""The assessors' work queue: items to human-score, claimed under a lease that expires.

An item is one submission and the criteria a person must score on it, for one rater slot (``kind``):
``human`` routes make one ``first`` item (machine score visible), ``double`` routes a ``first`` and a
``second`` item (both blind), ``audit`` routes one blind ``audit`` item; ``auto`` makes none.

Why claims cannot collide: a claim is ONE statement,
``UPDATE queue_items SET holder=... WHERE id = (SELECT id ... FOR UPDATE SKIP LOCKED LIMIT 1) AND <still
available> RETURNING ...``. On PostgreSQL the row lock makes a concurrent claimer skip the row; on SQLite
the store's ``BEGIN IMMEDIATE`` serialises writers and the re-checked condition does the rest. Each claim
gets a fresh random lease token; submit and release must present it, so an assessor whose lease expired
and was taken over gets a 409 instead of overwriting the new holder's work.

Why no human score is lost when submits race: the submit checks the lease, writes the human scores with
their audit entries and marks the item done in ONE store write transaction (the store's writer lock), so
of two racing submits exactly one records and the other gets :class:`AlreadyScored` / :class:`LeaseExpired`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from scoring.errors import AlreadyScored, InvalidRequest, LeaseExpired, NotFound
from scoring.store import tables as t
from scoring.store.clock import aware as _aware
from scoring.store.clock import iso as _iso
from scoring.store.clock import now as _now
from scoring.store.engine import Tx
from scoring.store.records import HumanScoreIn
from scoring.store.scores import RATER_KINDS, human_scores_in
from scoring.store.service_tables import queue_items, queue_skips
from scoring.store.store import Store

ROUTE_SLOTS: dict[str, tuple[tuple[str, bool], ...]] = {
    # route -> (kind, blind) per rater slot
    "auto": (),
    "human": (("first", False),),
    "double": (("first", True), ("second", True)),
    "audit": (("audit", True),),
}
ROUTE_PRIORITY = {"double": 20, "human": 10, "audit": 0}


@dataclass(frozen=True)
class QueueItem:
    id: int
    submission_id: int
    criteria: list[str]
    route: str
    reason: str
    kind: str
    blind: bool
    priority: int
    status: str
    holder: str | None
    lease_token: str | None
    lease_expires: datetime | None
    created_at: datetime
    done_at: datetime | None
    rank: float = 0.0


@dataclass(frozen=True)
class QueueCounts:
    open: int
    claimed: int
    done: int
    mine_held: int
    mine_done: int


def _rec(r: Any) -> QueueItem:
    return QueueItem(r.id, r.submission_id, list(r.criteria), r.route, r.reason, r.kind, bool(r.blind), r.priority,
                     r.status, r.holder, r.lease_token, _aware(r.lease_expires), _aware(r.created_at),  # type: ignore[arg-type]
                     _aware(r.done_at), float(r.rank or 0.0))


def _available(q: Any, now: datetime) -> Any:
    c = q.c
    return sa.or_(c.status == "open", sa.and_(c.status == "claimed", c.lease_expires < now))


def enqueue(
    store: Store, submission_id: int, routes: Mapping[str, str], *, reasons: Mapping[str, str] | None = None,
    priority: int | None = None, rank: float = 0.0,
) -> list[QueueItem]:
    """Create the rater slots a submission's per-criterion routes need (see :func:`enqueue_in`)."""
    with store.write() as tx:
        enqueue_in(tx, submission_id, routes, reasons=reasons, priority=priority, rank=rank)
        rows = tx.conn.execute(sa.select(queue_items).where(queue_items.c.submission_id == submission_id)
                               .order_by(queue_items.c.id)).all()
    return [_rec(r) for r in rows]


def enqueue_in(
    tx: Tx, submission_id: int, routes: Mapping[str, str], *, reasons: Mapping[str, str] | None = None,
    priority: int | None = None, rank: float = 0.0,
) -> int:
    """Create a submission's rater slots inside an open write transaction. Idempotent per (submission, kind);
    returns how many slots were created.

    Criteria routed ``human`` or ``double`` go to the ``first`` slot, ``double`` ones also to ``second``,
    ``audit`` ones to an ``audit`` slot. A slot holding any double/audit criterion is blind as a whole:
    the assessor sees no machine score on that item at all, so nothing leaks between criteria. ``rank``
    orders items within one priority (lower first): the routing policy's queue order.
    """
    bad = {c: r for c, r in routes.items() if r not in ROUTE_SLOTS}
    if bad:
        raise InvalidRequest(f"routes must be among {list(ROUTE_SLOTS)}, found {bad}")
    slots: dict[str, list[str]] = {}
    for crit, route in routes.items():
        for kind, _blind in ROUTE_SLOTS[route]:
            slots.setdefault(kind, []).append(crit)
    if not slots:
        return 0
    reasons = reasons or {}
    conn = tx.conn
    if conn.execute(sa.select(t.submissions.c.id).where(t.submissions.c.id == submission_id)).first() is None:
        raise NotFound(f"submission {submission_id} does not exist")
    made = 0
    for kind, crits in slots.items():
        kinds = {routes[c] for c in crits}
        route = next(r for r in ("double", "audit", "human") if r in kinds)
        blind = bool(kinds & {"double", "audit"})
        prio = ROUTE_PRIORITY[route] if priority is None else priority
        why = "; ".join(f"{c}: {routes[c]}" + (f" ({reasons[c]})" if reasons.get(c) else "") for c in crits)
        have = conn.execute(sa.select(queue_items.c.id).where(
            queue_items.c.submission_id == submission_id, queue_items.c.kind == kind)).first()
        if have is None:
            conn.execute(queue_items.insert().values(
                submission_id=submission_id, criteria=crits, route=route, reason=why[:4000], kind=kind,
                blind=blind, priority=prio, rank=float(rank), status="open", created_at=_now()))
            made += 1
    return made


def claim(store: Store, assessor: str, lease_seconds: int) -> QueueItem | None:
    """Atomically take the next available item for ``assessor`` (None when nothing is left for them).

    Available: open, or claimed with an expired lease. Never offered: items this assessor skipped, and
    the other slot of a submission they already hold or scored (a double-scored item needs two people),
    and any slot of a submission they already rated.
    Order: priority (double > human > audit), then rank (the policy's queue order), then age.
    """
    now = _now()
    q, q2 = queue_items, queue_items.alias("sibling")
    pick = (
        sa.select(q.c.id)
        .where(
            _available(q, now),
            ~sa.exists(sa.select(q2.c.id).where(q2.c.submission_id == q.c.submission_id, q2.c.id != q.c.id,
                                                q2.c.holder == assessor)),
            ~sa.exists(sa.select(queue_skips.c.item_id).where(queue_skips.c.item_id == q.c.id,
                                                               queue_skips.c.assessor == assessor)),
            # one person rates a submission once: never a second slot (audit after double) to a past rater
            ~sa.exists(sa.select(t.human_scores.c.id).where(t.human_scores.c.submission_id == q.c.submission_id,
                                                            t.human_scores.c.assessor == assessor,
                                                            t.human_scores.c.kind.in_(RATER_KINDS))),
        )
        .order_by(q.c.priority.desc(), q.c.rank, q.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        q.update()
        .where(q.c.id == pick, _available(q, now))
        .values(status="claimed", holder=assessor, lease_token=secrets.token_hex(16),
                lease_expires=now + timedelta(seconds=lease_seconds))
        .returning(*q.c)
    )
    with store.write() as tx:
        row = tx.conn.execute(stmt).first()
    return _rec(row) if row is not None else None


def item(store: Store, item_id: int) -> QueueItem:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(queue_items).where(queue_items.c.id == item_id)).first()
    if row is None:
        raise NotFound(f"queue item {item_id} does not exist")
    return _rec(row)


def held_by(store: Store, assessor: str) -> list[QueueItem]:
    """Items ``assessor`` holds under a lease that has not expired, oldest claim first."""
    c = queue_items.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(queue_items).where(c.holder == assessor, c.status == "claimed",
                                                          c.lease_expires >= _now()).order_by(c.id)).all()
    return [_rec(r) for r in rows]


def _check_lease(row: Any, item_id: int, assessor: str, lease_token: str, now: datetime) -> None:
    if row is None:
        raise NotFound(f"queue item {item_id} does not exist")
    if row.status == "done":
        raise AlreadyScored(f"queue item {item_id} was already scored; expected an item in status 'claimed', "
                            "found 'done'")
    if row.status != "claimed" or row.holder != assessor or row.lease_token != lease_token:
        raise LeaseExpired(f"you no longer hold queue item {item_id} (expected your lease, found status "
                           f"{row.status!r} under another lease): claim again")
    if row.lease_expires < now:
        raise LeaseExpired(f"your lease on queue item {item_id} expired at {_iso(row.lease_expires)}; "
                           f"it is {_iso(now)} now: claim again")


def submit(
    store: Store, item_id: int, assessor: str, lease_token: str, scores: Mapping[str, tuple[int, str]],
) -> list[int]:
    """Record one score (with rationale) per criterion of a held item and close it; returns human score ids.

    All or nothing, in one store write transaction: lease check, every score's scale check, the human
    score rows and their hash-chained audit entries, and the item's status.
    """
    with store.write() as tx:  # the store's writer lock: audit chain + lease check in one transaction
        now = _now()
        row: Any = tx.conn.execute(
            sa.select(queue_items).where(queue_items.c.id == item_id).with_for_update()).first()
        _check_lease(row, item_id, assessor, lease_token, now)
        want, got = list(row.criteria), list(scores)
        missing, extra = [c for c in want if c not in scores], [c for c in got if c not in want]
        if missing or extra:
            raise InvalidRequest(f"queue item {item_id} needs a score for exactly {want}; "
                                 f"missing {missing}, not part of this item {extra}")
        ids = human_scores_in(store, tx, [
            HumanScoreIn(row.submission_id, crit, scores[crit][0], assessor, row.kind, bool(row.blind),
                         scores[crit][1], now) for crit in want])  # NotFound / ScoreOutOfScale / SameRater
        tx.conn.execute(queue_items.update().where(queue_items.c.id == item_id)
                        .values(status="done", done_at=now, lease_expires=None))
    return ids


def release(store: Store, item_id: int, assessor: str, lease_token: str, *, skip: bool = False) -> QueueItem:
    """Give a held item back to the queue; ``skip`` also means "never offer it to me again"."""
    with store.write() as tx:
        now = _now()
        row = tx.conn.execute(sa.select(queue_items).where(queue_items.c.id == item_id).with_for_update()).first()
        _check_lease(row, item_id, assessor, lease_token, now)
        tx.conn.execute(queue_items.update().where(queue_items.c.id == item_id)
                     .values(status="open", holder=None, lease_token=None, lease_expires=None))
        if skip:
            tx.conn.execute(queue_skips.insert().values(item_id=item_id, assessor=assessor, created_at=now))
        row = tx.conn.execute(sa.select(queue_items).where(queue_items.c.id == item_id)).one()
    return _rec(row)


def counts(store: Store, assessor: str | None = None) -> QueueCounts:
    """Open / in progress / done over the whole queue, and what ``assessor`` holds and has done."""
    c, now = queue_items.c, _now()
    open_ = sa.or_(c.status == "open", sa.and_(c.status == "claimed", c.lease_expires < now))
    held = sa.and_(c.status == "claimed", c.lease_expires >= now)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(
            sa.func.count().filter(open_), sa.func.count().filter(held), sa.func.count().filter(c.status == "done"),
            sa.func.count().filter(held, c.holder == assessor),
            sa.func.count().filter(c.status == "done", c.holder == assessor),
        ).select_from(queue_items)).one()
    return QueueCounts(*(int(x or 0) for x in row))


def position(store: Store, item_id: int) -> tuple[int, int]:
    """``(rank, total)`` of an item among the items not yet done, in claim order (1-based)."""
    it = item(store, item_id)
    c = queue_items.c
    with store.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).where(c.status != "done")).scalar_one()
        ahead = conn.execute(sa.select(sa.func.count()).where(
            c.status != "done",
            sa.or_(c.priority > it.priority,
                   sa.and_(c.priority == it.priority, c.rank < it.rank),
                   sa.and_(c.priority == it.priority, c.rank == it.rank, c.id < it.id)))).scalar_one()
    return int(ahead) + 1, int(total)


def count_for_submissions(store: Store, submission_ids: list[int]) -> int:
    """How many queue slots exist for these submissions (any status)."""
    n = 0
    with store.engine.connect() as conn:
        for i in range(0, len(submission_ids), 500):
            n += int(conn.execute(sa.select(sa.func.count()).where(
                queue_items.c.submission_id.in_(submission_ids[i:i + 500]))).scalar_one())
    return n


def items_for_submission(store: Store, submission_id: int) -> list[QueueItem]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(queue_items).where(queue_items.c.submission_id == submission_id)
                            .order_by(queue_items.c.id)).all()
    return [_rec(r) for r in rows]


__all__ = ["ROUTE_SLOTS", "QueueCounts", "QueueItem", "claim", "counts", "enqueue", "held_by", "item",
           "items_for_submission", "position", "release", "submit"]
