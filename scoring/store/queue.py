"""The assessors' work queue: items to human-score, claimed under a lease that expires.

An item is one submission and the criteria a person must score on it, for one rater slot (``kind``):
``human`` routes make one ``first`` item (machine score visible), ``double`` routes a ``first`` and a
``second`` item (both blind), ``audit`` routes one blind ``audit`` item; ``auto`` makes none.

Why claims cannot collide: a claim picks and takes its item inside ONE store write transaction, and the
store serialises writers (SQLite ``BEGIN IMMEDIATE``, PostgreSQL transaction-level advisory lock), so a
concurrent claim sees the first one's result; the ``UPDATE`` re-checks availability. The same
serialisation keeps :func:`eligible` (one person, one slot per submission) true under concurrent claims
by one person from two tabs. Each claim gets a fresh random lease token; submit, release and renew must present it, so an assessor whose lease expired
and was taken over gets a 409 instead of overwriting the new holder's work. Someone who never claimed the item
is refused as a reader of it is (:func:`not_held`, 403): there is no lease of theirs to call expired.

Why no human score is lost when submits race: the submit checks the lease, writes the human scores with
their audit entries and marks the item done in ONE store write transaction (the store's writer lock), so
of two racing submits exactly one records and the other gets :class:`AlreadyScored` / :class:`LeaseExpired`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from scoring.errors import AlreadyScored, Forbidden, InvalidRequest, LeaseExpired, NotFound, TooManyHeld
from scoring.store import tables as t
from scoring.store.clock import aware as _aware
from scoring.store.clock import iso as _iso
from scoring.store.clock import now as _now
from scoring.store.engine import Tx
from scoring.store.records import HumanScoreIn
from scoring.store.scores import human_scores_in
from scoring.store.service_tables import queue_claims, queue_items, queue_skips, submission_chains
from scoring.store.store import Store

ROUTE_SLOTS: dict[str, tuple[tuple[str, bool], ...]] = {
    # route -> (kind, blind) per rater slot
    "auto": (),
    "human": (("first", False),),
    "double": (("first", True), ("second", True)),
    "audit": (("audit", True),),
}
ROUTE_PRIORITY = {"double": 20, "human": 10, "audit": 0}
SELECTED_PRIORITY = 15  # chosen by `scoring select` to teach the model: above human items, below double-scored ones


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


def _slots_for(routes: Mapping[str, str], reasons: Mapping[str, str] | None,
               priority: int | None) -> dict[str, dict[str, Any]]:
    """The rater slots per-criterion routes need: kind -> the queue row's criteria, route, blind, priority
    and reason (see :func:`enqueue_in`)."""
    bad = {c: r for c, r in routes.items() if r not in ROUTE_SLOTS}
    if bad:
        raise InvalidRequest(f"routes must be among {list(ROUTE_SLOTS)}, found {bad}")
    by_kind: dict[str, list[str]] = {}
    for crit, route in routes.items():
        for kind, _blind in ROUTE_SLOTS[route]:
            by_kind.setdefault(kind, []).append(crit)
    reasons = reasons or {}
    out: dict[str, dict[str, Any]] = {}
    for kind, crits in by_kind.items():
        kinds = {routes[c] for c in crits}
        route = next(r for r in ("double", "audit", "human") if r in kinds)
        why = "; ".join(f"{c}: {routes[c]}" + (f" ({reasons[c]})" if reasons.get(c) else "") for c in crits)
        out[kind] = {"criteria": crits, "route": route, "blind": bool(kinds & {"double", "audit"}),
                     "priority": ROUTE_PRIORITY[route] if priority is None else priority, "reason": why[:4000]}
    return out


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
    slots = _slots_for(routes, reasons, priority)
    if not slots:
        return 0
    conn = tx.conn
    if conn.execute(sa.select(t.submissions.c.id).where(t.submissions.c.id == submission_id)).first() is None:
        raise NotFound(f"submission {submission_id} does not exist")
    made = 0
    for kind, slot in slots.items():
        have = conn.execute(sa.select(queue_items.c.id).where(
            queue_items.c.submission_id == submission_id, queue_items.c.kind == kind)).first()
        if have is None:
            conn.execute(queue_items.insert().values(
                submission_id=submission_id, kind=kind, rank=float(rank), status="open", created_at=_now(), **slot))
            made += 1
    return made


WITHDRAWN = "withdrawn"  # a slot a later routing policy no longer needs: kept, never offered, never counted as work


PEOPLE_KINDS = ("first", "second")  # slots the decision waits for (an audit slot checks a score that stands)


def standing(rows: list[Any], touched: bool) -> str:
    """Where a submission stands for a change of routes (``scoring policy apply``, a retrained model), from
    its queue ``rows`` and whether a person scored or adjudicated it (``touched``):

    ``started``   a person scored, adjudicated, holds or finished something: their work is kept as it is;
    ``selected``  `scoring select` queued it to teach the model: it is there to be scored whatever the routes say;
    ``settled``   no first or second slot open: its machine scores stand and its decision may back a credential
                  (an open audit slot checks an accepted score, and may be worked after the award);
    ``waiting``   a first or second slot is open and nobody has started: only these may take new routes.
    """
    if touched or any(r.status not in ("open", WITHDRAWN) for r in rows):
        return "started"
    if any(r.status == "open" and r.priority == SELECTED_PRIORITY for r in rows):
        return "selected"
    if not any(r.status == "open" and r.kind in PEOPLE_KINDS for r in rows):
        return "settled"
    return "waiting"


def standings(conn: Any, submission_ids: list[int]) -> dict[int, tuple[str, list[Any]]]:
    """:func:`standing` of each submission, with its queue rows (read in chunks on ``conn``)."""
    q, h, a = queue_items.c, t.human_scores.c, t.adjudications.c
    rows: dict[int, list[Any]] = {}
    touched: set[int] = set()
    for i in range(0, len(submission_ids), 500):
        ids = submission_ids[i:i + 500]
        for r in conn.execute(sa.select(queue_items).where(q.submission_id.in_(ids)).order_by(q.id)):
            rows.setdefault(int(r.submission_id), []).append(r)
        for col in (h.submission_id, a.submission_id):
            touched.update(int(x) for (x,) in conn.execute(sa.select(col).where(col.in_(ids)).distinct()))
    return {sid: (standing(rows.get(sid, []), sid in touched), rows.get(sid, [])) for sid in submission_ids}


def waiting_in(tx: Tx, submission_ids: list[int]) -> set[int]:
    """The submissions whose :func:`standing` is ``waiting``, read inside the write transaction that changes them."""
    return {sid for sid, (st, _rows) in standings(tx.conn, submission_ids).items() if st == "waiting"}


def slots_differ(rows: list[Any], routes: Mapping[str, str]) -> bool:
    """Whether a submission's open slots (``rows``: its queue rows) are not exactly the ones ``routes`` need."""
    need = {k: (sorted(v["criteria"]), v["route"]) for k, v in _slots_for(routes, None, None).items()}
    have = {r.kind: (sorted(r.criteria), r.route) for r in rows if r.status == "open"}
    return need != have


