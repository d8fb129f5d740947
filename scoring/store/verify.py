"""Reading and verifying the audit log: the chain, the signed checkpoints, the score rows it logged,
the automation suspensions it logged, and inclusion proofs for single entries.

Verification streams the log in batches (one pass, memory independent of its length) and cross-checks
each table with one joined, streamed query, so a million-entry log verifies in seconds, not hours.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rubrics.schema import body_fingerprint
from scoring.errors import AuditChainBroken, NotFound
from scoring.store import tables as t
from scoring.store.audit import (
    AuditEntry,
    AuditVerification,
    ChainScan,
    Finding,
    describe,
    payload_fault,
    rewritten,
    submission_name,
)
from scoring.store.canonical import CanonicalFormError
from scoring.store.credential_status import check_status_rows
from scoring.store.engine import StoreBase, read_canonical_form
from scoring.store.merkle import TreeReader, leaf_hash

BATCH = 20_000
SUSPENSION_EVENTS = frozenset({"automation_suspended", "automation_resumed"})
RUBRIC_EVENT = "rubric_registered"
# score tables, the event that logs their rows, and the row columns that entry's payload logs under the
# same name: every one is compared, because each decides something (route: whether the machine's score
# stands; blind: whether an audit feeds the drift monitor; model and policy versions: what an appeal traces)
LOGGED_ROWS = ((t.machine_scores, "machine_score",
                ("submission_id", "criterion", "score", "route", "model_version", "policy_version",
                 "prediction_set", "probabilities", "reason", "rubric")),
               (t.human_scores, "human_score", ("submission_id", "criterion", "score", "kind", "assessor", "blind")),
               (t.adjudications, "adjudication",
                ("submission_id", "criterion", "score", "adjudicator", "human_score_ids", "machine_score_id")),
               (t.decisions, "credential_decision",
                ("submission_id", "outcome", "basis", "levels", "p_earned", "model_version", "policy_version",
                 "reason", "rubric")))
DECISION_REASON_MAX = 4000  # decisions.reason keeps this much of the logged reason (decision_in)
# the event that logs each score table's rows: every such entry must still have its row
ROW_EVENTS = (("machine_score", t.machine_scores, "machine score"),
              ("human_score", t.human_scores, "human score"),
              ("adjudication", t.adjudications, "adjudication"),
              ("credential_decision", t.decisions, "credential decision"))
# the entries that pin the evidence they are about (see scoring.store.submissions.evidence_pin), and how a
# finding says what each did with it
PIN_EVENTS = {"machine_score": "scored it", "human_score": "scored it", "adjudication": "resolved a score of it",
              "credential_decision": "decided on it"}
PIN_CHUNK = 500  # submissions read per query while checking pins


@dataclass(frozen=True)
class InclusionProof:
    """Entry ``seq`` is leaf ``seq - 1`` of the tree of the first ``tree_size`` entries whose root is
    ``root``; ``path`` holds the sibling hashes (hex, bottom first) per RFC 9162 section 2.1.3."""

    entry: AuditEntry
    tree_size: int
    root: str
    path: list[str]


class AuditStore(StoreBase):
    def audit_entries(self, *, since_seq: int = 0, event: str | None = None) -> Iterator[AuditEntry]:
        """Entries in log order, after ``since_seq`` and (``event``) of one kind only."""
        with self._read() as conn:
            q = sa.select(t.audit_log).where(t.audit_log.c.seq > since_seq).order_by(t.audit_log.c.seq)
            if event is not None:
                q = q.where(t.audit_log.c.event == event)
            for part in _stream(conn, q):
                for r in part:
                    yield AuditEntry(r.seq, r.event, json.loads(r.payload), r.prev_hash, r.entry_hash)

    def audit_entries_naming(self, submission_id: int, events: Sequence[str]) -> list[AuditEntry]:
        """The entries of these kinds whose payload names ``submission_id``, in log order.

        Why not :meth:`audit_entries` per kind: one submission's entries are a handful among millions, and
        parsing every payload of the kinds that name submissions is most of the log. The database keeps
        only payloads whose text names the submission as the store writes it (``"submission_id":7,`` or
        ``...:7}``; with a space after the colon too), and each is then parsed and kept only when its
        ``submission_id`` is that submission (a text match inside some other field is not)."""
        a = t.audit_log.c
        said = [f'"submission_id":{space}{int(submission_id)}{end}' for space in ("", " ") for end in (",", "}")]
        q = (sa.select(t.audit_log).where(a.event.in_(sorted(set(events))),
                                          sa.or_(*[a.payload.contains(text, autoescape=True) for text in said]))
             .order_by(a.seq))
        with self._read() as conn:
            rows = conn.execute(q).all()
        entries = (AuditEntry(r.seq, r.event, json.loads(r.payload), r.prev_hash, r.entry_hash) for r in rows)
        return [e for e in entries if e.payload.get("submission_id") == submission_id]

    def audit_entry(self, seq: int) -> AuditEntry:
        with self._read() as conn:
            r = conn.execute(sa.select(t.audit_log).where(t.audit_log.c.seq == seq)).first()
            if r is None:
                raise NotFound(f"the audit log has no entry {seq}")
            form = read_canonical_form(conn)
        return AuditEntry(r.seq, r.event, form.loads(r.payload), r.prev_hash, r.entry_hash)

    def audit_size(self) -> int:
        """The highest sequence number (the log's length when it verifies)."""
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.audit_log.c.seq), 0))).scalar_one())

    def verify_audit(self, checkpoints: Sequence[Any] = (), *, keep_tiles: bool = False) -> AuditVerification:
        """Check the hash chain and, in the same pass, that the log still extends every signed checkpoint;
        then that every score row still matches the entry that logged it (and none points past the end of
        the log), that every submission a score or decision entry pinned still holds the evidence it pinned,
        that the suspensions table is what the logged suspensions and lifts say it is, and that every rubric's stored body still has the fingerprint logged when it was registered.

        ``keep_tiles`` stores the Merkle tiles the pass computed (the proof cache; ``scoring audit
        checkpoint`` does this after a clean pass)."""
        a = t.audit_log.c
        tiles: dict[int, bytes] = {}
        with self._read() as conn:
            try:
                form = read_canonical_form(conn)
            except CanonicalFormError as exc:
                return AuditVerification(False, 0, None, "", None, str(exc), kind="chain")
            scan = ChainScan(form, checkpoints, collect=SUSPENSION_EVENTS | {RUBRIC_EVENT},
                             on_tile=tiles.__setitem__ if keep_tiles else None)
            for part in _stream(conn, sa.select(a.seq, a.event, a.payload, a.prev_hash, a.entry_hash).order_by(a.seq)):
                if not scan.feed(part):
                    break
            res = scan.finish()
            if not res.ok:
                return res
            problem = (_check_rows(conn, res.last_seq or 0) or _check_logged_rows(conn) or _check_evidence(conn)
                       or _check_suspensions(conn, scan.collected) or _check_rubrics(conn, scan.collected)
                       or check_status_rows(conn))
        if problem is not None:
            return _bad(res, *problem)
        if keep_tiles and tiles:
            self.save_tiles(tiles)
        return res

    # ------------------------------------------------------------------------------ Merkle proofs

    def save_tiles(self, tiles: dict[int, bytes]) -> None:
        """Store complete-tile hashes (replacing any cached value for the same tile)."""
        rows = [{"tile": i, "hash": h.hex()} for i, h in sorted(tiles.items())]
        with self._write() as tx:
            for k in range(0, len(rows), 5000):
                chunk = rows[k:k + 5000]
                tx.conn.execute(sa.delete(t.audit_tiles).where(
                    t.audit_tiles.c.tile.between(chunk[0]["tile"], chunk[-1]["tile"])))
                tx.conn.execute(t.audit_tiles.insert(), chunk)

    def tree(self, size: int) -> TreeReader:
        """A reader of the Merkle tree of the first ``size`` entries (cached tiles + leaves on demand)."""
        def tiles(first: int, last: int) -> dict[int, bytes]:
            c = t.audit_tiles.c
            with self._read() as conn:
                return {r.tile: bytes.fromhex(r.hash)
                        for r in conn.execute(sa.select(c.tile, c.hash).where(c.tile.between(first, last)))}

        def leaves(start: int, end: int) -> list[bytes]:
            a = t.audit_log.c
            with self._read() as conn:
                rows = conn.execute(sa.select(a.seq, a.entry_hash).where(a.seq > start, a.seq <= end)
                                    .order_by(a.seq)).all()
            if [r.seq for r in rows] != list(range(start + 1, end + 1)):
                raise AuditChainBroken(f"the audit log is missing entries between {start + 1} and {end}; "
                                       "run `scoring audit verify`")
            return [leaf_hash(r.entry_hash) for r in rows]

        return TreeReader(size, tiles, leaves)

    def inclusion_proof(self, seq: int, tree_size: int | None = None, *,
                        signed_root: str | None = None) -> InclusionProof:
        """Prove entry ``seq`` is in the tree of the first ``tree_size`` entries (default: the whole log).

        The entry's stored hash must match its content (else :class:`AuditChainBroken`): a proof for an
        edited entry would prove the old content. Tiles the proof had to compute are cached only when its
        root equals ``signed_root`` (the checkpoint's): tiles of a rewritten log would otherwise replace
        good cached ones and be served to later proofs."""
        size = self.audit_size() if tree_size is None else tree_size
        if not 1 <= seq <= size:
            raise NotFound(f"entry {seq} is not in a log of {size} entries")
        entry = self.audit_entry(seq)
        form = self.canonical_form()
        if form.entry_hash(entry.seq, entry.event, form.dumps(entry.payload), entry.prev_hash) != entry.entry_hash:
            raise AuditChainBroken(f"entry {seq}'s content does not match its hash: it was edited; "
                                   "run `scoring audit verify`")
        reader = self.tree(size)
        path = reader.inclusion_path(seq - 1)
        root = reader.root()
        if reader.computed and signed_root is not None and root.hex() == signed_root:
            self.save_tiles(reader.computed)
        return InclusionProof(entry, size, root.hex(), [p.hex() for p in path])


