"""Engines, schema upgrades and the store's one transaction helper.

Writers are serialised (SQLite ``BEGIN IMMEDIATE``; PostgreSQL transaction-level advisory lock) so the
audit chain never forks and concurrent writers lose nothing. Every aggregate module writes through
:meth:`StoreBase.write`, and a use case that must change several aggregates at once (a submission, its
machine scores, audit entries and queue slots) opens ONE ``write()`` and passes its :class:`Tx` along.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from scoring.store import tables as t
from scoring.store.canonical import SETTING, CanonicalForm, form_named

if TYPE_CHECKING:
    from rubrics.schema import Rubric

PG_LOCK_KEY = 0x5C0_41D17  # arbitrary constant: the store's writer lock on PostgreSQL
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


STORE_URLS = "sqlite:///path/to/store.db (a file) or postgresql+psycopg://USER@HOST:5432/DATABASE"


def _usable_url(url: str) -> None:
    """Refuse a URL no engine can be made for, in the user's terms.

    Why: SQLAlchemy answers a file name with "Could not parse SQLAlchemy URL" and the common ``postgres://``
    spelling with "Can't load plugin: sqlalchemy.dialects:postgres", which name neither the mistake nor the fix."""
    from scoring.errors import StoreUrlError

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreUrlError(f"store {url!r} is not a database URL; write {STORE_URLS}") from None
    try:
        parsed.get_dialect().import_dbapi()
    except (sa.exc.NoSuchModuleError, ImportError):
        raise StoreUrlError(f"store {parsed.render_as_string(hide_password=True)!r}: no database driver for "
                            f"{parsed.drivername!r} is installed; write {STORE_URLS}") from None


def make_engine(url: str, *, busy_timeout_ms: int = 30_000) -> Engine:
    """An engine configured for the store: SQLite gets WAL, a busy timeout, foreign keys and
    ``BEGIN IMMEDIATE`` for writing connections (so two writers queue instead of failing mid-way)."""
    _usable_url(url)
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


def unreachable(url: str, timeout_s: int = 3) -> str | None:
    """Why no database answers at ``url`` (None when one does): for benchmarks and tests that use a server
    only when one is there."""
    try:
        eng = sa.create_engine(url, connect_args={"connect_timeout": timeout_s})
        with eng.connect() as c:
            c.execute(sa.text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server answers"
        return f"no database answers at {url}: {type(exc).__name__}"


def upgrade_schema(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply the shipped migrations up to ``revision`` (every one: head), serialised against other processes
    doing the same. An earlier revision leaves a database as an older release did (tests of upgrades).

    Returns the schema revision before and after (``None`` before: a new store). A store at a revision
    this release does not ship (a newer release upgraded it) raises :class:`~scoring.errors.StoreTooNew`
    before anything is written: this code would not know that schema's tables and rules."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect().execution_options(store_write=True) as conn:
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
            before = _revision_in(conn)
            script = ScriptDirectory.from_config(cfg)
            known = {rev.revision for rev in script.walk_revisions()}
            if before is not None and before not in known:
                from scoring.errors import StoreTooNew

                raise StoreTooNew(
                    f"its schema is at revision {before!r}, which this release does not know (its newest is "
                    f"{script.get_current_head()!r}): a newer release of rubric-scoring upgraded it. Run that "
                    "release (or newer) against it; this one changed nothing")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            return before, _revision_in(conn)


def _revision_in(conn: Connection) -> str | None:
    """The schema revision recorded in the database (None: no store schema yet)."""
    if "alembic_version" not in sa.inspect(conn).get_table_names():
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


STORE_MARKERS = frozenset({"alembic_version", "audit_log"})  # every revision of the store has both
MAKES_STORES = "stores are made by `scoring score --store`, `scoring import-scores` or `scoring serve`"


def no_store_at(url: str) -> str | None:
    """Why the SQLite file of ``url`` holds no store (None when it holds one at any revision, or when the URL
    is not a SQLite file). Read before any engine touches the file: opening it the store's way switches it
    to WAL, which already writes to a file that is someone else's."""
    import sqlite3

    parsed = sa.engine.make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database)
    if not path.exists():
        return f"{path} does not exist ({MAKES_STORES})"
    if not path.is_file():
        return f"{path} is not a file"
    if path.stat().st_size == 0:
        return f"{path} is an empty file, not a store ({MAKES_STORES})"
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)  # never creates the file
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:  # "file is not a database", "file is encrypted"...
        return f"{path} is not an SQLite database ({exc})"
    return _absence(names, f"the SQLite file {path}")