def slot_changes(rows: list[Any], routes: Mapping[str, str]) -> tuple[int, int]:
    """``(withdrawn, opened)``: what :func:`reroute_in` would do to a waiting submission's queue ``rows``
    (a ``--dry-run`` says it without writing): open slots no longer needed, and needed slots that are missing
    or withdrawn."""
    need = _slots_for(routes, None, None)
    have = {r.kind: r.status for r in rows}
    withdrawn = sum(1 for k, st in have.items() if k not in need and st == "open")
    opened = sum(1 for k in need if have.get(k, WITHDRAWN) == WITHDRAWN)
    return withdrawn, opened


def reroute_in(tx: Tx, submission_id: int, routes: Mapping[str, str], *, reasons: Mapping[str, str] | None = None,
               rank: float = 0.0, why: str = "") -> tuple[int, int]:
    """Make a WAITING submission's slots the ones ``routes`` need (``scoring policy apply``); returns
    ``(withdrawn, opened)``.

    The caller has checked, inside this transaction, that no slot of the submission is claimed or done. An
    open slot no longer needed is withdrawn (status ``withdrawn``, its row and reason kept, ``why`` added);
    a needed one is rewritten in place (criteria, route, blind, priority, rank) or reopened; a missing one is
    inserted. Rows are never deleted: the queue's history says which policy asked for which slot.
    """
    need = _slots_for(routes, reasons, None)
    q = queue_items.c
    rows = {r.kind: r for r in tx.conn.execute(sa.select(queue_items).where(q.submission_id == submission_id))}
    busy = sorted(k for k, r in rows.items() if r.status not in ("open", WITHDRAWN))
    if busy:
        raise InvalidRequest(f"submission {submission_id} has queue slots a person has taken ({busy}): not re-routed")
    changes = slot_changes(list(rows.values()), routes)
    for kind, row in rows.items():
        if kind not in need and row.status == "open":
            note = f"{row.reason}; withdrawn: {why}" if why else row.reason
            tx.conn.execute(queue_items.update().where(q.id == row.id).values(status=WITHDRAWN, reason=note[:4000]))
    for kind, slot in need.items():
        have = rows.get(kind)
        if have is None:
            tx.conn.execute(queue_items.insert().values(submission_id=submission_id, kind=kind, rank=float(rank),
                                                        status="open", created_at=_now(), **slot))
        else:
            tx.conn.execute(queue_items.update().where(q.id == have.id).values(status="open", rank=float(rank), **slot))
    return changes


