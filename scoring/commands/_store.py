"""Shared option and opener for commands that use the store."""

from __future__ import annotations

import typer

DB_OPTION = typer.Option(None, "--db", help="SQLAlchemy URL of the store (default: settings, SQLite under .scoring/).")


def open_store(db: str | None):  # type: ignore[no-untyped-def]
    from scoring.settings import get_settings
    from scoring.store import Store

    return Store(db or get_settings().resolved_database_url())
