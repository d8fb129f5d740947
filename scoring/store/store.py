"""The durable store: rubrics, submissions, machine and human scores, models, suspensions, audit log.

One class, :class:`Store`, used by the API service, the batch job and the CLI. SQLite (WAL, busy timeout)
is the embedded default; any PostgreSQL URL works with no code change. Opening a store upgrades its schema
to the newest Alembic revision shipped in ``scoring/store/migrations``.

Every write that records a score event (machine score, human score, adjudication, model promotion,
suspension and its lifting) appends a hash-chained entry to ``audit_log`` in the same transaction. Writers
are serialised (SQLite ``BEGIN IMMEDIATE``; PostgreSQL transaction-level advisory lock) so the chain never
forks and concurrent writers lose nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from rubrics.schema import Rubric, parse_rubric
from scoring.errors import (
    AlreadyAdjudicated,
    Conflict,
    DuplicateSubmission,
    InvalidScoreKind,
    NotFound,
    RubricImmutable,
    ScoreOutOfScale,
)
from scoring.store import tables as t
from scoring.store.audit import (
    GENESIS,
    AuditEntry,
    AuditVerification,
    canonical_json,
    entry_hash,
    verify_chain,
)

HUMAN_KINDS = ("first", "second", "audit", "adjudication")
_PG_LOCK_KEY = 0x5C0_41D17  # arbitrary constant: the store's writer lock on PostgreSQL
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


# ----------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RubricRecord:
    rubric_id: str
    version: int
    title: str
    fingerprint: str
    registered_at: datetime

    @property
    def key(self) -> str:
        return f"{self.rubric_id}@{self.version}"


@dataclass(frozen=True)
class SubmissionRecord:
    id: int
    rubric_id: str
    rubric_version: int
    external_id: str
    evidence: dict[str, Any]
    metadata: dict[str, Any]
    content_hash: str
    created_at: datetime


@dataclass(frozen=True)
class MachineScore:
    id: int
    submission_id: int
    criterion: str
    score: int
    probabilities: dict[str, float] | None
    prediction_set: list[int] | None
    route: str | None
    reason: str | None
    model_version: str | None
    policy_version: str | None
    rubric_id: str
    rubric_version: int
    created_at: datetime
    audit_seq: int


@dataclass(frozen=True)
class HumanScore:
    id: int
    submission_id: int
    criterion: str
    score: int
    assessor: str
    rationale: str
    blind: bool
    kind: str
    created_at: datetime
    audit_seq: int


@dataclass(frozen=True)
class HumanScoreIn:
    """One human score to record in bulk (see :meth:`Store.record_human_scores`)."""

    submission_id: int
    criterion: str
    score: int
    assessor: str
    kind: str = "first"
    blind: bool = True
    rationale: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class MachineScoreIn:
    """One machine score to record in bulk (see :meth:`Store.record_machine_scores`)."""

    submission_id: int
    criterion: str
    score: int
    probabilities: dict[str, float] | Sequence[float] | None = None
    prediction_set: Sequence[int] | None = None
    route: str | None = None
    reason: str | None = None
    model_version: str | None = None
    policy_version: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Adjudication:
    id: int
    submission_id: int
    criterion: str
    score: int
    adjudicator: str
    rationale: str
    human_score_ids: list[int]
    machine_score_id: int | None
    created_at: datetime
    audit_seq: int


@dataclass(frozen=True)
class ModelRecord:
    version: str
    rubric_id: str | None
    path: str
    card: dict[str, Any]
    status: str
    registered_at: datetime
    promoted_at: datetime | None


@dataclass(frozen=True)
class Suspension:
    id: int
    rubric_id: str
    criterion: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    suspended_at: datetime | None = None
    lifted_at: datetime | None = None
    lifted_by: str | None = None

    @property
    def active(self) -> bool:
        return self.lifted_at is None


# ----------------------------------------------------------------------------------------------- helpers


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(tzinfo=None, microsecond=(now.microsecond // 1000) * 1000)


def _to_db_time(ts: datetime | None) -> datetime:
    """Store naive UTC with millisecond precision (identical on SQLite and PostgreSQL)."""
    if ts is None:
        return _now()
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.replace(microsecond=(ts.microsecond // 1000) * 1000)


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    if isinstance(ts, str):  # pragma: no cover - defensive, SQLAlchemy converts
        ts = datetime.fromisoformat(ts)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _iso(ts: datetime) -> str:
    return ts.replace(tzinfo=UTC).isoformat(timespec="milliseconds")


def content_hash(evidence: dict[str, Any], metadata: dict[str, Any]) -> str:
    """What makes two submissions "the same": their evidence and metadata, canonically serialised."""
    return hashlib.sha256(canonical_json({"evidence": evidence, "metadata": metadata}).encode()).hexdigest()


def _is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, busy_timeout_ms: int = 30_000) -> Engine:
    """An engine configured for the store: SQLite gets WAL, a busy timeout, foreign keys and
    ``BEGIN IMMEDIATE`` for writing connections (so two writers queue instead of failing mid-way)."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("store_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def upgrade_schema(engine: Engine) -> None:
    """Apply every shipped migration up to head, serialised against other processes doing the same."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect().execution_options(store_write=True) as conn:
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        except sa.exc.DBAPIError:
            return None


# ------------------------------------------------------------------------------------------------- store


class Store:
    """The store's Python API. ``Store(url)`` opens (creating and migrating as needed) the database.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL; defaults to ``get_settings().resolved_database_url()`` (SQLite under ``.scoring/``).
    """

    def __init__(self, url: str | None = None, *, migrate: bool = True):
        if url is None:
            from scoring.settings import get_settings

            url = get_settings().resolved_database_url()
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            upgrade_schema(self.engine)
        self._rubric_cache: dict[tuple[str, int], Rubric] = {}

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -------------------------------------------------------------------------------- transactions

    @contextmanager
    def _write(self) -> Iterator[_Tx]:
        with self.engine.connect().execution_options(store_write=True) as conn:
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                yield _Tx(conn)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    # ------------------------------------------------------------------------------------- rubrics

    def register_rubric(self, rubric: Rubric) -> RubricRecord:
        """Store a rubric version. Idempotent for the same content; a different body under the same
        id+version raises :class:`RubricImmutable` (publish a new version instead)."""
        fp = rubric.fingerprint()
        with self._write() as tx:
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
        self._rubric_cache[(rubric.id, rubric.version)] = rubric
        return RubricRecord(rubric.id, rubric.version, rubric.title, fp, _aware(now))  # type: ignore[arg-type]

    def rubric(self, rubric_id: str, version: int | None = None) -> Rubric:
        """A registered rubric (the newest version when ``version`` is None)."""
        if version is not None and (rubric_id, version) in self._rubric_cache:
            return self._rubric_cache[(rubric_id, version)]
        q = sa.select(t.rubrics).where(t.rubrics.c.rubric_id == rubric_id)
        q = q.where(t.rubrics.c.version == version) if version is not None else q.order_by(t.rubrics.c.version.desc())
        with self._read() as conn:
            row = conn.execute(q.limit(1)).first()
        if row is None:
            what = f"{rubric_id}@{version}" if version is not None else rubric_id
            raise NotFound(f"rubric {what} is not registered in the store")
        rub = parse_rubric(json.loads(row.body), f"store:{row.rubric_id}@{row.version}")
        self._rubric_cache[(row.rubric_id, row.version)] = rub
        return rub

    def rubrics(self) -> list[RubricRecord]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.rubrics).order_by(t.rubrics.c.rubric_id, t.rubrics.c.version)).all()
        return [_rubric_rec(r) for r in rows]

    # --------------------------------------------------------------------------------- submissions

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
        self.rubric(rubric_id, rubric_version)  # NotFound if unregistered
        out: list[SubmissionRecord] = []
        with self._write() as tx:
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
                existing[ext] = None  # reserve within the batch
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
        return out

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

    def submissions(self, rubric_id: str | None = None) -> list[SubmissionRecord]:
        q = sa.select(t.submissions).order_by(t.submissions.c.id)
        if rubric_id is not None:
            q = q.where(t.submissions.c.rubric_id == rubric_id)
        with self._read() as conn:
            return [_sub_rec(r) for r in conn.execute(q)]

    # ------------------------------------------------------------------------------------- scores

    def _check_score(self, conn: Connection, submission_id: int, criterion: str, score: int) -> Any:
        sub = conn.execute(sa.select(t.submissions).where(t.submissions.c.id == submission_id)).first()
        if sub is None:
            raise NotFound(f"submission {submission_id} does not exist")
        rub = self.rubric(sub.rubric_id, sub.rubric_version)
        try:
            crit = rub.criterion(criterion)
        except KeyError:
            raise NotFound(
                f"rubric {rub.key} has no criterion {criterion!r}; expected one of {[c.id for c in rub.criteria]}"
            ) from None
        if isinstance(score, bool) or int(score) != score or int(score) not in crit.scores:
            raise ScoreOutOfScale(
                f"score {score!r} is not on the scale of {rub.key} criterion {criterion!r}: expected one of {crit.scores}"
            )
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
        ids: list[int] = []
        with self._write() as tx:
            subs: dict[int, Any] = {}
            for it in items:
                if it.submission_id not in subs:
                    subs[it.submission_id] = self._check_score(tx.conn, it.submission_id, it.criterion, it.score)
                sub = subs[it.submission_id]
                rub = self.rubric(sub.rubric_id, sub.rubric_version)
                try:
                    crit = rub.criterion(it.criterion)
                except KeyError:
                    raise NotFound(f"rubric {rub.key} has no criterion {it.criterion!r}") from None
                if isinstance(it.score, bool) or int(it.score) != it.score or int(it.score) not in crit.scores:
                    raise ScoreOutOfScale(f"score {it.score!r} is not on the scale of {rub.key} criterion "
                                          f"{it.criterion!r}: expected one of {crit.scores}")
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
                    "probabilities": probs, "reason": it.reason, "at": _iso(now),
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
        items = list(items)
        ids: list[int] = []
        with self._write() as tx:
            subs: dict[int, Any] = {}
            for it in items:
                if it.kind not in HUMAN_KINDS:
                    raise InvalidScoreKind(f"human score kind must be one of {list(HUMAN_KINDS)}, found {it.kind!r}")
                if it.submission_id not in subs:
                    subs[it.submission_id] = self._check_score(tx.conn, it.submission_id, it.criterion, it.score)
                else:
                    rub = self.rubric(subs[it.submission_id].rubric_id, subs[it.submission_id].rubric_version)
                    try:
                        scale = rub.criterion(it.criterion).scores
                    except KeyError:
                        raise NotFound(f"rubric {rub.key} has no criterion {it.criterion!r}") from None
                    if isinstance(it.score, bool) or int(it.score) != it.score or int(it.score) not in scale:
                        raise ScoreOutOfScale(
                            f"score {it.score!r} is not on the scale of {rub.key} criterion {it.criterion!r}: "
                            f"expected one of {scale}"
                        )
                now = _to_db_time(it.created_at)
                seq = tx.append("human_score", {
                    "submission_id": it.submission_id, "criterion": it.criterion, "score": int(it.score),
                    "assessor": it.assessor, "kind": it.kind, "blind": bool(it.blind), "at": _iso(now),
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
            self._check_score(tx.conn, submission_id, criterion, score)
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
                "at": _iso(now),
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

    # ------------------------------------------------------------------------------------- models

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
                self._lift(tx, row.rubric_id, None, f"model:{version}", now)
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

    # -------------------------------------------------------------------------------- suspensions

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
            return self._lift(tx, rubric_id, criterion, by, _now())

    def _lift(self, tx: _Tx, rubric_id: str, criterion: str | None, by: str, now: datetime) -> int:
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

    # ---------------------------------------------------------------------------------- audit log

    def audit_entries(self, *, since_seq: int = 0) -> Iterator[AuditEntry]:
        with self._read() as conn:
            q = sa.select(t.audit_log).where(t.audit_log.c.seq > since_seq).order_by(t.audit_log.c.seq)
            for r in conn.execute(q):
                yield AuditEntry(r.seq, r.event, json.loads(r.payload), r.prev_hash, r.entry_hash)

    def verify_audit(self) -> AuditVerification:
        """Check the whole hash chain, then that every score row still matches the entry that logged it and
        that no row points past the end of the log (which catches deletion of the last entries)."""
        a = t.audit_log.c
        with self._read() as conn:
            rows = conn.execute(sa.select(a.seq, a.event, a.payload, a.prev_hash, a.entry_hash).order_by(a.seq))
            res = verify_chain(tuple(r) for r in rows)
            if not res.ok:
                return res
            last = res.last_seq or 0
            payloads: dict[int, dict[str, Any]] = {}
            for table, fields in ((t.machine_scores, ("submission_id", "criterion", "score")),
                                  (t.human_scores, ("submission_id", "criterion", "score", "kind", "assessor")),
                                  (t.adjudications, ("submission_id", "criterion", "score"))):
                for row in conn.execute(sa.select(table).order_by(table.c.audit_seq)):
                    if row.audit_seq > last:
                        return _bad(res, last + 1, f"{table.name} row {row.id} was logged as entry {row.audit_seq} "
                                                   f"but the log ends at {last}: trailing entries deleted")
                    if row.audit_seq not in payloads:
                        p = conn.execute(sa.select(a.payload).where(a.seq == row.audit_seq)).scalar_one()
                        payloads[row.audit_seq] = json.loads(p)
                    p = payloads.pop(row.audit_seq)
                    for f in fields:
                        if p.get(f) != getattr(row, f):
                            return _bad(res, row.audit_seq,
                                        f"{table.name} row {row.id} has {f}={getattr(row, f)!r} but audit entry "
                                        f"{row.audit_seq} logged {p.get(f)!r}: the score row was edited")
        return res


def _bad(res: AuditVerification, seq: int, problem: str) -> AuditVerification:
    return AuditVerification(False, res.entries_checked, res.last_seq, res.head_hash, seq, problem)


class _Tx:
    """A write transaction that can append audit entries; the chain tail is read once, then kept."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._tail: tuple[int, str] | None = None

    def append(self, event_name: str, payload: dict[str, Any]) -> int:
        if self._tail is None:
            row = self.conn.execute(
                sa.select(t.audit_log.c.seq, t.audit_log.c.entry_hash).order_by(t.audit_log.c.seq.desc()).limit(1)
            ).first()
            self._tail = (row.seq, row.entry_hash) if row is not None else (0, GENESIS)
        seq, prev = self._tail[0] + 1, self._tail[1]
        body = canonical_json(payload)
        h = entry_hash(seq, event_name, body, prev)
        self.conn.execute(t.audit_log.insert().values(seq=seq, event=event_name, payload=body, prev_hash=prev,
                                                      entry_hash=h))
        self._tail = (seq, h)
        return seq