class _ListHolds(FunctionElement[bool]):
    """``json_list_column`` holds the string ``value``: SQL, so a criterion filter can sit under a LIMIT.

    A JSON list of strings holds ``value`` exactly when its text holds ``value`` JSON-quoted (the quotes
    bound the element; an inner quote would be escaped). A plain substring search (``instr`` on SQLite,
    ``strpos`` on PostgreSQL) is used rather than ``LIKE``: SQLite's ``LIKE`` ignores ASCII case, and
    criterion ids are case-sensitive.
    """

    type = sa.Boolean()
    name = "list_holds"
    inherit_cache = True


@compiles(_ListHolds)
def _list_holds_pg(element: Any, compiler: Any, **kw: Any) -> str:
    col, needle = list(element.clauses)
    return f"(strpos(CAST({compiler.process(col, **kw)} AS TEXT), {compiler.process(needle, **kw)}) > 0)"


@compiles(_ListHolds, "sqlite")
def _list_holds_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    col, needle = list(element.clauses)
    return f"(instr({compiler.process(col, **kw)}, {compiler.process(needle, **kw)}) > 0)"


def holds_criterion(q: Any, criterion: str) -> Any:
    """SQL condition: queue row ``q`` asks for a score on ``criterion`` (its ``criteria`` JSON list holds it)."""
    return _ListHolds(q.c.criteria, sa.literal(json.dumps(criterion), sa.String))


@dataclass(frozen=True)
class QueueFilter:
    """What an assessor asks the queue for: items of one rubric, holding one criterion, of one route,
    waiting at least ``min_age_s`` seconds. Empty fields do not filter."""

    rubric_id: str | None = None
    criterion: str | None = None
    route: str | None = None
    min_age_s: int | None = None

    def where(self, q: Any, now: datetime) -> list[Any]:
        out: list[Any] = []
        if self.rubric_id:
            out.append(sa.exists(sa.select(t.submissions.c.id).where(t.submissions.c.id == q.c.submission_id,
                                                                     t.submissions.c.rubric_id == self.rubric_id)))
        if self.criterion:
            out.append(holds_criterion(q, self.criterion))
        if self.route:
            out.append(q.c.route == self.route)
        if self.min_age_s:
            out.append(q.c.created_at <= now - timedelta(seconds=int(self.min_age_s)))
        return out