def _stream(conn: sa.Connection, q: Any) -> Iterator[Sequence[Any]]:
    """Rows of ``q`` in batches, with a server-side cursor where the driver has one (PostgreSQL)."""
    res = conn.execution_options(stream_results=True, yield_per=BATCH).execute(q)
    yield from res.partitions(BATCH)


def _row_name(table: sa.Table, row: Any, payload: Any, criterion: bool) -> str:
    """``machine_scores row 5 (submission T-042, criterion adjusting)``: a score row named the way the issuer
    knows its submission, when the entry it claims pinned the external id."""
    sub = row.submission_id
    if isinstance(payload, dict) and payload.get("submission_id") == sub and payload.get("external_id"):
        sub = payload["external_id"]
    return f"{table.name} row {row.id} (submission {sub}" + (f", criterion {row.criterion})" if criterion else ")")


_DECODER = json.JSONDecoder()  # json.loads' own settings


def _loads(text: Any) -> Any:
    """``json.loads(text)``, with less work around the parse: :func:`_check_rows` reads three texts per row.

    Why: for texts this short ``json.loads`` spends a third or more of its time around the parse (type and
    BOM checks, a whitespace scan either side). ``json.loads`` is this decoder's ``raw_decode`` from the
    first non-whitespace character, then a check that nothing but whitespace follows; so a str the decoder
    reads whole from its first character (every payload and cell the service writes) gives the same value.
    Anything else (whitespace around it, a BOM, not JSON, not a str) goes to ``json.loads`` itself, so the
    result, or the error, is always ``json.loads``'s."""
    if type(text) is str:
        try:
            value, end = _DECODER.raw_decode(text)
        except ValueError:
            return json.loads(text)
        if end == len(text):
            return value
    return json.loads(text)


