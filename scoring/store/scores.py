"""Scores: machine scores, human scores and adjudications, each appended with its audit entry."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from scoring.errors import AlreadyAdjudicated, InvalidScoreKind, NotFound, SameRater, ScoreOutOfScale
from scoring.store import tables as t
from scoring.store.clock import iso as _iso
from scoring.store.clock import to_db_time as _to_db_time
from scoring.store.engine import StoreBase, Tx
from scoring.store.engine import pk as _pk
from scoring.store.records import (  # noqa: F401
    HUMAN_KINDS,
    Adjudication,
    HumanScore,
    HumanScoreIn,
    MachineScore,
    MachineScoreIn,
    _adj_rec,
    _human_rec,
    _machine_rec,
)
from scoring.store.submissions import evidence_pin


def check_level(rubric: Any, criterion: str, score: Any) -> Any:
    """The one check that a score is a level of the criterion's scale (every door's writes come here);
    returns the criterion."""
    try:
        crit = rubric.criterion(criterion)
    except KeyError:
        raise NotFound(
            f"rubric {rubric.key} has no criterion {criterion!r}; expected one of {[c.id for c in rubric.criteria]}"
        ) from None
    whole = not isinstance(score, bool) and isinstance(score, numbers.Real) and float(score).is_integer()
    if not whole or int(float(score)) not in crit.scores:
        raise ScoreOutOfScale(
            f"score {score!r} is not on the scale of {rubric.key} criterion {criterion!r}: expected one of {crit.scores}"
        )
    return crit


class ScoresStore(StoreBase):
    def _check_score(self, conn: Connection, submission_id: int, criterion: str, score: int,
                     subs: dict[int, Any] | None = None) -> Any:
        """The submission row (read once per call site via ``subs``), after :func:`check_level`."""
        sub = subs.get(submission_id) if subs is not None else None
        if sub is None:
            sub = conn.execute(sa.select(t.submissions).where(t.submissions.c.id == submission_id)).first()
            if sub is None:
                raise NotFound(f"submission {submission_id} does not exist")
            if subs is not None:
                subs[submission_id] = sub
        check_level(self.rubric(sub.rubric_id, sub.rubric_version, conn=conn), criterion, score)
        return sub

    def record_machine_score(
        self,
        submission_id: int,
        criterion: str,
        score: int,
        *,
        probabilities: dict[str, float] | Sequence[float] | None = None,
        prediction_set: Sequence[int] | None = None,
        route: str | None = None,
        reason: str | None = None,
        model_version: str | None = None,
        policy_version: str | None = None,
        created_at: datetime | None = None,
    ) -> MachineScore:
        """Append one machine score (never updates an earlier one). ``probabilities`` maps level score -> p
        (a sequence is read in the criterion's ascending level order)."""
        ids = self.record_machine_scores([MachineScoreIn(
            submission_id, criterion, score, probabilities, prediction_set, route, reason, model_version,
            policy_version, created_at)])
        with self._read() as conn:
            row = conn.execute(sa.select(t.machine_scores).where(t.machine_scores.c.id == ids[0])).one()
        return _machine_rec(row)

    def record_machine_scores(self, items: Iterable[MachineScoreIn]) -> list[int]:
        """Record many machine scores in one transaction (all or nothing); returns their ids in order."""
        with self._write() as tx:
            return machine_scores_in(self, tx, items)

    def record_human_score(
        self,
        submission_id: int,
        criterion: str,
        score: int,
        *,
        assessor: str,
        kind: str = "first",
        blind: bool = True,
        rationale: str = "",
        created_at: datetime | None = None,
    ) -> HumanScore:
        """Append one human score. ``kind`` is first / second / audit / adjudication; ``blind`` says the
        assessor did not see the machine score (only blind audit scores feed the drift monitor)."""
        ids = self.record_human_scores(
            [HumanScoreIn(submission_id, criterion, score, assessor, kind, blind, rationale, created_at)]
        )
        with self._read() as conn:
            row = conn.execute(sa.select(t.human_scores).where(t.human_scores.c.id == ids[0])).one()
        return _human_rec(row)

    def record_human_scores(self, items: Iterable[HumanScoreIn]) -> list[int]:
        """Record many human scores in one transaction (all or nothing); returns their ids in order."""
        with self._write() as tx:
            return human_scores_in(self, tx, items)

    def record_adjudication(
        self,
        submission_id: int,
        criterion: str,
        score: int,
        *,
        adjudicator: str,
        rationale: str = "",
        human_score_ids: Sequence[int] = (),
        machine_score_id: int | None = None,
        created_at: datetime | None = None,
    ) -> Adjudication:
        """Record the resolved score of a disagreement, naming the scores it resolves.

        One resolved score per submission x criterion: a second raises :class:`AlreadyAdjudicated`. The check
        runs inside the write transaction, which every writer takes in turn (SQLite ``BEGIN IMMEDIATE``,
        PostgreSQL advisory lock), so two servers adjudicating the same pair at once cannot both succeed.
        """
        with self._write() as tx:
            sub = self._check_score(tx.conn, submission_id, criterion, score)
            earlier = tx.conn.execute(
                sa.select(t.adjudications)
                .where(t.adjudications.c.submission_id == submission_id, t.adjudications.c.criterion == criterion)
                .order_by(t.adjudications.c.id)
            ).first()
            if earlier is not None:
                raise AlreadyAdjudicated(
                    f"submission {submission_id} / {criterion!r} was already resolved to {earlier.score} by "
                    f"{earlier.adjudicator!r} (adjudication {earlier.id}); the score log is append-only, so a "
                    "second resolved score is refused"
                )
            now = _to_db_time(created_at)
            hids = [int(x) for x in human_score_ids]
            seq = tx.append("adjudication", {
                "submission_id": submission_id, "criterion": criterion, "score": int(score),
                "adjudicator": adjudicator, "human_score_ids": hids, "machine_score_id": machine_score_id,
                "at": _iso(now), **evidence_pin(sub),
            })
            res = tx.conn.execute(
                t.adjudications.insert().values(
                    submission_id=submission_id, criterion=criterion, score=int(score), adjudicator=adjudicator,
                    rationale=rationale, human_score_ids=hids, machine_score_id=machine_score_id, created_at=now,
                    audit_seq=seq,
                )
            )
            row = tx.conn.execute(
                sa.select(t.adjudications).where(t.adjudications.c.id == _pk(res))
            ).one()
        return _adj_rec(row)

    def machine_scores(
        self,
        *,
        rubric_id: str | None = None,
        rubric_version: int | None = None,
        criterion: str | None = None,
        model_version: str | None = None,
        submission_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[MachineScore]:
        """Machine scores in recording order, filtered; ``since`` inclusive, ``until`` exclusive."""
        c = t.machine_scores.c
        q = sa.select(t.machine_scores).order_by(c.id)
        for col, val in ((c.rubric_id, rubric_id), (c.rubric_version, rubric_version), (c.criterion, criterion),
                         (c.model_version, model_version), (c.submission_id, submission_id)):
            if val is not None:
                q = q.where(col == val)
        if since is not None:
            q = q.where(c.created_at >= _to_db_time(since))
        if until is not None:
            q = q.where(c.created_at < _to_db_time(until))
        with self._read() as conn:
            return [_machine_rec(r) for r in conn.execute(q)]

    def human_scores(
        self,
        *,
        rubric_id: str | None = None,
        rubric_version: int | None = None,
        criterion: str | None = None,
        kind: str | None = None,
        submission_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[HumanScore]:
        """Human scores in recording order, filtered; ``since`` inclusive, ``until`` exclusive."""
        h, s = t.human_scores.c, t.submissions.c
        q = sa.select(t.human_scores).join(t.submissions, s.id == h.submission_id).order_by(h.id)
        for col, val in ((s.rubric_id, rubric_id), (s.rubric_version, rubric_version), (h.criterion, criterion),
                         (h.kind, kind), (h.submission_id, submission_id)):
            if val is not None:
                q = q.where(col == val)
        if since is not None:
            q = q.where(h.created_at >= _to_db_time(since))
        if until is not None:
            q = q.where(h.created_at < _to_db_time(until))
        with self._read() as conn:
            return [_human_rec(r) for r in conn.execute(q)]

    def adjudications(self, *, submission_id: int | None = None) -> list[Adjudication]:
        q = sa.select(t.adjudications).order_by(t.adjudications.c.id)
        if submission_id is not None:
            q = q.where(t.adjudications.c.submission_id == submission_id)
        with self._read() as conn:
            return [_adj_rec(r) for r in conn.execute(q)]


def machine_scores_in(store: ScoresStore, tx: Tx, items: Iterable[MachineScoreIn]) -> list[int]:
    """Append machine scores with their audit entries inside an open write transaction (see
    :meth:`ScoresStore.record_machine_scores`); a use case composes this with other writes."""
    ids: list[int] = []
    subs: dict[int, Any] = {}
    for it in items:
        sub = store._check_score(tx.conn, it.submission_id, it.criterion, it.score, subs)
        crit = store.rubric(sub.rubric_id, sub.rubric_version, conn=tx.conn).criterion(it.criterion)
        probs: dict[str, float] | None = None
        if it.probabilities is not None:
            if isinstance(it.probabilities, dict):
                probs = {str(int(k)): float(v) for k, v in it.probabilities.items()}
            else:
                if len(it.probabilities) != len(crit.scores):
                    raise ScoreOutOfScale(
                        f"probabilities has {len(it.probabilities)} entries; criterion {it.criterion!r} "
                        f"has {len(crit.scores)} levels {crit.scores}"
                    )
                probs = {str(sc): float(p) for sc, p in zip(crit.scores, it.probabilities, strict=True)}
            bad = [k for k in probs if int(k) not in crit.scores]
            if bad:
                raise ScoreOutOfScale(f"probabilities name levels {bad} not on the scale {crit.scores}")
        pset = [int(x) for x in it.prediction_set] if it.prediction_set is not None else None
        now = _to_db_time(it.created_at)
        payload = {
            "submission_id": it.submission_id, "criterion": it.criterion, "score": int(it.score),
            "route": it.route, "model_version": it.model_version, "policy_version": it.policy_version,
            "rubric": f"{sub.rubric_id}@{sub.rubric_version}", "prediction_set": pset,
            "probabilities": probs, "reason": it.reason, "at": _iso(now), **evidence_pin(sub),
        }
        seq = tx.append("machine_score", payload)
        res = tx.conn.execute(
            t.machine_scores.insert().values(
                submission_id=it.submission_id, criterion=it.criterion, score=int(it.score),
                probabilities=probs, prediction_set=pset, route=it.route, reason=it.reason,
                model_version=it.model_version, policy_version=it.policy_version, rubric_id=sub.rubric_id,
                rubric_version=sub.rubric_version, created_at=now, audit_seq=seq,
            )
        )
        ids.append(int(_pk(res)))
    return ids


RATER_KINDS = ("first", "second", "audit")  # the scores that count as independent ratings


def human_scores_in(store: ScoresStore, tx: Tx, items: Iterable[HumanScoreIn]) -> list[int]:
    """Append human scores with their audit entries inside an open write transaction.

    One person rates a submission once, in one rater slot: a second first/second/audit score by the same
    assessor on the same criterion, or a score in another rater slot of the same submission (a ``second``
    or ``audit`` score by the ``first`` rater, even on another criterion), already stored or within
    ``items``, is refused with :class:`SameRater`. Two scores of one submission by one person are not
    independent and must never count as human-human agreement. Adjudications are exempt.
    """
    items = list(items)
    ids: list[int] = []
    subs: dict[int, Any] = {}
    rated: dict[int, set[tuple[str, str, str]]] = {}  # submission -> (assessor, kind, criterion) of ratings
    for it in items:
        if it.kind not in HUMAN_KINDS:
            raise InvalidScoreKind(f"human score kind must be one of {list(HUMAN_KINDS)}, found {it.kind!r}")
        sub = store._check_score(tx.conn, it.submission_id, it.criterion, it.score, subs)
        if it.kind in RATER_KINDS:
            named = repr(sub.external_id)  # the issuer's id: the store's row number means nothing outside it
            if it.submission_id not in rated:
                h = t.human_scores.c
                rated[it.submission_id] = {(r.assessor, r.kind, r.criterion) for r in tx.conn.execute(
                    sa.select(h.assessor, h.kind, h.criterion).where(
                        h.submission_id == it.submission_id, h.kind.in_(RATER_KINDS)))}
            mine = [(k, c) for a, k, c in rated[it.submission_id] if a == it.assessor]
            if any(c == it.criterion for _k, c in mine):
                raise SameRater(f"{it.assessor!r} already rated submission {named} on {it.criterion!r}; "
                                "a second rating must come from a different person")
            other = sorted({k for k, _c in mine if k != it.kind})
            if other:
                raise SameRater(f"{it.assessor!r} already rated submission {named} as its {other[0]} "
                                f"rater; a {it.kind} rating of the same submission must come from a different person")
            rated[it.submission_id].add((it.assessor, it.kind, it.criterion))
        now = _to_db_time(it.created_at)
        seq = tx.append("human_score", {
            "submission_id": it.submission_id, "criterion": it.criterion, "score": int(it.score),
            "assessor": it.assessor, "kind": it.kind, "blind": bool(it.blind), "at": _iso(now),
            **evidence_pin(sub),
        })
        res = tx.conn.execute(
            t.human_scores.insert().values(
                submission_id=it.submission_id, criterion=it.criterion, score=int(it.score),
                assessor=it.assessor, rationale=it.rationale, blind=bool(it.blind), kind=it.kind,
                created_at=now, audit_seq=seq,
            )
        )
        ids.append(int(_pk(res)))
    return ids