def no_store_in(engine: Engine) -> str | None:
    """Why the database behind ``engine`` holds no store (None when it holds one at any revision): for a
    server database, whose tables are listed without writing anything."""
    names = set(sa.inspect(engine).get_table_names())
    return _absence(names, f"the database {engine.url.render_as_string(hide_password=True)}")


def _absence(names: set[str], where: str) -> str | None:
    """What ``where`` holds instead of a store's tables, in the user's words (None: a store is there)."""
    if STORE_MARKERS <= names:
        return None
    if not names:
        return f"{where} has no tables: it is not a store ({MAKES_STORES})"
    shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
    return f"{where} holds other tables ({shown}), not a store"


def sqlite_backup(engine: Engine, out: Path) -> None:
    """Write a consistent copy of the SQLite store behind ``engine`` to ``out`` (a new file) while it is in use.

    Why not a file copy: in WAL mode the latest commits live in ``-wal`` until a checkpoint moves them into the
    main file, so a copy of the main file alone silently misses them (and one taken mid-checkpoint is torn).
    ``VACUUM INTO`` reads one snapshot through SQLite, WAL included, without blocking the writers."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("VACUUM INTO ?", (str(out),))  # type: ignore[union-attr]
    finally:
        raw.close()


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        except sa.exc.DBAPIError:
            return None



def read_canonical_form(conn: Connection) -> CanonicalForm:
    """The canonical JSON form this store's audit log is hashed with (:mod:`scoring.store.canonical`);
    :class:`~scoring.store.canonical.CanonicalFormError` when the setting is missing or unknown."""
    s = t.store_settings.c
    return form_named(conn.execute(sa.select(s.value).where(s.key == SETTING)).scalar())


class Tx:
    """One write transaction. ``append`` adds a hash-chained audit entry (the chain tail and the store's
    canonical form are read once, then kept); ``conn`` runs the transaction's other statements."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._tail: tuple[int, str] | None = None
        self._form: CanonicalForm | None = None

    @property
    def form(self) -> CanonicalForm:
        if self._form is None:
            self._form = read_canonical_form(self.conn)
        return self._form

    def append(self, event_name: str, payload: dict[str, Any]) -> int:
        if self._tail is None:
            row = self.conn.execute(
                sa.select(t.audit_log.c.seq, t.audit_log.c.entry_hash).order_by(t.audit_log.c.seq.desc()).limit(1)
            ).first()
            self._tail = (row.seq, row.entry_hash) if row is not None else (0, self.form.genesis)
        seq, prev = self._tail[0] + 1, self._tail[1]
        form = self.form
        body = form.dumps(payload)  # a non-finite float or an int beyond 2**53 (RFC 8785) is refused here
        h = form.spliced_hash(seq, form.dumps(event_name), body, prev)
        # the driver's own statement: one append costs a few microseconds here instead of SQLAlchemy's ~100
        mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        self.conn.exec_driver_sql(f"INSERT INTO audit_log (seq, event, payload, prev_hash, entry_hash) "
                                  f"VALUES ({', '.join([mark] * 5)})", (seq, event_name, body, prev, h))
        self._tail = (seq, h)
        return seq



class StoreBase:
    """What every aggregate module builds on: the engine and the read/write transaction helpers."""

    url: str
    engine: Engine
    _rubric_cache: dict[tuple[str, int], Rubric]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """The one write transaction helper: all statements inside commit together or not at all."""
        with self.engine.connect().execution_options(store_write=True) as conn:
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
                yield Tx(conn)

    _write = write  # the aggregate modules' spelling

    def canonical_form(self) -> CanonicalForm:
        """The canonical JSON form this store hashes its audit entries with (fixed when it was created)."""
        with self._read() as conn:
            return read_canonical_form(conn)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def rubric(self, rubric_id: str, version: int | None = None, *, conn: Any = None) -> Rubric:  # pragma: no cover - RubricsStore
        raise NotImplementedError


def pk(res: Any) -> int:
    key = res.inserted_primary_key
    if key is None:  # pragma: no cover - every table has an integer primary key
        raise RuntimeError("insert returned no primary key")
    return int(key[0])


def chunks(xs: Sequence[str], n: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(xs), n):
        yield xs[i : i + n]