def _as_read(conn: sa.Connection, col: Any) -> Any:
    """A score table's column as :func:`_check_rows` selects it: a JSON column as its text, which
    :func:`_json_cell` parses; any other as it is.

    Why: the drivers' per-value JSON loaders (psycopg's, SQLAlchemy's for SQLite) cost about three times
    the parse itself: reading two small JSON cells per machine score through them was about a fifth of a
    PostgreSQL verify's time."""
    return _read_as(conn, col, sa.Text).label(col.name) if isinstance(col.type, sa.JSON) else col


def _json_cell(value: Any) -> Any:
    """The value of a JSON cell read as text by :func:`_as_read`: what the driver would have returned.

    The same steps as SQLAlchemy's JSON result processor (SQLite flavour): NULL is None, text is parsed
    with ``json.loads``, and a number SQLite kept as a number (a cell edited outside the service) is that
    number; text that is not JSON raises, as it did when the driver parsed it."""
    if value is None:
        return None
    try:
        return _loads(value)
    except TypeError:
        if isinstance(value, numbers.Number):
            return value
        raise


class _NotJSON:
    """A JSON cell whose text is not JSON (SQLite takes any text): shown as it stands, equal to nothing logged."""

    def __init__(self, text: Any):
        self.text = text

    def __repr__(self) -> str:
        return f"{self.text!r} (not valid JSON)"


def _check_rows(conn: sa.Connection, last: int) -> Finding | None:
    """Every score and decision row must match the entry that logged it (one joined query per table).

    Compared: the entry's event (a row may not borrow another kind of entry), each field the payload logs
    (a field an older release did not log is skipped: the hash pins what was logged), and that no two rows
    claim one entry (a copied row would count one person's score twice). An entry whose payload is not a
    JSON object (not JSON at all, or a number, string, array or null) was rewritten outside the service:
    named as such, the one check beyond the fields that the loop pays for on every row (a type check).
    Each table is read up to its first problem; the earliest entry any table names is reported, so "entries
    1..N verified" never claims an entry another table found rewritten."""
    found = [hit for table, event, fields in LOGGED_ROWS if (hit := _check_table(conn, table, event, fields, last))]
    return min(found, key=lambda f: (f.seq is None, f.seq or 0)) if found else None


