"""The durable store: rubrics, submissions, machine and human scores, models, suspensions, audit log.

:class:`Store` is assembled from one module per aggregate (``rubrics``, ``submissions``, ``scores``,
``registry``, ``suspensions``, ``verify``) over :class:`~scoring.store.engine.StoreBase`, which owns the
engine and the one write-transaction helper. SQLite (WAL, busy timeout) is the embedded default; any
PostgreSQL URL works with no code change. Opening a store upgrades its schema to the newest Alembic
revision shipped in ``scoring/store/migrations``.

Every write that records a score event (machine score, human score, adjudication, model promotion,
suspension and its lifting) appends a hash-chained entry to ``audit_log`` in the same transaction.
"""

from __future__ import annotations

from scoring.errors import NoStore
from scoring.store.clock import aware as _aware  # noqa: F401 - re-exported for the service modules
from scoring.store.clock import iso as _iso  # noqa: F401
from scoring.store.clock import now as _now  # noqa: F401
from scoring.store.credential_status import CredentialStatusStore
from scoring.store.decisions import DecisionsStore
from scoring.store.engine import (  # noqa: F401
    MIGRATIONS_DIR,
    StoreBase,
    Tx,
    make_engine,
    no_store_at,
    no_store_in,
    schema_revision,
    upgrade_schema,
)
from scoring.store.engine import pk as _pk  # noqa: F401
from scoring.store.records import (  # noqa: F401
    HUMAN_KINDS,
    Adjudication,
    HumanScore,
    HumanScoreIn,
    MachineScore,
    MachineScoreIn,
    ModelRecord,
    RubricRecord,
    SubmissionRecord,
    Suspension,
)
from scoring.store.registry import ModelsStore
from scoring.store.rubrics import RubricsStore
from scoring.store.scores import ScoresStore
from scoring.store.submissions import SubmissionsStore, content_hash  # noqa: F401
from scoring.store.suspensions import SuspensionsStore
from scoring.store.verify import AuditStore


class Store(RubricsStore, SubmissionsStore, ScoresStore, DecisionsStore, CredentialStatusStore, ModelsStore,
            SuspensionsStore, AuditStore, StoreBase):
    """The store's Python API. ``Store(url)`` opens (creating and migrating as needed) the database.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL; defaults to ``get_settings().resolved_database_url()`` (SQLite under ``.scoring/``).
    """

    def __init__(self, url: str | None = None, *, migrate: bool = True, create: bool = True):
        """``create=False`` opens only a database that already holds a store (one at an older revision is
        still upgraded, as every release does) and raises :class:`~scoring.errors.NoStore` otherwise: the
        read-only commands' mode, so a mistyped --db never turns another file into an empty store."""
        if url is None:
            from scoring.settings import get_settings

            url = get_settings().resolved_database_url()
        self.url = url
        if not create:
            _refuse_sqlite_without_store(url)
        self.engine = make_engine(url)
        if not create:
            self._refuse_database_without_store()
        #: (old revision, new revision) when opening upgraded an existing store's schema; None otherwise
        self.upgraded: tuple[str, str] | None = None
        if migrate:
            try:
                before, after = upgrade_schema(self.engine)
            except Exception:
                self.engine.dispose()
                raise
            if before is not None and after is not None and before != after:
                self.upgraded = (before, after)
        self._rubric_cache = {}

    def _refuse_database_without_store(self) -> None:
        if self.dialect != "sqlite" and (why := no_store_in(self.engine)) is not None:
            self.engine.dispose()
            raise NoStore(why)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def _refuse_sqlite_without_store(url: str) -> None:
    """NoStore when ``url`` names a SQLite file that is not a store, checked before the file is opened."""
    from scoring.store.engine import _usable_url

    _usable_url(url)  # a malformed URL is refused in its own words first
    if (why := no_store_at(url)) is not None:
        raise NoStore(why)
