"""Shared option and opener for commands that use the store."""

from __future__ import annotations

from pathlib import Path

import typer

DB_OPTION = typer.Option(None, "--db", help="SQLAlchemy URL of the store (default: settings, SQLite under .scoring/).")


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL when that file does not exist (None for other databases and in-memory ones)."""
    import sqlalchemy as sa

    try:
        u = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None  # the store names a malformed URL itself
    if not u.drivername.startswith("sqlite") or not u.database or u.database == ":memory:":
        return None
    path = Path(u.database)
    return None if path.exists() else path


def open_store(db: str | None, *, must_exist: bool = False):  # type: ignore[no-untyped-def]
    """The store at ``db`` (default: the settings' URL). ``must_exist``: commands that only read a store
    (report, audit, drift, credentials, exports) refuse a SQLite file that is not there, and any database
    that holds no store (an empty file, another application's tables, a file that is not SQLite), rather
    than create a store in it and report on nothing, which is what a mistyped --db would otherwise do
    silently. A store at an older schema revision is still upgraded."""
    from scoring.errors import NoStore, StoreTooNew, StoreUrlError
    from scoring.settings import get_settings
    from scoring.store import Store

    url = db or get_settings().resolved_database_url()
    if must_exist and (path := missing_sqlite_file(url)) is not None:
        typer.echo(f"error: no store at {path}: expected an existing SQLite file (stores are made by "
                   "`scoring score --store`, `scoring import-scores` or `scoring serve`); check --db", err=True)
        raise typer.Exit(2)
    try:
        store = Store(url, create=not must_exist)
        report_upgrade(store)
        return store
    except StoreTooNew as exc:  # a newer release's schema: refused before anything is written
        typer.echo(f"error: cannot open the store at {shown_url(url)}: {exc}", err=True)
        raise typer.Exit(2) from None
    except NoStore as exc:  # named with the URL, like a database that does not answer
        typer.echo(f"error: cannot open the store at {shown_url(url)}: {exc}; check --db (or "
                   "SCORING_DATABASE_URL)", err=True)
        raise typer.Exit(2) from None
    except StoreUrlError as exc:  # a file name or `postgres://`: what to write instead, no traceback
        typer.echo(f"error: {exc}; check --db (or SCORING_DATABASE_URL)", err=True)
        raise typer.Exit(2) from None
    except sa_errors() as exc:  # a server that does not answer, a wrong schema or role: one line, no traceback
        typer.echo(f"error: cannot open the store at {shown_url(url)}: {first_line(exc)}; check --db (or "
                   "SCORING_DATABASE_URL)", err=True)
        raise typer.Exit(2) from None


def report_upgrade(store) -> None:  # type: ignore[no-untyped-def]
    """Say on stderr when opening the store upgraded its schema (an operator's backup taken before it is the
    way back: an older release refuses the upgraded store)."""
    if store.upgraded is not None:
        before, after = store.upgraded
        typer.echo(f"upgraded the store at {shown_url(store.url)} from schema revision {before} to {after}",
                   err=True)


def sa_errors() -> tuple[type[Exception], ...]:
    """The driver errors that mean "no store can be opened here", reported in one line rather than a traceback."""
    import sqlalchemy as sa

    # DatabaseError: a --db file that is not SQLite at all ("file is not a database"), for the commands
    # that may create a store too; it covers OperationalError and ProgrammingError
    return (sa.exc.DatabaseError, sa.exc.InterfaceError)


def shown_url(url: str) -> str:
    """The URL with its password masked, as it may be printed."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable URL>"


def first_line(exc: BaseException) -> str:
    """The driver's own message, first line, without SQLAlchemy's wrapper and background link."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def gate_policy(path: Path | None):  # type: ignore[no-untyped-def]
    """The gate policy at ``path`` (default: the bundled ETS policy), loaded before any store is opened; a
    missing or malformed file ends the command with one ``error:`` line and exit 2, not a traceback."""
    from eval.gates import load_policy

    try:
        return load_policy(path)
    except ValueError as exc:
        typer.echo(f"error: {exc}; check --policy", err=True)
        raise typer.Exit(2) from None