def eligible(q: Any, assessor: str) -> list[Any]:
    """The ONE independence rule of the queue, as SQL conditions on queue row ``q``: never offer ``assessor``
    a slot of a submission they hold or held another slot of, skipped a slot of, rated (any slot kind) or
    adjudicated. Two scores of one submission by one person are not independent, so a person is given at
    most one rater slot (first, second or audit) of a submission. Nor a BLIND slot of a submission they ever
    claimed a slot of that showed the machine's scores (released or taken over since: ``queue_claims``
    remembers), as a later policy may turn that slot blind or add a blind one: their rating would not be
    blind. Nor a BLIND slot of one attempt of a resubmission chain (metadata ``revises``) to a person who
    claimed, rated or adjudicated another attempt of it: they know how the other attempt was judged. Used by
    :func:`claim`, :func:`available` and :func:`count_available`, so the list an assessor sees is exactly
    what a claim would give them."""
    q2 = queue_items.alias("sibling")
    sk, k2 = queue_skips, queue_items.alias("skipped")
    h, a, seen = t.human_scores.c, t.adjudications.c, queue_claims.c
    return [
        ~sa.exists(sa.select(q2.c.id).where(q2.c.submission_id == q.c.submission_id, q2.c.id != q.c.id,
                                            q2.c.holder == assessor)),
        sa.or_(q.c.blind == sa.false(), ~sa.exists(sa.select(seen.id).where(
            seen.submission_id == q.c.submission_id, seen.assessor == assessor, seen.blind == sa.false()))),
        sa.or_(q.c.blind == sa.false(), ~_saw_another_attempt(q.c.submission_id, assessor)),
        ~sa.exists(sa.select(sk.c.item_id).join(k2, k2.c.id == sk.c.item_id).where(
            k2.c.submission_id == q.c.submission_id, sk.c.assessor == assessor)),
        ~sa.exists(sa.select(h.id).where(h.submission_id == q.c.submission_id, h.assessor == assessor)),
        ~sa.exists(sa.select(a.id).where(a.submission_id == q.c.submission_id, a.adjudicator == assessor)),
    ]


def _saw_another_attempt(submission_id: Any, assessor: str) -> Any:
    """SQL: ``assessor`` claimed a slot of, rated or adjudicated another attempt of this submission's chain.

    The chain's attempts are its first attempt and every ``submission_chains`` row naming it, found by index,
    so a submission in no chain costs a few index lookups and matches nothing. (Written as conditions, not a
    derived table: a subquery in FROM would not see the outer queue row.)"""
    mine = submission_chains.alias("chain_of_slot")
    root = sa.func.coalesce(sa.select(mine.c.root_id).where(mine.c.submission_id == submission_id)
                            .correlate_except(mine).scalar_subquery(), submission_id)
    ch = submission_chains.alias("chain_members")

    def another_attempt(sid: Any) -> Any:
        members = sa.select(ch.c.submission_id).where(ch.c.root_id == root).correlate_except(ch, mine)
        return sa.and_(sid != submission_id, sa.or_(sid == root, sid.in_(members)))

    qc, h, a = queue_claims.c, t.human_scores.c, t.adjudications.c
    return sa.or_(
        sa.exists(sa.select(qc.id).where(qc.assessor == assessor, another_attempt(qc.submission_id))),
        sa.exists(sa.select(h.id).where(h.assessor == assessor, another_attempt(h.submission_id))),
        sa.exists(sa.select(a.id).where(a.adjudicator == assessor, another_attempt(a.submission_id))),
    )


def _claim_order(q: Any) -> list[Any]:
    return [q.c.priority.desc(), q.c.rank, q.c.id]


