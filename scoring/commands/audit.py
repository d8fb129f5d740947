"""``scoring audit``: verify the append-only, hash-chained audit log of the store."""

from __future__ import annotations

import json

import typer

from scoring.commands._store import DB_OPTION, open_store

audit_app = typer.Typer(help="The append-only audit log of score events.", no_args_is_help=True)


@audit_app.command("verify")
def verify(db: str | None = DB_OPTION, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Recompute the hash chain; exit 1 naming the first bad sequence number if any entry was edited or deleted."""
    store = open_store(db)
    try:
        res = store.verify_audit()
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(res.__dict__))
    elif res.ok:
        typer.echo(f"audit log OK: {res.entries_checked} entries, head seq {res.last_seq}, head hash {res.head_hash}")
    else:
        typer.echo(f"audit log BROKEN at seq {res.first_bad_seq}: {res.problem} "
                   f"({res.entries_checked} entries verified before it)", err=True)
    raise typer.Exit(0 if res.ok else 1)


@audit_app.command("tail")
def tail(db: str | None = DB_OPTION, n: int = typer.Option(20, "-n", help="How many entries.")) -> None:
    """Print the last N audit entries as JSON lines."""
    store = open_store(db)
    try:
        entries = list(store.audit_entries())[-n:]
    finally:
        store.close()
    for e in entries:
        typer.echo(json.dumps({"seq": e.seq, "event": e.event, "payload": e.payload, "hash": e.entry_hash}))


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