def _check_table(conn: sa.Connection, table: sa.Table, event: str, fields: Sequence[str], last: int) -> Finding | None:
    """:func:`_check_rows` for one table: its first problem, in entry order."""
    a = t.audit_log.c
    c = table.c
    cols = sorted({f for f in fields if f != "rubric"}
                  | ({"rubric_id", "rubric_version"} if "rubric" in fields else set()))
    q = (sa.select(c.id, c.audit_seq, a.event, a.payload, *[_as_read(conn, c[f]) for f in cols])
         .select_from(table.outerjoin(t.audit_log, a.seq == c.audit_seq)).order_by(c.audit_seq, c.id))
    # each field's position in the row (rubric: its two columns), so the per-row loop indexes the row
    # instead of looking names up: a million-row log spends its time here; and whether it is JSON text
    at = {f: 4 + cols.index(f) for f in cols}
    specs = [(f, at.get(f, -1), f in c and isinstance(c[f].type, sa.JSON)) for f in fields]
    rubric_at = (at["rubric_id"], at["rubric_version"]) if "rubric" in fields else (0, 0)
    reason_cut = table is t.decisions
    prev: tuple[int, int] | None = None
    for part in _stream(conn, q):
        for row in part:
            if row.payload is None:
                if type(row.audit_seq) is not int:  # SQLite keeps text in an integer column as it is
                    return Finding(None, f"{_row_name(table, row, None, 'criterion' in fields)} points at audit "
                                         f"entry {row.audit_seq!r}, which is not an entry number: the row was "
                                         "edited outside the service")
                if row.audit_seq > last:
                    return Finding(last + 1, f"{table.name} row {row.id} was logged as entry {row.audit_seq} but "
                                             f"the log ends at {last}: trailing entries deleted")
                return Finding(row.audit_seq,
                               f"{table.name} row {row.id} points at entry {row.audit_seq}, which is missing")
            try:
                p = _loads(row.payload)
            except (ValueError, TypeError, RecursionError):
                p = None  # named below, once the row is known to claim an entry of its own kind
            if prev is not None and prev[0] == row.audit_seq:
                return Finding(row.audit_seq, f"{_row_name(table, row, p, 'criterion' in fields)} and row "
                                              f"{prev[1]} both claim audit entry {row.audit_seq}, which logged one "
                                              f"{event}: row {row.id} was added outside the service")
            prev = (row.audit_seq, row.id)
            if row.event != event:
                return Finding(row.audit_seq, f"{_row_name(table, row, p, 'criterion' in fields)} points at audit "
                                              f"entry {row.audit_seq}, which logged a {row.event}, not a {event}: "
                                              "the row was added or edited outside the service")
            if type(p) is not dict:
                return rewritten(row.audit_seq, (
                    f"{_row_name(table, row, p, 'criterion' in fields)} points at audit entry {row.audit_seq}, "
                    f"whose payload {payload_fault(row.payload) or 'cannot be read'}: the service logs every "
                    f"{event} as a JSON object of its fields, so the entry was rewritten outside the service and "
                    "its hash recomputed to match"))
            for f, i, is_json in specs:
                if f not in p:
                    continue
                logged = p[f]
                if i < 0:  # rubric, logged as id@version
                    has: Any = f"{row[rubric_at[0]]}@{row[rubric_at[1]]}"
                else:
                    try:
                        has = _json_cell(row[i]) if is_json else row[i]
                    except (ValueError, TypeError, RecursionError):
                        has = _NotJSON(row[i])
                    if reason_cut and f == "reason" and isinstance(logged, str):
                        logged = logged[:DECISION_REASON_MAX]
                if has != logged:
                    return Finding(row.audit_seq, f"{_row_name(table, row, p, 'criterion' in fields)} has "
                                                  f"{f}={has!r} but audit entry {row.audit_seq} logged {logged!r}: "
                                                  "the row was edited")
    return None


def _check_logged_rows(conn: sa.Connection) -> Finding | None:
    """Every entry that logged a score or decision must still have its row (one anti-join per table).

    Why: :func:`_check_rows` walks from the rows to the log, so a deleted row (a human score removed to
    change a resolved score, a decision removed to hide it) left nothing to walk from. The earliest
    orphaned entry across the tables is reported."""
    a = t.audit_log.c
    found: list[Finding] = []
    for event, table, what in ROW_EVENTS:
        # EXCEPT, not an outer join: the audit_seq columns have no index, and SQLite would scan the table
        # once per entry; EXCEPT sorts each side once (SQLite) or hashes them (PostgreSQL)
        orphans = sa.select(a.seq).where(a.event == event).except_(sa.select(table.c.audit_seq)).subquery()
        seq = conn.execute(sa.select(sa.func.min(orphans.c.seq))).scalar()
        if seq is None:
            continue
        row = conn.execute(sa.select(a.seq, a.payload).where(a.seq == seq)).one()
        fault = payload_fault(row.payload)
        p = json.loads(row.payload) if fault is None else {}
        p["submission"] = submission_name(p)
        detail = ", ".join(f"{k} {p[k]}" for k in ("submission", "criterion", "assessor") if p.get(k) is not None)
        deleted = (f"audit entry {row.seq} ({event}) logged a {what}{' (' + detail + ')' if detail else ''} but the "
                   f"{table.name} table has no row for it: the row was deleted")
        found.append(Finding(row.seq, deleted) if fault is None else
                     rewritten(row.seq, f"{deleted}; and its payload {fault}: the entry was rewritten outside the "
                                        "service too"))
    return min(found) if found else None


