"""`scoring backup`: a consistent copy of a SQLite store taken while a server writes to it (commits still in
the write-ahead log included, which a copy of the main file misses), verified before the command says it is
done; a PostgreSQL store is pointed at pg_dump in one line; an existing file is never overwritten."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from scoring.cli import app
from scoring.store import Store, keys


def _entries(path: Path) -> int:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT count(*) FROM audit_log").fetchone()[0])
    except sqlite3.OperationalError:  # not even the tables: they are in the -wal file too
        return 0
    finally:
        con.close()


def test_a_backup_of_a_store_in_use_holds_every_committed_entry_and_verifies(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    with Store(f"sqlite:///{live}") as store:  # a server holding the store open, its newest commits in -wal
        for name in ("root", "ana", "ben", "lms"):
            keys.create_key(store, name, "admin" if name == "root" else "assessor")
        committed = store.verify_audit().entries_checked
        shutil.copy(live, tmp_path / "file-copy.db")  # what `cp` of the main file alone would keep
        assert _entries(tmp_path / "file-copy.db") < committed

        r = CliRunner().invoke(app, ["backup", "--db", f"sqlite:///{live}", "--out", str(tmp_path / "b.db")])
        assert r.exit_code == 0, r.output
        assert f"backup {tmp_path / 'b.db'}: {committed} audit entries" in r.output and "verified" in r.output
        keys.create_key(store, "cy", "assessor")  # the server goes on writing
    with Store(f"sqlite:///{tmp_path / 'b.db'}", create=False) as copy:
        assert copy.verify_audit().ok and copy.verify_audit().entries_checked == committed
        assert [k.name for k in keys.list_keys(copy)] == ["root", "ana", "ben", "lms"]


def test_backup_never_overwrites_and_points_postgresql_at_pg_dump(tmp_path: Path, pg_url: str) -> None:
    live = tmp_path / "live.db"
    Store(f"sqlite:///{live}").close()
    (tmp_path / "old.db").write_text("yesterday's backup")
    r = CliRunner().invoke(app, ["backup", "--db", f"sqlite:///{live}", "--out", str(tmp_path / "old.db")])
    assert r.exit_code == 2 and "already exists" in r.output
    assert (tmp_path / "old.db").read_text() == "yesterday's backup"

    Store(pg_url).close()
    r = CliRunner().invoke(app, ["backup", "--db", pg_url, "--out", str(tmp_path / "pg.db")])
    assert r.exit_code == 2, r.output
    assert "is a postgresql store" in r.output and "pg_dump" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "pg.db").exists()
