"""Queue a process's SQLite writers on a Python lock instead of SQLite's busy handler.

Why: SQLite admits one writer at a time. When threads of one process (the API server's request
threads) contend for ``BEGIN IMMEDIATE``, the losers sit in SQLite's busy handler, which sleeps in
growing steps (1, 2, 5, 10 ... 100 ms) and polls, so a 2 ms write can wait far longer than the write
ahead of it took. A lock taken just before ``BEGIN IMMEDIATE`` and
released at commit/rollback hands the write slot over at once, without sleeping, and
changes nothing else: other processes still meet SQLite's own locking. PostgreSQL needs none of this.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

_FLAG = "scoring_write_lock_held"


def serialize_sqlite_writers(engine: Engine) -> bool:
    """Install the lock on a store engine (idempotent); returns whether it applies (SQLite only)."""
    if engine.dialect.name != "sqlite" or engine.__dict__.get("_scoring_write_lock") is not None:
        return engine.dialect.name == "sqlite"
    lock = threading.Lock()
    engine.__dict__["_scoring_write_lock"] = lock

    def on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("store_write", False) and not conn.info.get(_FLAG):
            lock.acquire()
            conn.info[_FLAG] = True

    def on_end(conn: Connection, *_: Any) -> None:
        if conn.info.pop(_FLAG, False):
            lock.release()

    event.listen(engine, "begin", on_begin, insert=True)  # before the store's BEGIN IMMEDIATE
    event.listen(engine, "commit", on_end)
    event.listen(engine, "rollback", on_end)
    return True