def _pk(res: Any) -> int:
    key = res.inserted_primary_key
    if key is None:  # pragma: no cover - every table has an integer primary key
        raise RuntimeError("insert returned no primary key")
    return int(key[0])


def _chunks(xs: Sequence[str], n: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


def _rubric_rec(r: Any) -> RubricRecord:
    return RubricRecord(r.rubric_id, r.version, r.title, r.fingerprint, _aware(r.registered_at))  # type: ignore[arg-type]


def _sub_rec(r: Any) -> SubmissionRecord:
    return SubmissionRecord(r.id, r.rubric_id, r.rubric_version, r.external_id, r.evidence, r.meta, r.content_hash,
                            _aware(r.created_at))  # type: ignore[arg-type]


def _machine_rec(r: Any) -> MachineScore:
    return MachineScore(r.id, r.submission_id, r.criterion, r.score, r.probabilities, r.prediction_set, r.route,
                        r.reason, r.model_version, r.policy_version, r.rubric_id, r.rubric_version,
                        _aware(r.created_at), r.audit_seq)  # type: ignore[arg-type]


def _human_rec(r: Any) -> HumanScore:
    return HumanScore(r.id, r.submission_id, r.criterion, r.score, r.assessor, r.rationale, bool(r.blind), r.kind,
                      _aware(r.created_at), r.audit_seq)  # type: ignore[arg-type]


def _adj_rec(r: Any) -> Adjudication:
    return Adjudication(r.id, r.submission_id, r.criterion, r.score, r.adjudicator, r.rationale,
                        list(r.human_score_ids), r.machine_score_id, _aware(r.created_at), r.audit_seq)  # type: ignore[arg-type]


def _model_rec(r: Any) -> ModelRecord:
    return ModelRecord(r.version, r.rubric_id, r.path, r.card, r.status, _aware(r.registered_at),  # type: ignore[arg-type]
                       _aware(r.promoted_at))


def _susp_rec(r: Any) -> Suspension:
    return Suspension(r.id, r.rubric_id, r.criterion, r.reason, r.details, _aware(r.suspended_at),
                      _aware(r.lifted_at), r.lifted_by)