def _read_as(conn: sa.Connection, col: Any, type_: Any) -> Any:
    """``col`` read in SQL as ``type_``: the audit payload (stored as text) as JSON, or a JSON column as its
    text (evidence and metadata, so that a cell edited into invalid JSON is reported, not a crash; a score
    row's JSON fields, for speed: see :func:`_as_read`).
    PostgreSQL casts; SQLite keeps JSON as text already and reads text with its JSON functions as it is,
    where a CAST would turn it into a number."""
    return sa.cast(col, type_) if conn.dialect.name == "postgresql" else sa.type_coerce(col, type_)


def _pinned(conn: sa.Connection, seqs: tuple[int, int] | None = None) -> Any:
    """``(sid, ext, pinned, seq)`` of every entry that pinned evidence (of entries ``seqs[0]..seqs[1]`` only,
    when given): its payload's ``submission_id``, ``external_id`` and ``content_hash`` (the hash not null),
    read with the database's JSON functions."""
    a = t.audit_log.c
    which = [a.event.in_(sorted(PIN_EVENTS))] + ([a.seq.between(*seqs)] if seqs is not None else [])
    if conn.dialect.name == "postgresql":
        return _pinned_pg(which)
    j = _read_as(conn, a.payload, sa.JSON)
    return (sa.select(j["submission_id"].as_integer().label("sid"), j["external_id"].as_string().label("ext"),
                      j["content_hash"].as_string().label("pinned"), a.seq)
            .where(*which, j["content_hash"].as_string().is_not(None)).subquery())


def _pinned_pg(which: list[Any]) -> Any:
    """:func:`_pinned` on PostgreSQL, parsing each payload twice instead of eight times.

    Why: a ``json`` value keeps no parsed form, so the generic query's four casts and four ``->>`` each
    parsed the whole payload again: most of a PostgreSQL verify's time in SQL. Here the payload is cast
    (validated) once, ``OFFSET 0`` stops the planner copying that cast into each use, and one
    ``json_to_record`` reads the three fields, with ``->>``'s results (a string's text, a number's or
    object's JSON text, the last of duplicate keys). ``json_to_record`` refuses a payload that is not an
    object, where ``->>`` gave null (no pin): such a payload is handed over as null, so it pins nothing, as
    before. The store id is cast to an integer through ``numeric``: ``1.0`` is how a payload may spell 1 (the
    same RFC 8785 text, so the same hash), which an integer cast refuses."""
    a = t.audit_log.c
    src = sa.select(a.seq, sa.cast(a.payload, sa.JSON).label("j")).where(*which).offset(0).subquery()
    obj = sa.case((sa.func.json_typeof(src.c.j) == "object", src.c.j))
    f = (sa.func.json_to_record(obj)
         .table_valued(sa.column("submission_id", sa.Text), sa.column("external_id", sa.Text),
                       sa.column("content_hash", sa.Text))
         .render_derived(with_types=True))
    return (sa.select(sa.cast(sa.cast(f.c.submission_id, sa.Numeric), sa.Integer).label("sid"),
                      f.c.external_id.label("ext"),
                      f.c.content_hash.label("pinned"), src.c.seq)
            .select_from(src.join(f, sa.true())).where(f.c.content_hash.is_not(None)).subquery())


def _pins(conn: sa.Connection) -> Any:
    """Each distinct (submission, external id, content hash) that entries pinned, with the first entry that
    pinned it, in submission order. Entries written before pins existed have no ``content_hash``: left out.

    Why in SQL: the pins come from JSON inside the payloads; grouping there reads each submission once
    below, however many criteria, raters and decisions pinned it."""
    p = _pinned(conn).c
    return (sa.select(p.sid, p.ext, p.pinned, sa.func.min(p.seq).label("seq"))
            .group_by(p.sid, p.ext, p.pinned).order_by(p.sid, sa.func.min(p.seq)))


def _submissions_by_id(conn: sa.Connection, ids: set[int]) -> dict[int, Any]:
    """The submission rows with these ids, evidence and metadata as text, read in one query."""
    s = t.submissions.c
    q = sa.select(s.id, s.rubric_id, s.rubric_version, s.external_id,
                  _read_as(conn, s.evidence, sa.Text).label("evidence"), _read_as(conn, s.meta, sa.Text).label("meta"),
                  s.content_hash)
    return {r.id: r for r in conn.execute(q.where(s.id.in_(sorted(i for i in ids if i is not None))))}


