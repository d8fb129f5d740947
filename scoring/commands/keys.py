"""``scoring keys create|list|revoke``: API keys for the service (the key is printed once)."""

from __future__ import annotations

from typing import Annotated

import typer

from scoring.commands._store import DB_OPTION, open_store

keys_app = typer.Typer(help="API keys: create (printed once), list, revoke.", no_args_is_help=True)


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option("--role", help="assessor | issuer | researcher | admin")],
    name: Annotated[str, typer.Option("--name", help="Unique name; recorded as the assessor/owner identity.")],
    db: str | None = DB_OPTION,
) -> None:
    """Create a key and print it on stdout (only the hash is stored: copy it now)."""
    from scoring.errors import ScoringError
    from scoring.store.keys import create_key

    try:
        rec, secret = create_key(open_store(db), name, role)
    except ScoringError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created {rec.role} key {rec.name!r} (id {rec.key_id}); it is shown only once:", err=True)
    typer.echo(secret)


@keys_app.command("list")
def list_(db: str | None = DB_OPTION) -> None:
    """Names, roles and ids of all keys (never the secrets)."""
    from scoring.store.keys import list_keys

    for k in list_keys(open_store(db, must_exist=True)):
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        typer.echo(f"{k.name}\t{k.role}\t{k.key_id}\t{state}")


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="Key name.")], db: str | None = DB_OPTION) -> None:
    """Revoke a key by name; it stops working on its next request."""
    from scoring.errors import ScoringError
    from scoring.store.keys import revoke_key
    from scoring.store.queue import held_by

    store = open_store(db, must_exist=True)
    held = held_by(store, name)
    try:
        k = revoke_key(store, name)
    except ScoringError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    back = f"; the {len(held)} queue item(s) they held are open again" if held and k.role == "assessor" else ""
    typer.echo(f"revoked {k.name} ({k.role}){back}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