def claim(store: Store, assessor: str, lease_seconds: int, *, where: QueueFilter | None = None,
          item_id: int | None = None, max_held: int | None = None) -> QueueItem | None:
    """Atomically take the next available item for ``assessor`` (None when nothing is left for them).

    Available: open, or claimed with an expired lease, and :func:`eligible` for this assessor (one person
    never gets two slots of one submission). ``where`` narrows to a rubric, route or age, ``item_id`` to one
    item (the queue list's "claim this one"); every filter, ``where.criterion`` included, is SQL, so the
    pick is one ``LIMIT 1`` query inside the writer lock.
    Order: priority (double > human > audit), then rank (the policy's queue order), then age.
    Concurrent claims are serialised by the store's writer lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
    advisory lock) and re-check availability, so one item never goes to two people and one person never
    gets two slots of a submission even from two tabs at once. ``max_held``: refuse (:class:`TooManyHeld`) while
    the assessor holds that many items under live leases, counted inside the same transaction.
    """
    q = queue_items
    with store.write() as tx:
        now = _now()
        if max_held is not None:
            held = tx.conn.execute(sa.select(q.c.id).where(q.c.holder == assessor, q.c.status == "claimed",
                                                           q.c.lease_expires >= now).order_by(q.c.id)).scalars().all()
            if len(held) >= max_held:
                raise TooManyHeld(f"{assessor!r} holds {len(held)} queue item(s) {list(held)[:10]}, the most one person "
                                  f"may hold at once ({max_held}): submit or release one first")
        conds = [_available(q, now), *eligible(q, assessor), *(where.where(q, now) if where else [])]
        if item_id is not None:
            conds.append(q.c.id == item_id)
        pick = tx.conn.execute(sa.select(q.c.id).where(*conds).order_by(*_claim_order(q)).limit(1)).scalar()
        if pick is None:
            return None
        row = tx.conn.execute(
            q.update().where(q.c.id == pick, _available(q, now))
            .values(status="claimed", holder=assessor, lease_token=secrets.token_hex(16),
                    lease_expires=now + timedelta(seconds=lease_seconds))
            .returning(*q.c)).first()
        if row is not None:
            tx.conn.execute(queue_claims.insert().values(item_id=row.id, submission_id=row.submission_id,
                                                         assessor=assessor, blind=bool(row.blind), claimed_at=now))
    return _rec(row) if row is not None else None


def available(store: Store, assessor: str, where: QueueFilter | None = None, limit: int = 200) -> list[QueueItem]:
    """The first ``limit`` items ``assessor`` could claim now, in claim order (position 1 is what the next
    claim gives)."""
    q, now = queue_items, _now()
    sel = sa.select(q).where(_available(q, now), *eligible(q, assessor), *(where.where(q, now) if where else [])
                             ).order_by(*_claim_order(q)).limit(limit)
    with store.engine.connect() as conn:
        return [_rec(r) for r in conn.execute(sel)]


def count_available(store: Store, assessor: str) -> int:
    """How many items ``assessor`` could claim now."""
    q, now = queue_items, _now()
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(q).where(
            _available(q, now), *eligible(q, assessor))).scalar_one())


def renew(store: Store, item_id: int, assessor: str, lease_token: str, lease_seconds: int) -> QueueItem:
    """Extend a lease the assessor holds under ``lease_token`` (the page calls this while they work).

    Only the holder's own token extends a lease, and the token stays: a renewal never claims an open item
    (claims go through :func:`claim`, in queue order) nor mints a new token for a stale one (another tab
    claimed the item again), which would silently cut off the tab that holds the current token. See
    :func:`reclaim` for what is refused, and how.
    """
    return reclaim(store, item_id, assessor, lease_token, lease_seconds)