def _holds(pin: Any, row: Any, recomputed: str | None) -> bool:
    """Whether a pinned submission still holds what its entry pinned: same name, hash column and content."""
    return row is not None and row.external_id == pin.ext and recomputed == pin.pinned == row.content_hash


def _pin_problem(pin: Any, row: Any, recomputed: str | None, did: str) -> str:
    """What is wrong with a pinned submission that no longer :func:`_holds`, in a compliance officer's words."""
    name = f"submission {pin.ext} (store id {pin.sid})"
    if row is None:
        return (f"{name}, whose evidence entry {pin.seq} pinned when it {did}, is no longer in the submissions "
                "table: it was deleted outside the service")
    name = f"submission {pin.ext} (rubric {row.rubric_id}@{row.rubric_version}, store id {pin.sid})"
    if row.external_id != pin.ext:
        return (f"{name} is now named {row.external_id!r} in the submissions table, but entry {pin.seq} {did} "
                f"under the name {pin.ext!r}: it was renamed outside the service")
    if recomputed != pin.pinned:
        column = ("its content_hash column still reads the pinned hash" if row.content_hash == pin.pinned
                  else "its content_hash column was rewritten too")
        now = "are no longer valid JSON" if recomputed is None else f"now hash to {recomputed[:16]}"
        return (f"the evidence of {name} was changed after entry {pin.seq} {did}: its evidence and metadata {now}, "
                f"but entry {pin.seq} pinned {pin.pinned[:16]} ({column}); the evidence was edited, or swapped with "
                "another submission's, in the database")
    return (f"{name} still holds the evidence entry {pin.seq} pinned when it {did}, but its content_hash column "
            f"was changed to {row.content_hash[:16]} (pinned {pin.pinned[:16]}): edited outside the service, "
            "which misleads duplicate detection")


def _recomputed(row: Any) -> str | None:
    """The content hash of a row's evidence and metadata, computed as the store computed it when the
    submission was added; None when that text is not valid JSON any more."""
    from scoring.store.submissions import content_hash

    try:
        return content_hash(json.loads(row.evidence), json.loads(row.meta))
    except (TypeError, ValueError, RecursionError):
        return None


def _check_evidence(conn: sa.Connection) -> Finding | None:
    """Every submission a score or decision entry pinned must still be there, under the same external id,
    with the pinned content hash, and with evidence and metadata that still hash to it.

    Why: the score rows match their entries even when the evidence they were about was edited afterwards;
    the pin is what ties a logged decision to the text that was scored. Streamed in batches of pins, each
    submission read and hashed once per chunk, so memory does not grow with the store. The earliest pinning
    entry with a problem is reported.

    The pins are read with the database's JSON functions, which refuse some payloads Python reads (the row
    checks before this one parse every score and decision entry): NaN, an unpaired surrogate escape, and on
    PostgreSQL the escape \\u0000. The service logs none of these, so when the query fails on the data, the
    entry it failed on is found and named (:func:`_unreadable_pin`); a pass that does not fail pays nothing."""
    try:
        return _check_pins(conn)
    except (sa.exc.DataError, sa.exc.OperationalError) as exc:
        if not _refuses_data(exc):
            raise
        conn.rollback()  # PostgreSQL refuses every statement after an error until then; only the search follows
        found = _unreadable_pin(conn)
        if found is None:  # every entry reads on its own: the failure was not the data's
            raise
        return found


def _refuses_data(exc: sa.exc.DBAPIError) -> bool:
    """Whether a failed query failed on the data it read: PostgreSQL's data exceptions (SQLSTATE class 22:
    invalid JSON, an escape it cannot convert, a number that is not an integer), SQLite's JSON errors
    ("malformed JSON"); not a lost connection, a full disk or a lock."""
    return isinstance(exc, sa.exc.DataError) or "JSON" in str(exc.orig)


def _check_pins(conn: sa.Connection) -> Finding | None:
    """:func:`_check_evidence`'s pass over the pins."""
    a = t.audit_log.c
    worst: Finding | None = None
    for part in _stream(conn, _pins(conn)):
        for k in range(0, len(part), PIN_CHUNK):
            chunk = part[k:k + PIN_CHUNK]
            rows = _submissions_by_id(conn, {p.sid for p in chunk})
            hashes = {sid: _recomputed(r) for sid, r in rows.items()}
            for pin in chunk:
                row, recomputed = rows.get(pin.sid), hashes.get(pin.sid)
                if (worst is not None and pin.seq >= worst[0]) or _holds(pin, row, recomputed):
                    continue
                entry = conn.execute(sa.select(a.event, a.payload).where(a.seq == pin.seq)).one()
                if pin.sid is None or pin.ext is None:  # a pin the service never logs: half of one
                    missing = "its submission" if pin.sid is None else "its external id"
                    worst = rewritten(pin.seq, (
                        f"audit entry {pin.seq}, {describe(entry.event, entry.payload)}, pinned evidence "
                        f"{str(pin.pinned)[:16]} without naming {missing}: the service logs a pin's store id, external "
                        "id and content hash together, so the entry was rewritten outside the service and its hash "
                        "recomputed to match"))
                else:
                    worst = Finding(pin.seq, _pin_problem(pin, row, recomputed, PIN_EVENTS[entry.event]))
    return worst


