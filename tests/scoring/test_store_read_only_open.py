"""Commands that only read a store never make one: pointed (--db) at a database that holds no store (an empty
file, another application's tables, a file that is not SQLite at all, an empty PostgreSQL schema) they end
with one `error: cannot open the store at URL` line naming what is there, exit 2, and leave it as it was. A
store at an older schema revision is still upgraded, as every release does; commands that write (import,
score --store) still create a new store where none is."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from scoring.cli import app
from scoring.errors import NoStore
from scoring.store import Store
from scoring.store.engine import make_engine, schema_revision, upgrade_schema

READ_COMMANDS = [["report", "--out", "{tmp}/r"], ["drift", "check", "--rubric", "any"], ["audit", "verify"],
                 ["audit", "trace", "s1"], ["credentials", "feedback", "s1", "--out", "{tmp}/f"],
                 ["export", "training", "--out", "{tmp}/t.csv"], ["keys", "list"], ["keys", "revoke", "ann"]]


def _run(tmp_path: Path, args: list[str], url: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args] + ["--db", url])


def _other_application(path: Path) -> bytes:
    """An SQLite file another program made: one table of its own."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE contacts (name TEXT)")
    con.execute("INSERT INTO contacts VALUES ('Ada')")
    con.commit()
    con.close()
    return path.read_bytes()


@pytest.mark.parametrize("args", READ_COMMANDS)
def test_a_read_command_refuses_another_applications_sqlite_file_and_leaves_it_unchanged(
        tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "other.db"
    before = _other_application(path)
    r = _run(tmp_path, args, f"sqlite:///{path}")
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: cannot open the store at sqlite:///{path}: ") and r.output.count("\n") == 1
    assert "holds other tables (contacts), not a store" in r.output and "Traceback" not in r.output
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


@pytest.mark.parametrize("args", READ_COMMANDS)
def test_a_read_command_refuses_an_empty_file_and_leaves_it_empty(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    r = _run(tmp_path, args, f"sqlite:///{path}")
    assert r.exit_code == 2, r.output
    assert f"error: cannot open the store at sqlite:///{path}: {path} is an empty file, not a store" in r.output
    assert path.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


@pytest.mark.parametrize("args", [*READ_COMMANDS[:3], ["import-scores", "--rubric", "{tmp}/r.yaml", "--data",
                                                        "{tmp}/s.csv", "--id-col", "id", "--score-col", "q=r1"]])
def test_a_file_that_is_not_sqlite_is_one_error_line_not_a_traceback(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"id": "r", "version": 1, "title": "R", "evidence": ["text"],
                                                     "criteria": [{"id": "q", "title": "Q",
                                                                   "scale": {"min": 0, "max": 2}}]}))
    (tmp_path / "s.csv").write_text("id,r1\ne1,1\n")
    path = tmp_path / "settings.yaml"
    path.write_text("store: here\n")
    r = _run(tmp_path, args, f"sqlite:///{path}")
    assert r.exit_code == 2, r.output
    assert f"error: cannot open the store at sqlite:///{path}: " in r.output and "file is not a database" in r.output
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)
    assert path.read_text() == "store: here\n"


def _at_revision(url: str, revision: str) -> None:
    """A store as an older release left it: the schema up to ``revision`` only."""
    engine = make_engine(url)
    upgrade_schema(engine, revision)
    engine.dispose()


def test_a_read_command_still_upgrades_a_store_at_an_older_schema_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _at_revision(url, "0007_credential_status")
    r = _run(tmp_path, ["audit", "verify"], url)
    assert r.exit_code == 0, r.output
    engine = make_engine(url)
    assert schema_revision(engine) == "0010_submission_chains"
    engine.dispose()


def test_a_write_command_still_creates_a_new_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    Store(url).close()
    with Store(url, create=False) as st:  # and a read-only open finds it
        assert st.verify_audit().ok


def test_opening_without_create_raises_no_store_for_a_missing_file_and_makes_none(tmp_path: Path) -> None:
    with pytest.raises(NoStore, match="does not exist"):
        Store(f"sqlite:///{tmp_path / 'sub' / 'none.db'}", create=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_a_read_command_refuses_an_empty_postgresql_schema_and_creates_no_table_in_it(
        tmp_path: Path, pg_url: str) -> None:
    r = _run(tmp_path, ["report", "--out", "{tmp}/r"], pg_url)
    assert r.exit_code == 2, r.output
    assert "error: cannot open the store at postgresql+psycopg://" in r.output
    assert "has no tables: it is not a store" in r.output
    engine = sa.create_engine(pg_url)
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()
    Store(pg_url).close()  # a server store, once made, is opened by the same command
    assert _run(tmp_path, ["audit", "verify"], pg_url).exit_code == 0