def reclaim(store: Store, item_id: int, assessor: str, lease_token: str, lease_seconds: int) -> QueueItem:
    """Give ``assessor`` a fresh lease on an item they hold under ``lease_token``, expired or not (a reload
    or a submit after a break: nobody took the item over meanwhile, so their work is not thrown away).

    The token is the proof of the claim, so it stays. Refused with :class:`LeaseExpired`, in words: held
    by another person under a live lease (saying who), taken over after the lease expired, given back to
    the queue, or held by the same person under a newer token (another tab or window claimed it again).
    Scored: :class:`AlreadyScored`. An item ``assessor`` never claimed: :class:`Forbidden` (:func:`not_held`).
    """
    q = queue_items
    with store.write() as tx:
        now = _now()
        row: Any = tx.conn.execute(sa.select(q).where(q.c.id == item_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"queue item {item_id} does not exist")
        if not _ever_held(tx.conn, row, assessor):
            raise not_held(item_id, assessor)
        if row.status == "done":
            by = "by you (in another tab or window?)" if row.holder == assessor else "by another assessor"
            raise AlreadyScored(f"queue item {item_id} was already scored {by}; nothing was recorded from you")
        live = row.lease_expires is not None and row.lease_expires >= now
        if row.status != "claimed":
            raise LeaseExpired(f"you do not hold queue item {item_id}: it was given back to the queue; "
                               "claim it from the queue list to work on it")
        if row.holder != assessor:
            if live:
                raise LeaseExpired(f"queue item {item_id} is now held by {row.holder} (their lease runs until "
                                   f"{row.lease_expires:%H:%M:%S} UTC); nothing of yours was recorded")
            raise LeaseExpired(f"you no longer hold queue item {item_id}: another assessor took it over after "
                               "your lease expired; claim it again from the queue list")
        if row.lease_token != lease_token:
            raise LeaseExpired(f"this page's lease on queue item {item_id} is out of date: you claimed the item "
                               "again in another tab or window; reload the item to work under the current lease")
        tx.conn.execute(q.update().where(q.c.id == item_id)
                        .values(lease_expires=now + timedelta(seconds=lease_seconds)))
        row = tx.conn.execute(sa.select(q).where(q.c.id == item_id)).one()
    return _rec(row)


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


def not_held(item_id: int, assessor: str) -> Forbidden:
    """What a person is told about a queue item that is not theirs: reading it, or submitting, releasing or
    renewing one they never claimed (the same words everywhere; nothing about who holds it)."""
    return Forbidden(f"queue item {item_id} is not held by {assessor!r}; assessors see only items they claimed")


def _ever_held(conn: Any, row: Any, assessor: str) -> bool:
    """Whether ``assessor`` holds or ever claimed queue row ``row`` (``queue_claims`` keeps every claim, also
    after a release or a takeover). Someone who never did is refused with :func:`not_held` (403), not told
    their lease expired (409): they never had one."""
    if row.holder == assessor:
        return True
    qc = queue_claims.c
    return conn.execute(sa.select(sa.literal(1)).where(
        qc.submission_id == row.submission_id, qc.assessor == assessor, qc.item_id == row.id).limit(1)).first() is not None


def check_lease(store: Store, item_id: int, assessor: str, lease_token: str) -> None:
    """Raise what a submit or release of the item by ``assessor`` under ``lease_token`` would be refused with
    now (:class:`NotFound`, :class:`Forbidden`, :class:`AlreadyScored`, :class:`LeaseExpired`), before the
    request's content is looked at: a wrong token or someone else's item is said as such, never hidden behind
    a complaint about the scores. Read only; :func:`submit` checks again inside its write transaction."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(queue_items).where(queue_items.c.id == item_id)).first()
        _check_lease(conn, row, item_id, assessor, lease_token, _now())


def _check_lease(conn: Any, row: Any, item_id: int, assessor: str, lease_token: str, now: datetime) -> None:
    if row is None:
        raise NotFound(f"queue item {item_id} does not exist")
    if not _ever_held(conn, row, assessor):
        raise not_held(item_id, assessor)
    if row.status == "done":
        raise AlreadyScored(f"queue item {item_id} was already scored; expected an item in status 'claimed', "
                            "found 'done'")
    if row.status != "claimed":
        raise LeaseExpired(f"you no longer hold queue item {item_id}: it was given back to the queue (status "
                           f"{row.status!r}); claim it from the queue to work on it")
    if row.holder != assessor:
        raise LeaseExpired(f"you no longer hold queue item {item_id}: another assessor holds it now")
    if row.lease_token != lease_token:
        raise LeaseExpired(f"the lease_token does not match your lease on queue item {item_id} (claimed again in "
                           "another tab or window?): use the token of your latest claim")
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
        _check_lease(tx.conn, row, item_id, assessor, lease_token, now)
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


def close_filled_in(tx: Tx, submission_ids: list[int]) -> int:
    """Settle the open slots (or slots whose lease expired) of these submissions against the human scores
    they now hold, e.g. scores imported from a spreadsheet after the backlog was queued: nobody should be
    asked for a rating that exists. A slot whose every criterion holds a score of the slot's kind is marked
    done; a slot holding some of them keeps only the criteria still to rate. A slot under a live lease stays
    as it is (its holder is working on it). Returns how many slots were closed."""
    if not submission_ids:
        return 0
    h, q, now = t.human_scores.c, queue_items.c, _now()
    rated: dict[tuple[int, str], dict[str, str]] = {}  # (submission, kind) -> criterion -> assessor
    for chunk in range(0, len(submission_ids), 500):
        ids = submission_ids[chunk:chunk + 500]
        for r in tx.conn.execute(sa.select(h.submission_id, h.kind, h.criterion, h.assessor)
                                 .where(h.submission_id.in_(ids)).order_by(h.id)):
            rated.setdefault((r.submission_id, r.kind), {})[r.criterion] = r.assessor
    closed = 0
    for chunk in range(0, len(submission_ids), 500):
        ids = submission_ids[chunk:chunk + 500]
        rows = tx.conn.execute(sa.select(queue_items).where(q.submission_id.in_(ids), _available(queue_items, now)))
        for row in rows.all():
            have = rated.get((row.submission_id, row.kind), {})
            left = [c for c in row.criteria if c not in have]
            if left and len(left) < len(row.criteria):  # the rest still needs this person: ask only for it
                tx.conn.execute(queue_items.update().where(q.id == row.id).values(criteria=left))
                continue
            if not left:
                who = sorted({have[c] for c in row.criteria})
                tx.conn.execute(queue_items.update().where(q.id == row.id).values(
                    status="done", holder=who[0] if len(who) == 1 else ", ".join(who)[:200], lease_token=None,
                    lease_expires=None, done_at=now))
                closed += 1
    return closed


def release(store: Store, item_id: int, assessor: str, lease_token: str, *, skip: bool = False) -> QueueItem:
    """Give a held item back to the queue; ``skip`` also means "never offer it to me again"."""
    with store.write() as tx:
        now = _now()
        row = tx.conn.execute(sa.select(queue_items).where(queue_items.c.id == item_id).with_for_update()).first()
        _check_lease(tx.conn, row, item_id, assessor, lease_token, now)
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
        waiting = c.status.in_(("open", "claimed"))
        total = conn.execute(sa.select(sa.func.count()).where(waiting)).scalar_one()
        ahead = conn.execute(sa.select(sa.func.count()).where(
            waiting,
            sa.or_(c.priority > it.priority,
                   sa.and_(c.priority == it.priority, c.rank < it.rank),
                   sa.and_(c.priority == it.priority, c.rank == it.rank, c.id < it.id)))).scalar_one()
    return int(ahead) + 1, int(total)


def count_for_submissions(store: Store, submission_ids: list[int], status: str | None = None) -> int:
    """How many queue slots these submissions have (open, claimed or done; withdrawn ones are not work);
    ``status``: only those with that status (``done``: scored by a person)."""
    n = 0
    cond = queue_items.c.status != WITHDRAWN if status is None else queue_items.c.status == status
    with store.engine.connect() as conn:
        for i in range(0, len(submission_ids), 500):
            n += int(conn.execute(sa.select(sa.func.count()).where(
                queue_items.c.submission_id.in_(submission_ids[i:i + 500]), cond)).scalar_one())
    return n


def items_for_submission(store: Store, submission_id: int) -> list[QueueItem]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(queue_items).where(queue_items.c.submission_id == submission_id)
                            .order_by(queue_items.c.id)).all()
    return [_rec(r) for r in rows]


__all__ = ["ROUTE_SLOTS", "QueueCounts", "QueueFilter", "QueueItem", "available", "claim", "count_available", "counts",
           "eligible", "enqueue", "held_by", "item", "items_for_submission", "position", "reclaim", "release", "renew",
           "reroute_in", "slot_changes", "slots_differ", "standing", "standings", "submission_labels", "submit", "waiting_in", "PEOPLE_KINDS", "WITHDRAWN"]


def submission_labels(store: Store, submission_ids: list[int]) -> dict[int, tuple[str, str, int]]:
    """``submission id -> (issuer's external id, rubric id, rubric version)`` in one read (the queue list)."""
    s = t.submissions.c
    out: dict[int, tuple[str, str, int]] = {}
    with store.engine.connect() as conn:
        for i in range(0, len(submission_ids), 500):
            for r in conn.execute(sa.select(s.id, s.external_id, s.rubric_id, s.rubric_version)
                                  .where(s.id.in_(submission_ids[i:i + 500]))):
                out[int(r.id)] = (str(r.external_id), str(r.rubric_id), int(r.rubric_version))
    return out