def _unreadable_pin(conn: sa.Connection) -> Finding | None:
    """The first score or decision entry whose pin the database cannot read, named; None when every entry
    reads (the pin query failed for another reason).

    How: the pin query over a range of entries fails exactly when one of them cannot be read, so halving the
    range finds the first such entry in about log2(n) queries that read about 2n entries in all (only ever
    run on a store that fails verification). A query that fails is rolled back, not wrapped in a savepoint:
    ``_stream`` left the connection streaming (execution options change the connection itself), and
    PostgreSQL would be asked to declare a cursor for the SAVEPOINT."""
    a = t.audit_log.c
    errors: dict[tuple[int, int], str] = {}

    def refused(lo: int, hi: int) -> bool:
        p = _pinned(conn, (lo, hi)).c
        try:
            conn.execute(sa.select(sa.func.count(p.sid), sa.func.count(p.ext), sa.func.count(p.pinned))).one()
        except (sa.exc.DataError, sa.exc.OperationalError) as exc:
            if not _refuses_data(exc):
                raise
            conn.rollback()
            errors[lo, hi] = "; ".join(str(exc.orig).split("\n")[:2]).strip()
            return True
        return False

    lo, hi = conn.execute(sa.select(sa.func.min(a.seq), sa.func.max(a.seq))).one()
    if lo is None or not refused(lo, hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if refused(lo, mid):
            hi = mid
        else:
            lo = mid + 1
    if not refused(lo, lo):  # its own error (a range's is that of the first row the database happened to read)
        return None
    entry = conn.execute(sa.select(a.event, a.payload).where(a.seq == lo)).one()
    db = "PostgreSQL" if conn.dialect.name == "postgresql" else "SQLite"
    said = f"audit entry {lo}, {describe(entry.event, entry.payload)}, has a payload {db} cannot read"
    why = _why_unreadable(entry.payload, db)
    if why is None:
        return rewritten(lo, f"{said} ({errors[lo, lo]}): the service logs no such payload, so the entry was "
                             "rewritten outside the service and its hash recomputed to match")
    return rewritten(lo, f"{said}: {why}: the entry was rewritten outside the service and its hash recomputed to "
                         "match")


class _NotANumber(ValueError):
    pass


def _not_a_number(name: str) -> Any:
    raise _NotANumber(name)


def _why_unreadable(text: Any, db: str) -> str | None:
    """Why the database cannot read a payload Python reads, and why the service never logged it, in words;
    None when it is none of the reasons known here."""
    try:
        value = json.loads(text, parse_constant=_not_a_number)
    except _NotANumber:
        return "it contains NaN or Infinity, which are not JSON numbers, so the service never logged it"
    except (ValueError, TypeError, RecursionError):
        return None
    strings, stack = [], [value]
    while stack:  # every key and string value, however deep
        v = stack.pop()
        if isinstance(v, str):
            strings.append(v)
        elif isinstance(v, dict):
            stack.extend(v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    if db == "PostgreSQL" and any("\x00" in v for v in strings):
        return ("it contains the escape \\u0000 (a NUL character), which no PostgreSQL text column can hold, so "
                "the service never logged it in this store")
    for v in strings:
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return ("it contains an unpaired surrogate escape (half of a UTF-16 pair, no character), so the service "
                    "never logged it")
    return None


def _check_suspensions(conn: sa.Connection,
                       logged: list[tuple[int, str, dict[str, Any]]]) -> tuple[int | None, str] | None:
    """Rebuild the suspensions from the log and compare with the table.

    Why: routing reads the table, so deleting a row (or setting ``lifted_at``) silently re-enables
    automation that a drift gate stopped; the log, which verification just proved intact, says what the
    table must hold. ``lifted_at`` is read only as set or not (as routing reads it), and ``details`` as text:
    SQLite keeps whatever text an edit puts there, which the driver's readers would fail on."""
    suspended = {seq: p for seq, ev, p in logged if ev == "automation_suspended"}
    lifted = {p.get("suspension_id"): (seq, p) for seq, ev, p in logged if ev == "automation_resumed"}
    c = t.suspensions.c
    q = sa.select(c.id, c.rubric_id, c.criterion, c.reason, c.lifted_by, c.audit_seq,
                  c.lifted_at.is_not(None).label("lifted"), _read_as(conn, c.details, sa.Text).label("details")
                  ).order_by(c.id)
    rows = {r.audit_seq: r for r in conn.execute(q)}
    for seq, p in sorted(suspended.items()):
        what = f"{p.get('rubric_id')}/{p.get('criterion')}"
        row = rows.pop(seq, None)
        if row is None:
            return seq, (f"the suspension of automation for {what} logged as entry {seq} has no row in the "
                         "suspensions table: the row was deleted, which re-enabled automation without a logged lift")
        if (row.rubric_id, row.criterion) != (p.get("rubric_id"), p.get("criterion")):
            return seq, (f"suspensions row {row.id} names {row.rubric_id}/{row.criterion} but entry {seq} logged "
                         f"{what}: the row was edited")
        if not _is_json(row.details):
            return seq, (f"suspensions row {row.id} ({what}) holds details that are not valid JSON "
                         f"({_shown(row.details)}): the row was edited outside the service")
        # why automation stopped (the gate's results) is what a reviewer reads: it must be what was logged
        if row.reason != p.get("reason") or json.loads(row.details) != p.get("details", {}):
            field = "reason" if row.reason != p.get("reason") else "details"
            return seq, (f"suspensions row {row.id} ({what}) holds a {field} other than entry {seq} logged: "
                         "the row was edited")
        lift = lifted.get(row.id)
        if row.lifted and lift is None:
            return seq, (f"suspensions row {row.id} ({what}) shows a lift by {row.lifted_by!r} that no "
                         "automation_resumed entry logs: lifted outside the service")
        if row.lifted and lift is not None and row.lifted_by != lift[1].get("by"):
            return lift[0], (f"suspensions row {row.id} ({what}) says {row.lifted_by!r} lifted it but entry "
                             f"{lift[0]} logged {lift[1].get('by')!r}: the row was edited")
        if not row.lifted and lift is not None:
            return lift[0], (f"entry {lift[0]} logged lifting suspension {row.id} ({what}) but the row is active "
                             "again: edited")
    if rows:  # the first in log order (SQLite keeps text in the integer column: such a row comes last)
        seq, row = min(rows.items(), key=lambda kv: (0, kv[0], "") if isinstance(kv[0], int) else (1, 0, str(kv[0])))
        return seq if isinstance(seq, int) else None, (
            f"suspensions row {row.id} ({row.rubric_id}/{row.criterion}) points at entry {seq}, which logged no "
            "suspension: the row was added outside the service")
    return None


def _is_json(text: Any) -> bool:
    try:
        json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


def _shown(text: Any) -> str:
    """A cell's text as a message quotes it: at most 40 characters."""
    return repr(text if not isinstance(text, str) or len(text) <= 40 else text[:40] + "...")


def _check_rubrics(conn: sa.Connection, logged: list[tuple[int, str, dict[str, Any]]]) -> tuple[int | None, str] | None:
    """Every stored rubric body must still hash to the fingerprint its ``rubric_registered`` entry logged.

    Why: scoring, routing and every credential decision read the rubric from this table, so an edited
    level scale or award rule changes decisions while every score row still matches its entry."""
    registered = {p.get("rubric"): (seq, p.get("fingerprint")) for seq, ev, p in logged if ev == RUBRIC_EVENT}
    r = t.rubrics.c
    for row in conn.execute(sa.select(r.id, r.rubric_id, r.version, r.fingerprint, r.body).order_by(r.id)):
        key = f"{row.rubric_id}@{row.version}"
        if key not in registered:
            return None, (f"rubric {key} is in the rubrics table but no rubric_registered entry logs it: it was added "
                       "outside the service")
        seq, logged_fp = registered[key]
        try:
            body = json.loads(row.body)
            fp = body_fingerprint(body) if isinstance(body, dict) else "not a JSON object"
        except (ValueError, TypeError, RecursionError):
            fp = "not valid JSON"
        if fp != logged_fp or row.fingerprint != logged_fp:
            return seq, (f"rubric {key} was registered in audit entry {seq} with fingerprint {logged_fp}, but its "
                         f"stored body now has fingerprint {fp} (fingerprint column {row.fingerprint}): the rubric "
                         "was edited in the database, which changes how its submissions are scored and decided")
    return None


def _bad(res: AuditVerification, seq: int | None, problem: str, kind: str = "tables") -> AuditVerification:
    """The verdict when a table check fails (``kind`` "tables": the log is intact, a row is not what it logged)
    or finds an entry the service never wrote (``kind`` "chain": the entries before it still hold)."""
    intact = seq - 1 if kind == "chain" and seq is not None else res.entries_checked
    return AuditVerification(False, res.entries_checked, res.last_seq, res.head_hash, seq, problem, res.merkle_root,
                             res.checkpoints_checked, None, res.checkpoints, kind, intact, res.signed_through)
