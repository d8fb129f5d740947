"""``scoring backup``: a consistent copy of a SQLite store while the service runs, verified before it is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scoring.commands._store import DB_OPTION, open_store, shown_url

PG_DUMP = ("back it up with PostgreSQL's own tool, which reads one consistent snapshot while the service writes: "
           "`pg_dump -Fc -f FILE DATABASE`; restore it into an empty database with `pg_restore -d DATABASE FILE`, "
           "then check it with `scoring audit verify --db URL --checkpoints FOLDER`")


def backup(out: Annotated[Path, typer.Option("--out", help="The new backup file (must not exist).")],
           db: str | None = DB_OPTION) -> None:
    """Copy a SQLite store to a new file while servers write to it (never `cp` a live store: its newest
    commits sit in the -wal file), then verify the copy's audit log. PostgreSQL: use pg_dump."""
    from scoring.store import Store
    from scoring.store.engine import sqlite_backup

    store = open_store(db, must_exist=True)
    if store.dialect != "sqlite":
        typer.echo(f"error: {shown_url(store.url)} is a {store.dialect} store: {PG_DUMP}", err=True)
        raise typer.Exit(2)
    if out.exists():
        typer.echo(f"error: {out} already exists; a backup is written to a new file (choose another --out)", err=True)
        raise typer.Exit(2)
    if not out.parent.is_dir():
        typer.echo(f"error: folder {out.parent} does not exist; create it or choose another --out", err=True)
        raise typer.Exit(2)
    sqlite_backup(store.engine, out)
    store.close()
    with Store(f"sqlite:///{out}", create=False, migrate=False) as copy:
        res = copy.verify_audit()
    if not res.ok:
        typer.echo(f"error: the backup {out} does not verify: {res.problem} (the store itself: `scoring audit "
                   "verify`)", err=True)
        raise typer.Exit(1)
    typer.echo(f"backup {out}: {res.entries_checked} audit entries, head seq {res.last_seq}, Merkle root "
               f"{res.merkle_root}; verified. Restore: stop the servers, put it in place of the store file "
               "(removing its -wal and -shm files), then `scoring audit verify --checkpoints FOLDER`")


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
